"""Recurrent networks as the lecture writes them, and the tools that show how they train.

`ElmanNetwork` (hidden and context units, an output reading both), `TruncatedBPTT` (chunked
training with the state carried across chunks), `gradient_flow` (‖∂s_t/∂s_k‖ against t − k per
cell, and its plot) and `long_lag_tasks` (the adding problem and the copy task of Hochreiter &
Schmidhuber, 1997, and a delayed echo), with `long_lag_training` to train any cell on them.
"""

from seqzoo.zoo.models.recurrent.elman_network import ElmanNetwork  # noqa: F401
from seqzoo.zoo.models.recurrent.truncated_bptt import TruncatedBPTT  # noqa: F401
