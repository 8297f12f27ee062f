"""docker-compose.yml and Dockerfile, checked statically: the services, ports and mounts, and that
every path and flag they name exists (our CLI's flags by our own parser)."""

import json
import pathlib
import shlex
import tomllib

import pytest
import yaml

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


def mounts(service) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    pairs = (volume.split(":")[:2] for volume in service.get("volumes", []))
    return {container: host for host, container in pairs}


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
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip install ." in dockerfile
    for line in dockerfile.splitlines():
        if line.startswith("COPY"):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), source
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
