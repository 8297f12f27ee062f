"""CaptioningTask: learning on the built-in pictures, the masked loss and the doubly stochastic
term by hand, scores against several references, COCO files with bad entries, TFDS coco_captions,
and one mirrored step equal to one device's."""

import json

import numpy as np
import pytest
import sacrebleu
import tensorflow as tf
import tensorflow_datasets as tfds
from first_step import first_step

from seqzoo.training import loop, run_directory
from seqzoo.training.tasks.captioning import CaptioningConfig, CaptioningTask

TINY = dict(image_size=32, filters=[4, 8], feature_dim=8, units=8, embedding_dim=8,
            num_train=64, num_validation=8, max_caption_length=30)


def test_short_run_learns_to_caption_the_shapes_and_attention_matters(tmp_path):
    # The default run (3000 steps) reaches >= 95% exact captions, and the baseline without
    # attention scores far lower on pictures of 3 to 5 objects (bench captioning). This short
    # run must name the single objects of one-object pictures, and the baseline trained with the
    # same budget must lag far behind on the long captions.
    short = ["train.steps=400", "train.batch_size=32", "train.checkpoint_every=1000",
             "model.num_train=4000", "model.num_validation=200", "model.eval_beam=false"]
    config = run_directory.configure("captioning", tmp_path / "attention", overrides=short)
    metrics = loop.train(config, tmp_path / "attention", progress=False)
    assert metrics["exact_match_objects_1"] >= 0.6, metrics
    assert metrics["bleu"] >= 40.0, metrics
    assert json.loads((tmp_path / "attention" / "metrics.json").read_text()) == pytest.approx(
        metrics)
    # The checkpoint holds every weight: the restored model captions exactly as well.
    task, model = run_directory.restore(tmp_path / "attention")
    assert task.evaluate(model) == pytest.approx(metrics)

    config = run_directory.configure("captioning", tmp_path / "baseline",
                                     overrides=short + ["model.attention=none"])
    baseline = loop.train(config, tmp_path / "baseline", progress=False)
    assert metrics["bleu_objects_3plus"] >= baseline["bleu_objects_3plus"] + 20.0, (
        metrics, baseline)


def test_default_budget_comes_from_the_task_and_can_be_overridden():
    defaults = run_directory.configure("captioning")
    assert (defaults.train.steps, defaults.train.learning_rate) == (3000, 3e-3)
    assert run_directory.configure("translation").train.steps == 1000
    assert run_directory.configure("captioning", overrides=["train.steps=7"]).train.steps == 7


@pytest.fixture(scope="module")
def tiny_task(tmp_path_factory):
    task = CaptioningTask(CaptioningConfig(**TINY), run_dir=tmp_path_factory.mktemp("run"))
    task.prepare()
    return task


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_loss_is_masked_cross_entropy_plus_the_doubly_stochastic_term(tiny_task):
    model = tiny_task.build_model()
    batch = next(iter(tiny_task.train_dataset(4)))
    np.testing.assert_array_equal(batch["target_in"][:, 1:], batch["target_out"][:, :-1])
    outputs = model({"image": batch["image"], "target_in": batch["target_in"]})
    logits = outputs["logits"].numpy().astype(np.float64)
    attention = outputs["attention"].numpy().astype(np.float64)
    targets = batch["target_out"].numpy()
    plain, metrics = tiny_task.compute_loss(model, batch, training=False)
    tiny_task.config.attention_regularization = 0.5
    try:
        regularized, with_penalty = tiny_task.compute_loss(model, batch, training=False)
    finally:
        tiny_task.config.attention_regularization = 0.0
    for row in range(4):
        n = int((targets[row] != 0).sum())
        expected = -_log_softmax(logits[row, :n])[np.arange(n), targets[row, :n]].mean()
        np.testing.assert_allclose(plain[row], expected, rtol=1e-4)
        accuracy = (logits[row, :n].argmax(-1) == targets[row, :n]).mean()
        np.testing.assert_allclose(metrics["token_accuracy"][row], accuracy, rtol=1e-6)
        # Show, Attend and Tell: lambda * sum over regions of (1 - attention over the words)^2.
        penalty = 0.5 * np.sum((1.0 - attention[row, :n].sum(axis=0)) ** 2)
        np.testing.assert_allclose(with_penalty["attention_penalty"][row], penalty, rtol=1e-4)
        np.testing.assert_allclose(regularized[row], expected + penalty, rtol=1e-4)


def test_vocabulary_is_saved_and_reloaded(tiny_task):
    saved = (tiny_task.assets_dir / "caption_vocabulary.txt").read_text().split("\n")
    assert saved == tiny_task.tokenizer.vocabulary
    assert {"a", "left", "of", "above", "red", "circle"} <= set(saved)
    again = CaptioningTask(CaptioningConfig(**{**TINY, "num_train": 5}), run_dir=tiny_task.run_dir)
    again.prepare()
    assert again.tokenizer.vocabulary == saved


def test_scores_take_every_reference():
    task = CaptioningTask(CaptioningConfig())
    hypotheses = ["A dog runs on the beach.", "a cat", "two birds"]
    references = [["a dog is running", "a dog runs on the beach ."], ["A cat!"],
                  ["a red bird", "two birds sit", "birds"]]
    scores = task.score(hypotheses, references)
    assert scores["exact_match"] == pytest.approx(1 / 3)
    expected = sacrebleu.corpus_bleu(
        ["a dog runs on the beach .", "a cat", "two birds"],
        [["a dog is running", "a cat !", "a red bird"],
         ["a dog runs on the beach .", None, "two birds sit"], [None, None, "birds"]])
    assert scores["bleu"] == pytest.approx(expected.score)
    assert scores["bleu"] > sacrebleu.corpus_bleu(
        ["a dog runs on the beach .", "a cat", "two birds"],
        [["a dog is running", "a cat !", "a red bird"]]).score


def _coco_split(root, split, entries):
    """Writes annotations/captions_SPLIT.json and SPLIT/ images; entries: (id, file, pixels or
    raw bytes or None, captions)."""
    (root / split).mkdir(parents=True)
    (root / "annotations").mkdir(exist_ok=True)
    images, annotations = [], []
    for image_id, file_name, content, captions in entries:
        images.append({"id": image_id, "file_name": file_name, "height": 1, "width": 1})
        annotations += [{"id": 100 * image_id + k, "image_id": image_id, "caption": c}
                        for k, c in enumerate(captions)]
        if isinstance(content, np.ndarray):
            encode = tf.io.encode_png if file_name.endswith(".png") else tf.io.encode_jpeg
            content = encode(content).numpy()
        if content is not None:
            (root / split / file_name).write_bytes(content)
    (root / "annotations" / f"captions_{split}.json").write_text(
        json.dumps({"images": images, "annotations": annotations}))


def test_coco_files_with_several_references_and_their_own_validation_split(tmp_path):
    red, blue = np.zeros((30, 50, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)
    red[..., 0], blue[..., 2] = 200, 180
    _coco_split(tmp_path, "train2017", [
        (1, "a.png", red, ["A red picture.", "Something red"]),
        (2, "b.jpg", blue, ["a blue picture"]),
        (3, "c.png", red, ["red again", "still red", "red"])])
    _coco_split(tmp_path, "val2017", [(9, "v.png", blue, ["a blue one"])])
    task = CaptioningTask(CaptioningConfig(**{**TINY, "image_size": 16}),
                          data=f"file:{tmp_path}", run_dir=tmp_path / "run")
    task.prepare()
    assert task.train.ids == [1, 2, 3] and task.validation.ids == [9]
    assert task.train.captions[0] == ["A red picture.", "Something red"]
    assert task.train.images.shape == (3, 16, 16, 3)
    np.testing.assert_allclose(task.train.images[0].reshape(-1, 3).mean(0), [200, 0, 0], atol=1)
    np.testing.assert_allclose(task.train.images[1].reshape(-1, 3).mean(0), [0, 0, 180], atol=3)
    index, captions = task.train.pairs()
    assert list(index) == [0, 0, 1, 2, 2, 2] and captions[2] == "a blue picture"
    assert "." in task.tokenizer.vocabulary and "red" in task.tokenizer.vocabulary
    # One annotation file alone: a seeded share of it validates.
    single = CaptioningTask(CaptioningConfig(**{**TINY, "image_size": 16}),
                            data=f"file:{tmp_path / 'annotations' / 'captions_train2017.json'}")
    single.prepare()
    assert len(single.train) == 2 and len(single.validation) == 1


def test_bad_coco_entries_are_reported_together_with_their_ids(tmp_path):
    good = np.full((8, 8, 3), 90, np.uint8)
    _coco_split(tmp_path, "train2017", [
        (1, "ok.png", good, ["fine"]),
        (2, "missing.png", None, ["gone"]),
        (3, "broken.jpg", b"not a jpeg at all", ["broken"]),
        (4, "silent.png", good, [])])
    task = CaptioningTask(CaptioningConfig(**TINY), data=f"file:{tmp_path}")
    with pytest.raises(ValueError) as caught:
        task.prepare()
    message = str(caught.value)
    assert "has 3 bad entries" in message, message
    for part in ("image id 2 (missing.png not found in", "image id 3 (broken.jpg is not a "
                 "decodable JPEG or PNG", "image id 4 (no caption)"):
        assert part in message, message
    with pytest.raises(ValueError, match="is not a COCO captions file"):
        (tmp_path / "annotations" / "captions_train2017.json").write_text("{}")
        task.prepare()


def test_tfds_coco_captions_from_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        task = CaptioningTask(CaptioningConfig(**TINY), data="tfds:coco_captions",
                              run_dir=tmp_path)
        task.prepare()
    assert len(task.train) == len(task.validation) == 6  # coco_captions' train and val splits
    assert task.train.images.shape[1:] == (32, 32, 3)
    assert all(len(refs) >= 1 for refs in task.train.captions)
    batch = next(iter(task.train_dataset(4)))
    assert batch["image"].shape == (4, 32, 32, 3) and batch["target_out"].dtype == tf.int32


def test_mirrored_first_step_equals_one_device(tiny_task):
    config = run_directory.configure("captioning", overrides=[
        "train.batch_size=8", "train.learning_rate=0.01", "model.image_size=32",
        "model.filters=[4, 8]", "model.feature_dim=8", "model.units=8", "model.embedding_dim=8",
        "model.num_train=64", "model.num_validation=8"])
    weights = tiny_task.build_model().get_weights()
    one_loss, _, one, _ = first_step("one_device", CaptioningTask(config.model), config.train,
                                     weights)
    two_loss, _, two, strategy = first_step("mirrored", CaptioningTask(config.model),
                                            config.train, weights)
    assert strategy.num_replicas_in_sync == 2
    np.testing.assert_allclose(two_loss, one_loss, rtol=1e-5)
    changed = 0
    for after_one, after_two, before in zip(one, two, weights):
        np.testing.assert_allclose(after_two, after_one, rtol=1e-4, atol=1e-6)
        changed += not np.allclose(after_one, before)
    assert changed == len(weights)
