"""`seqzoo attention` on translation and captioning runs and exported models, and the plot
helpers."""

import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

from seqzoo.serving.cli import main
from seqzoo.training.attention_weights import compute_attention
from seqzoo.zoo.models.captioning.caption_attention_plot import plot_caption_attention
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


def test_caption_attention_png_from_a_run_and_from_its_export(shapes_captioner, tmp_path,
                                                             capsys):
    run_dir, models_dir = shapes_captioner
    picture = tmp_path / "shapes.png"
    pixels = np.zeros((40, 56, 3), np.uint8)
    pixels[5:20, 8:30] = (220, 30, 30)
    picture.write_bytes(tf.io.encode_png(pixels).numpy())
    from_run = compute_attention(run_dir, str(picture))
    from_model = compute_attention(models_dir / "shapes", str(picture))
    assert from_model["task"] == from_run["task"] == "captioning"
    assert from_model["caption"] == from_run["caption"]
    assert from_model["tokens"] == from_run["tokens"]
    np.testing.assert_array_equal(from_model["image"], pixels)  # drawn at the file's own size
    written = [token != "" for token in from_model["tokens"]]
    weights = from_model["attention"]
    assert weights.shape == (len(written), 8, 8)  # 32-pixel model, two stride-2 blocks
    np.testing.assert_allclose(weights[written].sum(axis=(1, 2)), 1.0, atol=1e-5)
    np.testing.assert_allclose(weights, from_run["attention"], atol=1e-5)

    out = tmp_path / "plots" / "caption.png"
    assert main(["attention", str(models_dir / "shapes"), str(picture), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [from_model["caption"], f"Attention drawn to {out}"]
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100

    assert main(["attention", str(models_dir / "shapes"), "a sentence"]) == 2
    assert "give the path of a JPEG or PNG file" in capsys.readouterr().err
    (tmp_path / "fake.png").write_text("GIF89a")
    assert main(["attention", str(models_dir / "shapes"), str(tmp_path / "fake.png")]) == 2
    assert "is not a JPEG or PNG file" in capsys.readouterr().err


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


def test_caption_plot_has_a_panel_per_word_and_rejects_empty_captions(tmp_path):
    weights = np.zeros((4, 2, 2))
    weights[:, 0, 0] = 1.0
    image = np.full((16, 16, 3), 128, np.uint8)
    one_row = plot_caption_attention(image, ["a", "dot", "</s>", ""], weights, tmp_path / "a.png")
    two_rows = plot_caption_attention(image, ["a", "dot", "</s>", ""], weights, tmp_path / "b.png",
                                      columns=2)
    # The picture and three words (padding dropped): one row of five, or two rows of two.
    wide, tall = matplotlib.image.imread(one_row), matplotlib.image.imread(two_rows)
    assert wide.shape[1] > tall.shape[1] and tall.shape[0] > wide.shape[0]
    with pytest.raises(ValueError, match="Nothing to draw"):
        plot_caption_attention(image, ["", ""], weights[:2], tmp_path / "c.png")
