"""TranslationTokenizer and Seq2SeqTranslator: ids by hand, masks, decoding consistency, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from decoding_checks import assert_decoding_follows_teacher_forcing

from seqzoo.zoo.models.translation import Seq2SeqTranslator, TranslationTokenizer

SOURCE = np.array([[5, 6, 7, 8, 0, 0], [9, 4, 0, 0, 0, 0], [4, 5, 6, 7, 8, 9]], "int32")


def test_character_ids_by_hand_and_unknown_characters():
    tokenizer = TranslationTokenizer(["a", "b", " "], add_end=True)
    ids = tokenizer(tf.constant(["ab  a", "c", ""])).numpy()
    # Whitespace runs collapse to one space; "c" is unknown (1); 3 is the end id.
    np.testing.assert_array_equal(ids, [[4, 5, 6, 4, 3], [1, 3, 0, 0, 0], [3, 0, 0, 0, 0]])
    text = tokenizer.detokenize(tf.constant([[4, 1, 5, 3, 4], [2, 5, 0, 0, 0]])).numpy()
    assert text.tolist() == [b"a<unk>b", b"b"]


def test_word_level_splits_punctuation_lowercases_and_truncates():
    vocabulary = TranslationTokenizer.build_vocabulary(
        ["Olá, mundo!", "olá olá mundo"], level="word", lowercase=True)
    assert vocabulary == ["olá", "mundo", ",", "!"]
    tokenizer = TranslationTokenizer(vocabulary, level="word", lowercase=True, max_length=3)
    ids = tokenizer(tf.constant(["MUNDO, olá! bom", "olá"])).numpy()
    np.testing.assert_array_equal(ids, [[5, 6, 4], [4, 0, 0]])
    tokens = tokenizer.id_to_token(ids).numpy().tolist()
    assert tokens == [[b"mundo", b",", "olá".encode()], ["olá".encode(), b"", b""]]
    assert tokenizer.detokenize(ids).numpy().tolist() == ["mundo , olá".encode(), "olá".encode()]


def test_vocabulary_counts_min_count_and_size():
    texts = ["aab", "abc", "a"]
    assert TranslationTokenizer.build_vocabulary(texts) == ["a", "b", "c"]
    assert TranslationTokenizer.build_vocabulary(texts, min_count=2) == ["a", "b"]
    assert TranslationTokenizer.build_vocabulary(texts, max_size=1) == ["a"]


def test_tokenizer_config_round_trip_gives_equal_ids():
    # The shared layer contract feeds numeric arrays only; string layers are checked here and
    # exported inside the serving signatures (tests/serving/test_translation_serving.py).
    tokenizer = TranslationTokenizer(["x", "y", " "], level="char", lowercase=True,
                                     max_length=4, add_end=True)
    texts = tf.constant(["X y", "yyyyyy", "q"])
    clone = TranslationTokenizer.from_config(tokenizer.get_config())
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(tokenizer))
    for other in (clone, revived):
        np.testing.assert_array_equal(other(texts), tokenizer(texts))
    np.testing.assert_array_equal(tokenizer(texts), [[4, 6, 5, 3, 0], [5, 5, 5, 5, 3],
                                                     [1, 3, 0, 0, 0]])


def test_tokenizer_rejects_bad_vocabularies():
    with pytest.raises(ValueError, match="duplicates \\['a'\\]"):
        TranslationTokenizer(["a", "a"])
    with pytest.raises(ValueError, match="invalid tokens \\['</s>'\\]"):
        TranslationTokenizer(["</s>"])
    with pytest.raises(ValueError, match="level='byte'"):
        TranslationTokenizer(["a"], level="byte")


def small_model(**kwargs):
    settings = {"embedding_dim": 8, "units": 8, **kwargs}
    return Seq2SeqTranslator(12, 10, **settings)


@pytest.mark.parametrize("settings", [
    {},
    {"attention": "luong_dot", "encoder_cell": "gru", "decoder_cell": "gru", "bridge": "learned"},
    {"attention": "none", "encoder_layers": 2, "decoder_layers": 2, "merge_mode": "sum"},
])
def test_teacher_forcing_agrees_with_greedy_and_beam_one(settings):
    model = small_model(**settings)
    assert_decoding_follows_teacher_forcing(
        lambda method, **kw: model.translate(SOURCE, method=method, **kw),
        lambda target_in: model({"source": SOURCE, "target_in": target_in})["logits"])


def test_source_padding_changes_nothing():
    model = small_model()
    target_in = np.array([[2, 4, 5], [2, 6, 7], [2, 8, 9]], "int32")
    padded = np.concatenate([SOURCE, np.zeros((3, 4), "int32")], axis=1)
    short = model({"source": SOURCE, "target_in": target_in})
    long = model({"source": padded, "target_in": target_in})
    np.testing.assert_allclose(long["logits"], short["logits"], atol=1e-5)
    np.testing.assert_allclose(long["attention"][..., :6], short["attention"], atol=1e-6)
    assert np.all(long["attention"].numpy()[..., 6:] == 0.0)
    assert np.all(short["attention"].numpy()[1, :, 2:] == 0.0)
    np.testing.assert_array_equal(model.translate(padded, max_length=5)[0],
                                  model.translate(SOURCE, max_length=5)[0])


def test_keras_save_and_reload_gives_equal_outputs(tmp_path):
    model = small_model(attention="luong_general", decoder_units=6)
    inputs = {"source": SOURCE, "target_in": np.array([[2, 4], [2, 5], [2, 6]], "int32")}
    expected = model(inputs)["logits"].numpy()
    path = tmp_path / "translator.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded, Seq2SeqTranslator)
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_allclose(reloaded(inputs)["logits"], expected, atol=1e-6)


def test_unknown_decoding_method_is_rejected():
    with pytest.raises(ValueError, match="method='viterbi'"):
        small_model().translate(SOURCE, method="viterbi")


def test_sampling_with_top_k_one_translates_like_greedy():
    model = small_model()
    greedy = model.translate(SOURCE, method="greedy", max_length=6)
    sampled = model.translate(SOURCE, method="sample", top_k=1, temperature=0.5, seed=(1, 2),
                              max_length=6)
    np.testing.assert_array_equal(sampled[0], greedy[0])
    np.testing.assert_array_equal(sampled[1], greedy[1])
