"""A normal (non-editable) install from the source tree, used from a project that has its own
`zoo/`, `training/` and `serving/` packages: seqzoo's modules live under `seqzoo.` and neither
side shadows the other."""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap

import pytest
from toy_saved_model import save_toy

REPO = pathlib.Path(__file__).resolve().parents[1]
FOLDERS = ("zoo", "training", "serving")

USER_CODE = textwrap.dedent("""
    import json, sys
    import serving, training, zoo
    from seqzoo.serving.client import Client
    from seqzoo.zoo.layers import BidirectionalEncoder
    from seqzoo.zoo.models.classic import CategoricalHMM
    from seqzoo.training.tasks import task_names
    import seqzoo.serving, seqzoo.training, seqzoo.zoo

    client = Client(rest_port=int(sys.argv[1]), grpc_port=int(sys.argv[2]))
    print(json.dumps({
        "user": [serving.OWNER, training.OWNER, zoo.OWNER],
        "seqzoo": [seqzoo.serving.__file__, seqzoo.training.__file__, seqzoo.zoo.__file__],
        "classes": [BidirectionalEncoder.__name__, CategoricalHMM.__name__],
        "tasks": task_names(),
        "rest": client.predict("toy", {"text": ["abcd", "ab"]})["label"].tolist(),
        "grpc": client.predict("toy", {"text": ["abc"]}, via="grpc")["label"].tolist(),
    }))
    client.close()
""")


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    """A new virtual environment with seqzoo installed by `pip install --no-deps SOURCE`, the
    Dockerfile's kind of install. Its dependencies (TensorFlow and the rest) are those of the
    environment running the tests, reached through a .pth path line: such a line only extends
    sys.path, so this environment's own editable-install hook is not seen there."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (pathlib.Path(site) / "seqzoo_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    # Build from a copy so the build leaves nothing (build/, egg-info) in the source tree.
    source = tmp_path_factory.mktemp("source")
    for name in FOLDERS:
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(source)],
                   check=True, capture_output=True)
    return venv, pathlib.Path(site)


def _python_files(root: pathlib.Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*.py")
            if "__pycache__" not in path.parts}


def test_install_holds_every_module_of_the_source_tree(fresh_venv):
    _, site = fresh_venv
    installed = _python_files(site / "seqzoo")
    source = {f"{folder}/{name}" for folder in FOLDERS for name in _python_files(REPO / folder)}
    assert source - installed == set(), "add the missing packages to pyproject.toml"
    assert not (site / "zoo").exists() and not (site / "training").exists()
    assert not (site / "serving").exists()


def test_user_project_with_same_folder_names_uses_both(fresh_venv, tmp_path):
    venv, site = fresh_venv
    project = tmp_path / "project"
    for folder in FOLDERS:
        (project / folder).mkdir(parents=True)
        (project / folder / "__init__.py").write_text(f"OWNER = 'user {folder}'\n")
    models = tmp_path / "models"
    save_toy(models / "toy" / "1", 1)

    env = {**os.environ, "PYTHONPATH": ""}
    log = tmp_path / "serve.log"
    # PYTHONFAULTHANDLER: should the server not stop, SIGABRT makes it print every thread's
    # stack into its log, for the failure message.
    server = subprocess.Popen(
        [str(venv / "bin" / "seqzoo"), "serve", "--models-dir", str(models), "--port", "0",
         "--rest_api_port", "0"],
        cwd=project, env={**env, "PYTHONFAULTHANDLER": "1"}, stdout=subprocess.PIPE,
        stderr=log.open("w"), text=True)
    try:
        banner = server.stdout.readline()
        assert banner.startswith("Serving {'toy': [1]}"), banner
        grpc_port = banner.split("gRPC on 127.0.0.1:")[1].split(",")[0]
        rest_port = banner.split("http://127.0.0.1:")[1].split("/")[0]
        result = subprocess.run([str(venv / "bin" / "python"), "-c", USER_CODE, rest_port, grpc_port],
                                cwd=project, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        import json

        report = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            # Up to the 20 s drain for requests still running, then the unload.
            out = server.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            server.send_signal(signal.SIGABRT)
            out = server.communicate()[0]
            pytest.fail(f"seqzoo serve did not stop within 60 s of SIGTERM:\n{out}\n"
                        f"{log.read_text()[-6000:]}")
    assert server.returncode == 0 and out.splitlines()[-1] == "Stopped.", log.read_text()
    assert report["user"] == ["user serving", "user training", "user zoo"]
    for path in report["seqzoo"]:
        assert pathlib.Path(path).is_relative_to(site / "seqzoo"), path
    assert report["classes"] == ["BidirectionalEncoder", "CategoricalHMM"]
    assert "sentiment" in report["tasks"]
    assert report["rest"] == ["long", "short"]
    assert report["grpc"] == ["short"]
