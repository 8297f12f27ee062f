"""MaskedGlobalPooling1D: contract, and mean/max against a per-row NumPy computation."""

import numpy as np
import pytest
from layer_contract import run_layer_contract

from seqzoo.zoo.models.sentiment import MaskedGlobalPooling1D


def _data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 5, 3)).astype("float32") - 5.0  # all negative: zeros would win a max
    mask = np.arange(5)[None, :] < np.array([5, 2, 1, 0])[:, None]
    return x, mask


@pytest.mark.parametrize("mode,reduce", [("mean", np.mean), ("max", np.max)])
def test_matches_per_row_reduction_over_valid_steps(mode, reduce, tmp_path):
    x, mask = _data()
    outputs = run_layer_contract(lambda: MaskedGlobalPooling1D(mode), x, mask=mask,
                                 expected_output_shapes=(4, 3), expected_num_trainable_weights=0,
                                 tmp_path=tmp_path)
    expected = np.stack([reduce(row[m], axis=0) if m.any() else np.zeros(3)
                         for row, m in zip(x, mask)])
    np.testing.assert_allclose(outputs, expected, atol=1e-6)


def test_without_mask_reduces_every_step():
    x, _ = _data()
    np.testing.assert_allclose(MaskedGlobalPooling1D("max")(x), x.max(axis=1))
    np.testing.assert_allclose(MaskedGlobalPooling1D("mean")(x), x.mean(axis=1), atol=1e-6)


def test_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode='sum'"):
        MaskedGlobalPooling1D("sum")
