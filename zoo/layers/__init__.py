"""Reusable recurrent layers, one public class per module."""

from zoo.layers.bidirectional_encoder import BidirectionalEncoder  # noqa: E402,F401
from zoo.layers.elman_cell import ElmanCell  # noqa: E402,F401
from zoo.layers.learned_initial_state import LearnedInitialState  # noqa: E402,F401
