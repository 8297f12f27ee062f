"""What the serving modules of text-writing models share: beam, greedy, n-best and attention."""

from __future__ import annotations

import tensorflow as tf


class TextGenerationModule(tf.Module):
    """Base of the serving modules of models that write text (translators, captioners).

    A subclass reads its raw inputs (text, image bytes, pixels) into the model's inputs and
    implements two hooks; this class turns them into the outputs of every signature, so every
    text-writing export answers alike: the best beam-search hypothesis with its score, greedy
    decoding, n-best lists, and the attention weights behind the best hypothesis.

    Subclasses set `output_name` (e.g. `"translation"`; n-best lists are named with an `s`)
    and implement:
        `_generate(inputs, method, num_results)`: the model's `(tokens, lengths, scores)` for
            decoding `method` ("greedy" or "beam"), called with `**self.decode_settings(...)`.
        `_attention_weights(inputs, target_in)`: the model's attention weights under teacher
            forcing with `target_in` (the tokens behind a start token).

    Args:
        model: the trained model.
        tokenizer: the tokenizer of the written text (`detokenize`, `id_to_token`,
            `behind_start`).
        beam_width: beam width of `serving_default`, `nbest` and `attention` (1 is greedy).
        num_results: size of the n-best lists, at most `beam_width` (default: `beam_width`).
        length_penalty: beam search length penalty exponent.
        max_length: most tokens generated per output (the end token counts).
        name: optional module name.
    """

    output_name = "text"

    def __init__(self, model, tokenizer, beam_width=4, num_results=None, length_penalty=0.0,
                 max_length=64, name=None):
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
        self.tokenizer = tokenizer
        self.beam_width = beam_width
        self.num_results = num_results
        self.length_penalty = float(length_penalty)
        self.max_length = max_length

    def _generate(self, inputs, method, num_results=1):
        raise NotImplementedError

    def _attention_weights(self, inputs, target_in):
        raise NotImplementedError

    def decode_settings(self, num_results=1) -> dict:
        """Keyword arguments of the model's decoding method for this module's settings."""
        return {"max_length": self.max_length, "beam_width": self.beam_width,
                "length_penalty": self.length_penalty, "num_results": num_results}

    def best_outputs(self, inputs):
        """`{output_name: [batch] string, "score": [batch]}` of beam search."""
        tokens, _, scores = self._generate(inputs, "beam")
        return {self.output_name: self.tokenizer.detokenize(tokens[:, 0]), "score": scores[:, 0]}

    def greedy_outputs(self, inputs):
        """`{output_name, "score"}` of greedy decoding (the score sums log-probabilities)."""
        tokens, _, scores = self._generate(inputs, "greedy")
        return {self.output_name: self.tokenizer.detokenize(tokens), "score": scores}

    def nbest_outputs(self, inputs):
        """`{output_name + "s": [batch, num_results] string, "scores"}`, best first."""
        tokens, _, scores = self._generate(inputs, "beam", self.num_results)
        shape = tf.shape(tokens)
        flat = tf.reshape(tokens, [shape[0] * shape[1], shape[2]])
        texts = tf.reshape(self.tokenizer.detokenize(flat), shape[:2])
        return {f"{self.output_name}s": texts, "scores": scores}

    def attention_outputs(self, inputs):
        """The best beam-search hypothesis and the attention weights that wrote it.

        Returns `(text, tokens, weights)`: the text `[batch]`, its tokens (string
        `[batch, time]`, the end token `</s>` included, padding `""`) and float32 weights
        `[batch, time, memory_time]`, row t the weights the decoder used to write token t.
        """
        tokens, _, _ = self._generate(inputs, "beam")
        tokens = tokens[:, 0]
        weights = self._attention_weights(inputs, self.tokenizer.behind_start(tokens))
        return (self.tokenizer.detokenize(tokens), self.tokenizer.id_to_token(tokens),
                tf.cast(weights, tf.float32))
