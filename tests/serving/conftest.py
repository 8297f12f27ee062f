"""Fixtures of the serving tests: two versions of the toy SavedModel and a ModelServer serving
both (model config with the `all` version policy)."""

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
    config = toy_models_dir / "all.config"
    config.write_text("model_config_list { config { name: 'toy' base_path: '%s' "
                      "model_platform: 'tensorflow' model_version_policy { all {} } } }"
                      % (toy_models_dir / "toy"))
    server = ModelServer(model_config_file=config, rest_port=0, grpc_port=0, poll_seconds=0)
    server.start()
    yield server
    server.stop()
