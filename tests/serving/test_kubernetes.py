"""k8s/*.yaml: every resource valid against the Kubernetes API schemas (kubernetes-validate's
bundled schemas, offline; the TFJob's pod templates as the PodTemplateSpec the training operator
creates pods from), and the commands, ports, volumes and paths they name exist: our CLI accepts
each seqzoo command, TF Serving's flags and probes match docker-compose.yml's serving service,
and the volumes chain training -> export -> serving."""

import pathlib

import kubernetes_validate
import pytest
import yaml
from test_compose import TF_SERVING_FLAGS, parse

from seqzoo.serving import export

REPO = pathlib.Path(__file__).resolve().parents[2]
# The Kubernetes release whose schemas the manifests are checked against.
KUBERNETES_VERSION = "1.33.0"
TFJOB_PORT = 2222  # the training operator's default TensorFlow port


def _documents():
    for path in sorted((REPO / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            yield path.name, document


@pytest.fixture(scope="module")
def resources():
    return {(document["kind"], document["metadata"]["name"]): document
            for _, document in _documents()}


def _validate(resource):
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        pytest.fail(f"{resource['kind']} {resource['metadata']['name']}: {err.message} at "
                    f"{'.'.join(map(str, err.path))}")


def _pod_templates(resource):
    if resource["kind"] == "TFJob":
        return [spec["template"] for spec in resource["spec"]["tfReplicaSpecs"].values()]
    if resource["kind"] in ("Deployment", "Job"):
        return [resource["spec"]["template"]]
    return []


def test_every_resource_matches_the_kubernetes_schemas(resources):
    assert {kind for kind, _ in resources} == {
        "PersistentVolumeClaim", "TFJob", "Job", "Deployment", "Service"}
    for (kind, name), resource in resources.items():
        if kind == "TFJob":
            assert resource["apiVersion"] == "kubeflow.org/v1"
            for template in _pod_templates(resource):
                _validate({"apiVersion": "v1", "kind": "PodTemplate",
                           "metadata": {"name": name}, "template": template})
        else:
            _validate(resource)


def test_every_volume_is_a_claim_of_the_storage_manifest(resources):
    claims = {name for kind, name in resources if kind == "PersistentVolumeClaim"}
    for resource in resources.values():
        for template in _pod_templates(resource):
            spec = template["spec"]
            volumes = {volume["name"]: volume["persistentVolumeClaim"]["claimName"]
                       for volume in spec["volumes"]}
            assert set(volumes.values()) <= claims
            for container in spec["containers"]:
                assert {m["name"] for m in container["volumeMounts"]} <= set(volumes)


def _container(resource):
    (template,) = _pod_templates(resource)
    (container,) = template["spec"]["containers"]
    mounts = {m["mountPath"]: template_claim(template, m["name"])
              for m in container["volumeMounts"]}
    return container, mounts


def template_claim(template, volume_name):
    return next(volume["persistentVolumeClaim"]["claimName"]
                for volume in template["spec"]["volumes"] if volume["name"] == volume_name)


def _inside(path, container, mounts):
    absolute = pathlib.PurePosixPath(container["workingDir"], path)
    return next(claim for target, claim in mounts.items()
                if absolute.is_relative_to(target))


def test_tfjob_trains_on_workers_that_share_the_run_directory(resources):
    (job,) = [r for (kind, _), r in resources.items() if kind == "TFJob"]
    workers = job["spec"]["tfReplicaSpecs"]["Worker"]
    assert set(job["spec"]["tfReplicaSpecs"]) == {"Worker"}  # worker 0 is the chief
    assert workers["replicas"] >= 2 and workers["restartPolicy"] == "OnFailure"
    container, mounts = _container(job)
    assert container["name"] == "tensorflow"  # the container the operator gives TF_CONFIG
    assert {port["containerPort"] for port in container["ports"]} == {TFJOB_PORT}
    args = parse(container["command"])
    assert (args.command, args.strategy) == ("train", "multi_worker_mirrored")
    assert _inside(args.run_dir, container, mounts) == "seqzoo-runs"


def test_export_job_writes_the_trained_run_where_serving_reads(resources):
    job = resources[("TFJob", "seqzoo-train-sentiment")]
    train_args = parse(_container(job)[0]["command"])
    container, mounts = _container(resources[("Job", "seqzoo-export-sentiment")])
    args = parse(container["command"])
    assert args.command == "export" and args.run_dir == train_args.run_dir
    assert _inside(args.run_dir, container, mounts) == "seqzoo-runs"
    assert _inside(args.models_dir, container, mounts) == "seqzoo-models"

    serving, serving_mounts = _container(resources[("Deployment", "seqzoo-serving")])
    assert serving_mounts == {export.CONTAINER_MODELS_DIR: "seqzoo-models"}
    assert all(m.get("readOnly") for m in serving["volumeMounts"])
    readiness = serving["readinessProbe"]["httpGet"]["path"]
    assert readiness == f"/v1/models/{args.name}/metadata"


def test_serving_runs_compose_serving_with_probes_on_its_ports(resources):
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["serving"]
    container, _ = _container(resources[("Deployment", "seqzoo-serving")])
    assert container["image"] == compose["image"]
    assert container["args"] == compose["command"]
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in container["args"])
    assert set(flags) <= TF_SERVING_FLAGS
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": int(flags["port"]), "rest": int(flags["rest_api_port"])}
    assert container["readinessProbe"]["httpGet"]["port"] in ports
    assert container["livenessProbe"]["tcpSocket"]["port"] in ports
    service = resources[("Service", "seqzoo-serving")]
    assert service["spec"]["selector"] == resources[("Deployment", "seqzoo-serving")][
        "spec"]["selector"]["matchLabels"]
    assert {(p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        (ports[name], name) for name in ports}
