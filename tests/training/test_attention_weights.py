"""`seqzoo attention` on a run directory and on an exported model, and the plot helper."""

import matplotlib.image
import numpy as np
import pytest

from seqzoo.serving.cli import main
from seqzoo.training.attention_weights import compute_attention
from seqzoo.zoo.models.translation.attention_plot import plot_attention

SENTENCE = "Mar 3 2021"


def test_attention_png_from_a_run_and_from_its_export(dates_translation, tmp_path, capsys):
    run_dir, models_dir = dates_translation
    from_run = compute_attention(run_dir, SENTENCE)
    from_model = compute_attention(models_dir / "dates", SENTENCE)
    assert from_model["translation"] == from_run["translation"]
    assert from_model["source_tokens"] == list(SENTENCE)
    np.testing.assert_allclose(from_model["attention"], from_run["attention"], atol=1e-5)

    out = tmp_path / "plots" / "attention.png"
    assert main(["attention", str(models_dir / "dates" / "1"), SENTENCE, "--out", str(out)]) == 0
    assert from_run["translation"] in capsys.readouterr().out
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_attention_command_reports_bad_paths(tmp_path, capsys):
    assert main(["attention", str(tmp_path / "nowhere"), SENTENCE]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["attention", str(tmp_path), SENTENCE]) == 2
    assert "neither a run directory" in capsys.readouterr().err


def test_plot_drops_padding_and_rejects_empty_matrices(tmp_path):
    weights = np.array([[0.7, 0.3, 0.0], [0.1, 0.9, 0.0], [0.0, 0.0, 0.0]])
    path = plot_attention(["a", " ", ""], ["X", "</s>", ""], weights, tmp_path / "a.png")
    assert matplotlib.image.imread(path).ndim == 3
    with pytest.raises(ValueError, match="Nothing to draw"):
        plot_attention(["", ""], ["X"], np.zeros((1, 2)), tmp_path / "b.png")
