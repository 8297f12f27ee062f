"""Reusable recurrent layers, one public class per module."""

from seqzoo.zoo.layers.attention_decoder import AttentionDecoder  # noqa: E402,F401
from seqzoo.zoo.layers.bahdanau_attention import BahdanauAttention  # noqa: E402,F401
from seqzoo.zoo.layers.bidirectional_encoder import BidirectionalEncoder  # noqa: E402,F401
from seqzoo.zoo.layers.elman_cell import ElmanCell  # noqa: E402,F401
from seqzoo.zoo.layers.gru import GRU  # noqa: E402,F401
from seqzoo.zoo.layers.learned_initial_state import LearnedInitialState  # noqa: E402,F401
from seqzoo.zoo.layers.lstm import LSTM  # noqa: E402,F401
from seqzoo.zoo.layers.luong_attention import LuongAttention  # noqa: E402,F401
from seqzoo.zoo.layers.state_bridge import StateBridge  # noqa: E402,F401
