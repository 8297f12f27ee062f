"""SentimentTask: learns the built-in reviews under MirroredStrategy in mixed bfloat16 precision,
where a bag of words cannot; vocabulary assets, restore and export in float32 with warmup, file
data and config errors."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from seqzoo.serving.export import export_model
from seqzoo.training import loop, run_directory
from seqzoo.training.tasks.sentiment import SentimentConfig, SentimentTask
from seqzoo.zoo.models.sentiment import MaskedGlobalPooling1D, WordTokenizer

LEARNING_OVERRIDES = [
    "train.strategy=mirrored", "train.steps=500", "train.batch_size=64",
    "train.learning_rate=0.005", "train.checkpoint_every=500", "train.log_every=100",
    "model.num_examples=6000", "model.units=24", "model.embedding_dim=24",
    "train.mixed_precision=mixed_bfloat16",
]
# The run evaluates its bfloat16 model; the restored float32 one classifies all but a few of the
# 600 validation or test reviews alike.
RESTORED_ACCURACY_TOLERANCE = 0.01
REQUIRED_ACCURACY = 0.95


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    keras.utils.set_random_seed(0)
    run_dir = tmp_path_factory.mktemp("sentiment_run")
    config = run_directory.configure("sentiment", run_dir, overrides=LEARNING_OVERRIDES)
    metrics = loop.train(config, run_dir, progress=False)
    return run_dir, metrics


def _bag_of_words_accuracy(task, steps=1500):
    """Embedding -> masked mean -> MLP on the same splits and vocabulary: word order is lost."""
    tokens = keras.Input((), dtype="string")
    ids = WordTokenizer(task.vocabulary, max_length=task.config.max_length)(tokens)
    pooled = MaskedGlobalPooling1D("mean")(keras.layers.Embedding(
        len(task.vocabulary) + 2, 32, mask_zero=True)(ids))
    hidden = keras.layers.Dense(64, activation="relu")(pooled)
    model = keras.Model(tokens, keras.layers.Dense(2, activation="softmax")(hidden))
    optimizer = keras.optimizers.Adam(0.01)

    @tf.function
    def step(texts, labels):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                labels, model(texts, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

    batches = iter(task.train_dataset(64))
    for _ in range(steps):
        step(*next(batches))
    texts, labels = task.splits["test"]
    train_accuracy = np.mean(task.predict_probabilities(model, task.splits["train"][0]).argmax(-1)
                             == task.splits["train"][1])
    return float(np.mean(task.predict_probabilities(model, texts).argmax(-1) == labels)), float(
        train_accuracy)


def test_learns_word_order_that_a_bag_of_words_misses(trained):
    run_dir, metrics = trained
    assert metrics["accuracy"] >= REQUIRED_ACCURACY, metrics
    assert metrics["test_accuracy"] >= REQUIRED_ACCURACY, metrics
    assert json.loads((run_dir / "metrics.json").read_text()) == pytest.approx(metrics)

    task, _ = run_directory.restore(run_dir)
    bow_test, bow_train = _bag_of_words_accuracy(task)
    # The baseline is not undertrained: it stays far from the recurrent model on its own
    # training data too.
    assert metrics["test_accuracy"] - bow_test >= 0.10, (metrics, bow_test)
    assert metrics["test_accuracy"] - bow_train >= 0.10, (metrics, bow_train)


def test_restore_and_export_classify_negation_and_contrast(trained, tmp_path):
    run_dir, metrics = trained
    task, model = run_directory.restore(run_dir)
    # Exports are float32 whatever the run computed in.
    assert {weight.dtype for weight in model.weights} == {"float32"}
    assert {layer.compute_dtype for layer in model._flatten_layers() if layer.weights} == {
        "float32"}
    restored = task.evaluate(model)
    for name in ("accuracy", "test_accuracy"):
        assert restored[name] == pytest.approx(metrics[name], abs=RESTORED_ACCURACY_TOLERANCE)

    path = export_model(task, model, tmp_path / "models", "sentiment")
    assert (path / "assets.extra" / "tf_serving_warmup_requests").is_file()
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    texts = ["The ending was not bad at all!", "good acting but a dull plot",
             "although the plot was dull, the acting was great", "the story was never moving"]
    outputs = serve(text=tf.constant(texts))
    np.testing.assert_array_equal(outputs["label"].numpy(),
                                  [b"positive", b"negative", b"positive", b"negative"])
    np.testing.assert_allclose(outputs["probabilities"].numpy(),
                               task.predict_probabilities(model, texts), atol=1e-5)


def test_vocabulary_is_reloaded_from_run_assets(tmp_path):
    config = SentimentConfig(num_examples=200, units=4, embedding_dim=4)
    first = SentimentTask(config, run_dir=tmp_path)
    first.prepare()
    saved = (tmp_path / "assets" / "vocabulary.txt").read_text().split("\n")
    assert saved == first.vocabulary and "not" in saved
    (tmp_path / "assets" / "vocabulary.txt").write_text("\n".join(saved[::-1]))
    second = SentimentTask(config, run_dir=tmp_path)
    second.prepare()
    assert second.vocabulary == saved[::-1]
    assert second.build_model().tokenizer.vocabulary == saved[::-1]


def test_file_source_labels_by_name_and_splits(tmp_path):
    rows = [f"review number {i} was {'fine' if i % 3 else 'awful'}\t{'ok' if i % 3 else 'bad'}"
            for i in range(50)]
    path = tmp_path / "reviews.tsv"
    path.write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    task = SentimentTask(SentimentConfig(units=4, embedding_dim=4), data=f"file:{path}")
    task.prepare()
    assert task.class_names == ["bad", "ok"]
    assert [len(task.splits[s][0]) for s in ("train", "validation", "test")] == [40, 5, 5]
    for texts, labels in task.splits.values():
        assert all((label == 1) == ("fine" in text) for text, label in zip(texts, labels))
    per_example_loss, metrics = task.compute_loss(
        task.build_model(), next(iter(task.train_dataset(8))), training=False)
    assert per_example_loss.shape == (8,) and metrics["accuracy"].shape == (8,)


@pytest.mark.parametrize("override,message", [
    ("model.cell=rnn", "model.cell 'rnn'; accepted: lstm, gru"),
    ("model.pooling=last", "model.pooling 'last'; accepted: final, mean, max"),
    ("model.units=0", "model.units must be at least 1"),
])
def test_bad_config_is_rejected_with_accepted_values(override, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        run_directory.configure("sentiment", tmp_path, overrides=[override])


def test_unknown_builtin_name_lists_accepted(tmp_path):
    task = SentimentTask(SentimentConfig(), data="builtin:imdb")
    with pytest.raises(ValueError, match="accepted: builtin, builtin:sentiment"):
        task.prepare()
