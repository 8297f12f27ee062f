"""Keras names stay stable across the move of the packages under `seqzoo.`: a `.keras` file
records each class as `seqzoo>ClassName` (the registered name) plus its Python module, and files
written when the module was `zoo.layers...` must still load."""

import json
import zipfile

import keras
import numpy as np

from seqzoo.zoo.layers import BidirectionalEncoder, ElmanCell


def _rewrite_modules(source, target, old_prefix, new_prefix):
    """Copies a .keras archive with every `module` entry of its config renamed."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    renamed = []

    def visit(node):
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and module.startswith(new_prefix):
                node["module"] = old_prefix + module[len(new_prefix):]
                renamed.append(node["module"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return renamed


def test_every_zoo_class_is_registered_under_the_seqzoo_package():
    import seqzoo.zoo.decoding  # noqa: F401
    import seqzoo.zoo.layers  # noqa: F401
    import seqzoo.zoo.models.captioning  # noqa: F401
    import seqzoo.zoo.models.classic  # noqa: F401
    import seqzoo.zoo.models.recurrent  # noqa: F401
    import seqzoo.zoo.models.sentiment  # noqa: F401
    import seqzoo.zoo.models.translation  # noqa: F401

    ours = {name: cls for name, cls in keras.saving.get_custom_objects().items()
            if cls.__module__.startswith("seqzoo.zoo.")}
    assert len(ours) >= 15
    assert all(name == f"seqzoo>{cls.__name__}" for name, cls in ours.items()), sorted(ours)


def test_keras_file_saved_under_the_old_module_names_still_loads(tmp_path):
    inputs = keras.Input((None, 3))
    sequences, _ = BidirectionalEncoder(4, cell="gru")(inputs)
    outputs = keras.layers.RNN(ElmanCell(2, context_units=3), return_sequences=True)(sequences)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    model.save(tmp_path / "new.keras")
    renamed = _rewrite_modules(tmp_path / "new.keras", tmp_path / "old.keras", "zoo.", "seqzoo.zoo.")
    assert "zoo.layers.bidirectional_encoder" in renamed and "zoo.layers.elman_cell" in renamed

    reloaded = keras.saving.load_model(tmp_path / "old.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
