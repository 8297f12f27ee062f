"""docker-compose.yml, Dockerfile and the README's container commands, checked statically (the
services, ports and mounts, and that every path and flag they name exists, our CLI's flags by our
own parser), and our server run with exactly the command line of the compose `serving` service."""

import http.client
import json
import pathlib
import re
import shlex
import socket
import subprocess
import sys
import tomllib

import grpc
import numpy as np
import pytest
import yaml
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc
from toy_saved_model import reference_affine, save_toy

from seqzoo.serving import export
from seqzoo.serving.cli import build_parser

REPO = pathlib.Path(__file__).resolve().parents[2]
# Flags of tensorflow_model_server that the compose file may use.
TF_SERVING_FLAGS = {"port", "rest_api_port", "model_config_file", "model_config_file_poll_wait_seconds",
                    "file_system_poll_wait_seconds", "model_name", "model_base_path",
                    "enable_batching", "batching_parameters_file", "rest_api_num_threads"}


@pytest.fixture(scope="module")
def services():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]


def bind_mounts(service) -> list[dict]:
    """A service's bind mounts in compose's long form (`type`, `source`, `target`, ...)."""
    result = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            volume = {"type": "bind", "source": source, "target": target,
                      "read_only": mode == ["ro"]}
        result.append(volume)
    return result


def mounts(service) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    return {volume["target"]: volume["source"] for volume in bind_mounts(service)}


def seqzoo_commands(service) -> list[list[str]]:
    command = service["command"]
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def parse(argv):
    assert argv[0] == "seqzoo", argv
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"`{shlex.join(argv)}` is not accepted by our CLI")


def inside(path: str, working_dir: str, service) -> bool:
    absolute = path if path.startswith("/") else f"{working_dir.rstrip('/')}/{path}"
    return any(absolute == target or absolute.startswith(target.rstrip("/") + "/")
               for target in mounts(service))


def test_serving_runs_the_pinned_tf_serving_on_our_export_layout(services):
    serving = services["serving"]
    image, tag = serving["image"].split(":")
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    api_version = next(p.split("==")[1] for p in pins if p.startswith("tensorflow-serving-api=="))
    assert (image, tag) == ("tensorflow/serving", api_version)
    assert {"8500:8500", "8501:8501"} <= set(serving["ports"])
    models_target = export.CONTAINER_MODELS_DIR
    assert mounts(serving) == {models_target: "./models"}
    # TF Serving only reads the models; it must not wait for (or start) a training run.
    assert [volume.get("read_only") for volume in bind_mounts(serving)] == [True]
    assert "depends_on" not in serving and "profiles" not in serving
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in serving["command"])
    assert set(flags) <= TF_SERVING_FLAGS, set(flags) - TF_SERVING_FLAGS
    assert (flags["port"], flags["rest_api_port"]) == ("8500", "8501")
    # The config file is the one `seqzoo export` writes into the mounted models directory.
    assert flags["model_config_file"] == f"{models_target}/{export.MODEL_CONFIG_FILE}"
    # Our server takes the same command line.
    args = parse(["seqzoo", "serve", *serving["command"]])
    assert (args.port, args.rest_api_port, args.model_config_file) == (
        8500, 8501, flags["model_config_file"])


def test_train_builds_this_repo_and_writes_runs_and_models_through_mounts(services):
    train = services["train"]
    assert train["build"] == "."
    # Training runs only when asked for, never as a side effect of `docker compose up`.
    assert train["profiles"] == ["train"]
    lines = (REPO / "Dockerfile").read_text().splitlines()
    copies = [(i, line.split()[1:-1]) for i, line in enumerate(lines) if line.startswith("COPY")]
    for _, sources in copies:
        for source in sources:
            assert (REPO / source).exists(), source
    # Dependencies install from pyproject.toml alone, in a layer before any code is copied, so
    # editing the code does not reinstall them.
    install = next(i for i, line in enumerate(lines) if "pip install -r" in line)
    assert [sources for i, sources in copies if i < install] == [["pyproject.toml"]]
    assert {source for i, sources in copies if i > install for source in sources} >= {
        "zoo", "training", "serving"}
    assert any(line.startswith("RUN pip install --no-deps .") for line in lines[install:])
    assert {host for host in mounts(train).values()} == {"./runs", "./models"}
    (train_args, export_args) = [parse(argv) for argv in seqzoo_commands(train)]
    assert (train_args.command, train_args.task) == ("train", "sentiment")
    assert inside(train_args.run_dir, train["working_dir"], train)
    assert export_args.command == "export" and export_args.run_dir == train_args.run_dir
    assert inside(export_args.models_dir, train["working_dir"], train)
    # The host side of the models mount is what the serving container mounts.
    assert mounts(train)[f"{train['working_dir']}/{export_args.models_dir}"] == "./models"


def test_workers_form_one_multi_worker_cluster(services):
    workers = sorted(name for name in services if name.startswith("worker"))
    assert len(workers) >= 2
    configs = [json.loads(services[name]["environment"]["TF_CONFIG"]) for name in workers]
    cluster = configs[0]["cluster"]
    assert [address.split(":")[0] for address in cluster["worker"]] == workers
    assert all(config["cluster"] == cluster for config in configs)
    assert [config["task"] for config in configs] == [
        {"type": "worker", "index": i} for i in range(len(workers))]
    run_dirs = set()
    for name in workers:
        (args,) = [parse(argv) for argv in seqzoo_commands(services[name])]
        assert args.strategy == "multi_worker_mirrored"
        assert inside(args.run_dir, services[name]["working_dir"], services[name])
        run_dirs.add(args.run_dir)
    assert len(run_dirs) == 1


def test_workers_share_one_definition(services):
    text = (REPO / "docker-compose.yml").read_text()
    assert text.count("multi_worker_mirrored") == 1  # one command line, not one per worker
    workers = [services[name] for name in services if name.startswith("worker")]
    without_config = [{k: v for k, v in worker.items() if k != "environment"}
                      for worker in workers]
    assert all(worker == without_config[0] for worker in without_config)


def test_containers_write_runs_and_models_as_the_host_user_only(services):
    lines = (REPO / "Dockerfile").read_text().splitlines()
    assert [line for line in lines if line.startswith("USER")] == ["USER 1000:1000"]
    for name, service in services.items():
        for volume in bind_mounts(service):
            # Docker would create a missing host directory as root.
            assert volume["bind"] == {"create_host_path": False}, (name, volume)
            if not volume.get("read_only"):
                assert service["user"] == "${UID:-1000}:${GID:-1000}", name


def commands_in(text: str) -> list[str]:
    """The `docker compose ...` commands of a text (a command's words are one space apart; two
    spaces or more start its description)."""
    return re.findall(r"docker compose(?: [^\s#]+)+", text)


def test_readme_and_compose_header_give_the_same_commands():
    compose = (REPO / "docker-compose.yml").read_text()
    header = "\n".join(line.lstrip("# ") for line in compose.splitlines()
                       if line.startswith("#"))
    readme = (REPO / "README.md").read_text()
    assert commands_in(header)
    assert commands_in(readme) == commands_in(header)
    assert "mkdir -p runs models && export UID GID=$(id -g)" in header
    assert "mkdir -p runs models && export UID GID=$(id -g)" in readme


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_our_server_answers_with_the_compose_serving_command_line(services, tmp_path):
    """`seqzoo serve` with the serving service's command, its container paths mapped into the
    test's directory (also in the models.config that export writes) and its ports to free ones."""
    models = tmp_path / "models"
    save_toy(models / "toy" / "1", 1)
    save_toy(models / "toy" / "2", 2)
    export.write_model_config(models, container_dir=str(models))
    ports = {"8500": str(free_port()), "8501": str(free_port())}
    argv = []
    for arg in services["serving"]["command"]:
        flag, value = arg.split("=", 1)
        value = ports.get(value, value).replace(export.CONTAINER_MODELS_DIR, str(models), 1)
        argv.append(f"{flag}={value}")
    process = subprocess.Popen([str(pathlib.Path(sys.executable).with_name("seqzoo")), "serve",
                                *argv], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        banner = process.stdout.readline()
        assert banner.startswith("Serving {'toy': [2]}"), banner + process.stderr.read()
        connection = http.client.HTTPConnection("127.0.0.1", int(ports["8501"]), timeout=30)
        body = {"signature_name": "affine", "inputs": {"x": [[1.0, 2.0, 3.0]], "k": [1]}}
        connection.request("POST", "/v1/models/toy:predict", body=json.dumps(body))
        response = connection.getresponse()
        assert response.status == 200
        np.testing.assert_allclose(json.loads(response.read())["outputs"],
                                   reference_affine([[1.0, 2.0, 3.0]], [1], 2))
        stub = model_service_pb2_grpc.ModelServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{ports['8500']}"))
        status = stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
            model_spec={"name": "toy"}), timeout=30)
        assert [(s.version, s.state) for s in status.model_version_status] == [(2, 30)]
    finally:
        process.terminate()
        process.wait(timeout=30)
