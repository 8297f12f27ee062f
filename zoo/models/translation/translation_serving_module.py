"""The serving signatures of translation models: text in, translations, n-best and attention out."""

from __future__ import annotations

import tensorflow as tf

from seqzoo.zoo.models.text_generation_module import TextGenerationModule


class TranslationServingModule(TextGenerationModule):
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

    output_name = "translation"

    def __init__(self, model, source_tokenizer, target_tokenizer, beam_width=4, num_results=None,
                 length_penalty=0.0, max_length=64, name=None):
        super().__init__(model, target_tokenizer, beam_width=beam_width, num_results=num_results,
                         length_penalty=length_penalty, max_length=max_length, name=name)
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
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

    def _generate(self, source, method, num_results=1):
        return self.model.translate(source, method=method, **self.decode_settings(num_results))

    def _attention_weights(self, source, target_in):
        return self.model({"source": source, "target_in": target_in}, training=False)["attention"]

    def _serve(self, text):
        return self.best_outputs(self.source_tokenizer(text))

    def _greedy(self, text):
        return self.greedy_outputs(self.source_tokenizer(text))

    def _nbest(self, text):
        return self.nbest_outputs(self.source_tokenizer(text))

    def _attention(self, text):
        source = self.source_tokenizer(text)
        translation, tokens, weights = self.attention_outputs(source)
        return {"translation": translation,
                "source_tokens": self.source_tokenizer.id_to_token(source),
                "target_tokens": tokens, "attention": weights}
