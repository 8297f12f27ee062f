"""Reusable recurrent layers, one public class per module."""

from zoo.layers.bidirectional_encoder import BidirectionalEncoder  # noqa: E402,F401
