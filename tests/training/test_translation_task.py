"""TranslationTask through the training loop: learning on dates, mirrored runs that resume,
vocabularies kept in the run directory, masked losses, word-level files and TFDS."""

import json

import numpy as np
import pytest
import sacrebleu
import tensorflow as tf
import tensorflow_datasets as tfds

from seqzoo.training import loop, run_directory
from seqzoo.training.tasks.translation import TranslationConfig, TranslationTask


def test_dates_reach_stated_exact_match_and_beam_is_not_worse(tmp_path):
    # The default run (1000 steps) reaches >= 98%; this shortened one must reach 80%.
    config = run_directory.configure("translation", tmp_path, overrides=[
        "data=builtin:dates", "train.steps=300", "train.learning_rate=0.004",
        "train.checkpoint_every=1000", "model.embedding_dim=32", "model.num_train=20000",
        "model.num_validation=300",
    ])
    metrics = loop.train(config, tmp_path, progress=False)
    assert metrics["exact_match"] >= 0.8, metrics
    assert metrics["bleu"] >= 95.0, metrics
    assert metrics["beam_exact_match"] >= metrics["exact_match"] - 1 / 300, metrics
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(metrics)
    # The checkpoint holds every weight: the restored model translates exactly as well.
    task, model = run_directory.restore(tmp_path)
    assert task.evaluate(model) == pytest.approx(metrics)


def test_mirrored_run_resumes_with_the_saved_vocabularies(tmp_path):
    # The first part on one device (cheaper to trace); the resumed part on two replicas.
    overrides = ["data=builtin:long", "train.strategy=one_device", "train.batch_size=8",
                 "train.checkpoint_every=3", "model.units=8", "model.embedding_dim=8",
                 "model.num_train=200", "model.num_validation=8", "model.eval_beam=false",
                 "model.max_target_length=8"]
    first = run_directory.configure("translation", tmp_path, overrides=overrides + ["train.steps=3"])
    loop.train(first, tmp_path, progress=False)
    vocabulary = (tmp_path / "assets" / "source_vocabulary.txt").read_text()
    assert sorted(vocabulary.split("\n")) == sorted("abcdefghijklmnop")
    second = run_directory.configure("translation", tmp_path, overrides=[
        "train.steps=6", "train.strategy=mirrored"])
    assert second.data == "builtin:long" and second.model.units == 8
    loop.train(second, tmp_path, progress=False)
    checkpoint = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert checkpoint.endswith("-6")
    assert (tmp_path / "assets" / "source_vocabulary.txt").read_text() == vocabulary


def test_vocabularies_are_reloaded_not_rebuilt(tmp_path):
    first = TranslationTask(TranslationConfig(num_train=100, num_validation=5),
                            data="builtin:dates", run_dir=tmp_path, seed=0)
    first.prepare()
    # Other data in the same run directory keeps the run's ids: the vocabulary files win.
    second = TranslationTask(TranslationConfig(num_train=100, num_validation=5),
                             data="builtin:long", run_dir=tmp_path, seed=0)
    second.prepare()
    assert second.source_tokenizer.vocabulary == first.source_tokenizer.vocabulary
    assert second.target_tokenizer.vocabulary == first.target_tokenizer.vocabulary


def test_loss_is_the_masked_mean_cross_entropy_of_each_sentence(tmp_path):
    task = TranslationTask(TranslationConfig(units=8, embedding_dim=8, num_train=50,
                                             num_validation=5), data="builtin:dates")
    task.prepare()
    model = task.build_model()
    batch = task.encode_batch(tf.constant(["1.2.99", "the first of May, 2001"]),
                              tf.constant(["1999-02-01", "20"]))
    np.testing.assert_array_equal(batch["target_in"][:, 0], [2, 2])
    np.testing.assert_array_equal(batch["target_in"][:, 1:], batch["target_out"][:, :-1])
    loss, metrics = task.compute_loss(model, batch, training=False)
    logits = model({"source": batch["source"], "target_in": batch["target_in"]})["logits"]
    logits = logits.numpy().astype(np.float64)
    targets = batch["target_out"].numpy()
    for row in range(2):
        n = int((targets[row] != 0).sum())
        shifted = logits[row, :n] - logits[row, :n].max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        expected = -log_probs[np.arange(n), targets[row, :n]].mean()
        np.testing.assert_allclose(loss[row], expected, rtol=1e-4)
        accuracy = (logits[row, :n].argmax(-1) == targets[row, :n]).mean()
        np.testing.assert_allclose(metrics["token_accuracy"][row], accuracy, rtol=1e-6)
    assert int((targets[1] != 0).sum()) == 3  # "20" and the end token


def test_word_level_file_data_with_unknown_words(tmp_path):
    path = tmp_path / "pairs.tsv"
    rows = ["the cat sleeps\tle chat dort", "the dog sleeps\tle chien dort",
            "a cat eats\tun chat mange"] * 10
    path.write_text("\n".join(rows), encoding="utf-8")
    task = TranslationTask(TranslationConfig(units=8, embedding_dim=8, eval_beam=False),
                           data=f"file:{path}", run_dir=tmp_path / "run")
    task.prepare()
    assert task.level == "word"
    ids = task.source_tokenizer(tf.constant(["the bird sleeps ."])).numpy()[0]
    tokens = task.source_tokenizer.id_to_token(ids).numpy().tolist()
    assert tokens == [b"the", b"<unk>", b"sleeps", b"<unk>"]
    metrics = task.evaluate(task.build_model())
    assert set(metrics) == {"exact_match", "bleu"}
    assert 0.0 <= metrics["exact_match"] <= 1.0


def test_tfds_translation_task_prepares_from_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=16):
        task = TranslationTask(TranslationConfig(), data="tfds:ted_hrlr_translate/pt_to_en",
                               run_dir=tmp_path)
        task.prepare()
    assert len(task.train_pairs) == 16 and task.level == "word"
    assert (tmp_path / "assets" / "target_vocabulary.txt").is_file()
    batch = next(iter(task.train_dataset(4)))
    assert batch["source"].shape[0] == 4 and batch["target_out"].dtype == tf.int32


def test_bad_settings_name_what_is_accepted():
    with pytest.raises(ValueError, match="accepted: bahdanau, luong_general, luong_dot, none"):
        TranslationConfig(attention="cosine")
    with pytest.raises(ValueError, match="decoder_units"):
        TranslationConfig(attention="luong_dot", decoder_units=7)
    with pytest.raises(ValueError, match="accepted: auto, char, word"):
        TranslationConfig(tokenizer="bpe")


def test_scores_compare_word_translations_token_by_token():
    task = TranslationTask(TranslationConfig(tokenizer="word", lowercase=True), data="file:x")
    hypotheses = ["hello , world !", "good  day", "bad"]
    references = ["Hello, world!", "good day", "fine"]
    scores = task.score(hypotheses, references)
    assert scores["exact_match"] == pytest.approx(2 / 3)
    expected = sacrebleu.corpus_bleu(["hello , world !", "good day", "bad"],
                                     [["hello , world !", "good day", "fine"]]).score
    assert scores["bleu"] == pytest.approx(expected)
