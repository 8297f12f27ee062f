"""Fixtures of the serving tests: two versions of the toy SavedModel and a ModelServer on them."""

import pytest
from toy_saved_model import save_toy

from seqzoo.serving.server import ModelServer


@pytest.fixture(scope="session")
def toy_models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    for version in (1, 2):
        save_toy(root / "toy" / str(version), version)
    return root


@pytest.fixture(scope="session")
def server(toy_models_dir):
    server = ModelServer(toy_models_dir, rest_port=0, grpc_port=0, poll_seconds=0)
    server.start()
    yield server
    server.stop()
