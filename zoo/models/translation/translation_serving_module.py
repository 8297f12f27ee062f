"""The serving signatures of translation models: text in, translations, n-best and attention out."""

from __future__ import annotations

import tensorflow as tf

from seqzoo.zoo.models.translation.translation_tokenizer import START_ID


class TranslationServingModule(tf.Module):
    """Wraps a `Seq2SeqTranslator` and its tokenizers in the signatures it is exported with.

    Everything runs in the graph: tokenization, encoding, beam search or greedy decoding and
    detokenization, so clients send raw text.

    Args:
        model: a trained `Seq2SeqTranslator`.
        source_tokenizer: the `TranslationTokenizer` of the source side.
        target_tokenizer: the `TranslationTokenizer` of the target side.
        beam_width: beam width of `serving_default`, `nbest` and `attention` (1 is greedy).
        num_results: size of the `nbest` lists, at most `beam_width` (default: `beam_width`).
        length_penalty: beam search length penalty exponent.
        max_length: most target tokens generated per sentence.
        name: optional module name.

    Signatures (every one takes `text`, string `[batch]`):
        `serving_default`: `translation` string `[batch]`, `score` float32 `[batch]` (the beam
            search score: log-probability divided by the length penalty).
        `greedy`: the same outputs from greedy decoding.
        `nbest`: `translations` string `[batch, num_results]` and `scores` float32
            `[batch, num_results]`, best first.
        `attention`: the `serving_default` translation with `source_tokens` string
            `[batch, source_time]`, `target_tokens` string `[batch, target_time]` (the end
            token `</s>` included; padding is `""`) and `attention` float32
            `[batch, target_time, source_time]`: row t holds the weights the decoder used to
            write target token t.

    Example:
        >>> module = TranslationServingModule(model, source_tokenizer, target_tokenizer)
        >>> tf.saved_model.save(module, "export/1", signatures=module.signatures)
        >>> module.serve(tf.constant(["the third of March, 2021"]))["translation"].numpy()
        array([b'2021-03-03'], dtype=object)
    """

    def __init__(self, model, source_tokenizer, target_tokenizer, beam_width=4, num_results=None,
                 length_penalty=0.0, max_length=64, name=None):
        super().__init__(name=name)
        num_results = beam_width if num_results is None else num_results
        if not isinstance(beam_width, int) or beam_width < 1:
            raise ValueError(f"beam_width must be an int >= 1. Received: beam_width={beam_width}")
        if not isinstance(num_results, int) or not 1 <= num_results <= beam_width:
            raise ValueError(
                f"num_results must be an int in [1, beam_width={beam_width}]. Received: "
                f"num_results={num_results}"
            )
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.beam_width = beam_width
        self.num_results = num_results
        self.length_penalty = float(length_penalty)
        self.max_length = max_length
        spec = [tf.TensorSpec([None], tf.string, name="text")]
        self.serve = tf.function(self._serve, input_signature=spec)
        self.greedy = tf.function(self._greedy, input_signature=spec)
        self.nbest = tf.function(self._nbest, input_signature=spec)
        self.attention = tf.function(self._attention, input_signature=spec)

    @property
    def signatures(self):
        """Signature name to function; a property, since SavedModel reserves the attribute."""
        return {"serving_default": self.serve, "greedy": self.greedy, "nbest": self.nbest,
                "attention": self.attention}

    def _beam(self, text, num_results):
        source = self.source_tokenizer(text)
        tokens, _, scores = self.model.translate(
            source, method="beam", max_length=self.max_length, beam_width=self.beam_width,
            length_penalty=self.length_penalty, num_results=num_results,
        )
        return source, tokens, scores

    def _serve(self, text):
        _, tokens, scores = self._beam(text, 1)
        return {"translation": self.target_tokenizer.detokenize(tokens[:, 0]),
                "score": scores[:, 0]}

    def _greedy(self, text):
        tokens, _, scores = self.model.translate(self.source_tokenizer(text), method="greedy",
                                                 max_length=self.max_length)
        return {"translation": self.target_tokenizer.detokenize(tokens), "score": scores}

    def _nbest(self, text):
        _, tokens, scores = self._beam(text, self.num_results)
        shape = tf.shape(tokens)
        flat = tf.reshape(tokens, [shape[0] * shape[1], shape[2]])
        translations = tf.reshape(self.target_tokenizer.detokenize(flat), shape[:2])
        return {"translations": translations, "scores": scores}

    def _attention(self, text):
        source, tokens, _ = self._beam(text, 1)
        tokens = tokens[:, 0]
        start = tf.fill([tf.shape(tokens)[0], 1], tf.constant(START_ID, tf.int32))
        target_in = tf.concat([start, tokens[:, :-1]], axis=1)
        weights = self.model({"source": source, "target_in": target_in},
                             training=False)["attention"]
        return {
            "translation": self.target_tokenizer.detokenize(tokens),
            "source_tokens": self.source_tokenizer.id_to_token(source),
            "target_tokens": self.target_tokenizer.id_to_token(tokens),
            "attention": tf.cast(weights, tf.float32),
        }
