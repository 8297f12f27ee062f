"""The serving signatures of captioning models: image bytes or pixels in, captions out."""

from __future__ import annotations

import tensorflow as tf

from seqzoo.zoo.image_preprocessing import check_pixels, decode_images
from seqzoo.zoo.models.text_generation_module import TextGenerationModule


class CaptioningServingModule(TextGenerationModule):
    """Wraps an `ImageCaptioner` and its caption tokenizer in the signatures it is exported with.

    Everything runs in the graph: image decoding and resizing, encoding, beam search or greedy
    decoding and detokenization, so clients send image files as they are.

    Args:
        model: a trained `ImageCaptioner`.
        tokenizer: the caption `TranslationTokenizer` (word level).
        beam_width: beam width of `serving_default`, `nbest`, `attention` and `pixels`.
        num_results: size of the `nbest` lists, at most `beam_width` (default: `beam_width`).
        length_penalty: beam search length penalty exponent.
        max_length: most caption tokens generated per image (the end token counts).
        name: optional module name.

    Signatures:
        `serving_default`: input `image`, string `[batch]` of JPEG or PNG bytes (any size;
            resized to the model's `image_size`); outputs `caption` string `[batch]` and
            `score` float32 `[batch]` (the beam search score).
        `greedy`: the same from greedy decoding (the score sums log-probabilities).
        `nbest`: `captions` string `[batch, num_results]` and `scores`, best first.
        `attention`: the `serving_default` caption, its `tokens` string `[batch, time]` (the
            end token `</s>` included, padding `""`) and `attention` float32
            `[batch, time, grid_h, grid_w]`: the weights over the region grid with which each
            token was written.
        `pixels`: input `pixels`, float32 `[batch, height, width, 3]` RGB values in [0, 255]
            (any size), outputs as `serving_default`.
    Undecodable or empty images and bad pixel values fail with INVALID_ARGUMENT naming the
    input.

    Example:
        >>> module = CaptioningServingModule(model, tokenizer)
        >>> tf.saved_model.save(module, "export/1", signatures=module.signatures)
        >>> module.serve(tf.constant([open("shapes.png", "rb").read()]))["caption"].numpy()
        array([b'a small red circle left of a blue square'], dtype=object)
    """

    output_name = "caption"

    def __init__(self, model, tokenizer, beam_width=4, num_results=None, length_penalty=0.0,
                 max_length=32, name=None):
        super().__init__(model, tokenizer, beam_width=beam_width, num_results=num_results,
                         length_penalty=length_penalty, max_length=max_length, name=name)
        image = [tf.TensorSpec([None], tf.string, name="image")]
        self.serve = tf.function(self._serve, input_signature=image)
        self.greedy = tf.function(self._greedy, input_signature=image)
        self.nbest = tf.function(self._nbest, input_signature=image)
        self.attention = tf.function(self._attention, input_signature=image)
        self.pixels = tf.function(
            self._pixels, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32,
                                                         name="pixels")])

    @property
    def signatures(self):
        """Signature name to function; a property, since SavedModel reserves the attribute."""
        return {"serving_default": self.serve, "greedy": self.greedy, "nbest": self.nbest,
                "attention": self.attention, "pixels": self.pixels}

    def _generate(self, images, method, num_results=1):
        return self.model.caption(images, method=method, **self.decode_settings(num_results))

    def _attention_weights(self, images, target_in):
        return self.model({"image": images, "target_in": target_in}, training=False)["attention"]

    def _decode(self, image):
        return decode_images(image, self.model.image_size, name="image")

    def _serve(self, image):
        return self.best_outputs(self._decode(image))

    def _greedy(self, image):
        return self.greedy_outputs(self._decode(image))

    def _nbest(self, image):
        return self.nbest_outputs(self._decode(image))

    def _attention(self, image):
        caption, tokens, weights = self.attention_outputs(self._decode(image))
        shape = tf.shape(weights)
        grid = tf.reshape(weights, [shape[0], shape[1], *self.model.grid_shape])
        return {"caption": caption, "tokens": tokens, "attention": grid}

    def _pixels(self, pixels):
        return self.best_outputs(check_pixels(pixels, self.model.image_size, name="pixels"))
