"""Greedy, beam-search and sampling decoders written in pure TF ops, so they live inside SavedModels.

Every decoder drives a `step_fn(tokens, state) -> (logits, new_state)` whose state is any nested
structure of batch-major tensors, so any autoregressive model (translation, captioning) can use it.
"""

from seqzoo.zoo.decoding.beam_search import beam_search, length_penalty_factor, tile_beams
from seqzoo.zoo.decoding.decode import METHODS, decode
from seqzoo.zoo.decoding.greedy import greedy_decode
from seqzoo.zoo.decoding.sampling import sample_decode

__all__ = ["METHODS", "beam_search", "decode", "greedy_decode", "length_penalty_factor",
           "sample_decode", "tile_beams"]
