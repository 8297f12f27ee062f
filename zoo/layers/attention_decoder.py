"""A recurrent decoder (LSTM or GRU stack) with additive or multiplicative attention."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from seqzoo.zoo._checks import check_one_of, check_positive_int, check_rate
from seqzoo.zoo.layers.bahdanau_attention import BahdanauAttention
from seqzoo.zoo.layers.luong_attention import LuongAttention
from seqzoo.zoo.layers.recurrent_cells import CELLS, states_per_cell

_CELL_CLASSES = {"lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell}
ATTENTIONS = ("bahdanau", "luong_general", "luong_dot", "none")


@keras.saving.register_keras_serializable(package="seqzoo")
class AttentionDecoder(keras.layers.Layer):
    """Recurrent decoder over a memory (the encoder outputs) with attention, step by step.

    At every step the previous target token is embedded and fed to a stack of LSTM or GRU
    cells. With `"bahdanau"` (additive) attention the context is computed from the previous top
    hidden state and fed to the cells with the embedding; with `"luong_general"` or
    `"luong_dot"` (multiplicative) the context is computed from the new top hidden state and the
    previous attentional vector is fed back with the embedding (input feeding). The attentional
    vector `tanh(W [h; context])` is projected to vocabulary logits. `"none"` decodes from the
    initial state alone (a plain encoder-decoder) and returns zero attention weights.

    Training uses teacher forcing: `call` reads the whole target-input sequence (the target
    shifted right behind a start token). Decoding calls `step` through the `seqzoo.zoo.decoding`
    functions, after `project_memory` has precomputed the query-independent attention terms.

    Args:
        vocab_size: positive int, number of target tokens (logits size).
        units: positive int, size of every cell and of the attentional vector.
        embedding_dim: positive int, size of the target embeddings. Defaults to `units`.
        cell: `"lstm"` (default) or `"gru"`.
        num_layers: positive int, number of stacked cells. Defaults to 1.
        attention: `"bahdanau"` (default), `"luong_general"`, `"luong_dot"` or `"none"`.
            `"luong_dot"` needs the memory size to equal `units`.
        dropout: float in [0, 1), dropout on the embeddings and on the attentional vectors
            during training.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[target_in, memory, *initial_states]`: int tokens `[batch, target_time]`, the
            memory `[batch, source_time, memory_dim]` and optionally the flat initial states of
            the cells (layer by layer, Keras order, e.g. from `StateBridge`); zeros when omitted.
        mask: optional boolean memory mask `[batch, source_time]` (or a list whose second item
            is it); masked source steps get zero attention. Target padding needs no mask: steps
            are causal, so right padding never changes the outputs at valid steps.
        training: Python bool, whether dropout is active.

    Returns:
        `(logits, attention)`: logits `[batch, target_time, vocab_size]`, attention weights
        `[batch, target_time, source_time]`.

    Example:
        >>> decoder = AttentionDecoder(vocab_size=12, units=8, attention="luong_general")
        >>> tokens = np.array([[1, 4, 5], [1, 7, 0]])
        >>> memory = np.random.rand(2, 6, 10).astype("float32")
        >>> logits, attention = decoder([tokens, memory])
        >>> tuple(logits.shape), tuple(attention.shape)
        ((2, 3, 12), (2, 3, 6))
    """

    def __init__(self, vocab_size, units, embedding_dim=None, cell="lstm", num_layers=1,
                 attention="bahdanau", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("vocab_size", vocab_size), ("units", units),
                            ("num_layers", num_layers)):
            check_positive_int(name, value)
        embedding_dim = units if embedding_dim is None else embedding_dim
        check_positive_int("embedding_dim", embedding_dim)
        check_one_of("cell", cell, CELLS)
        check_one_of("attention", attention, ATTENTIONS)
        check_rate("dropout", dropout)
        self.vocab_size = vocab_size
        self.units = units
        self.embedding_dim = embedding_dim
        self.cell = cell
        self.num_layers = num_layers
        self.attention = attention
        self.dropout = dropout

        self.states_per_layer = states_per_cell(cell)
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim,
                                                dtype=self.dtype_policy, name="embedding")
        # One attribute per cell: tf.train.Checkpoint does not track layers kept in a list.
        for index in range(num_layers):
            setattr(self, f"cell_{index}", _CELL_CLASSES[cell](units, dtype=self.dtype_policy,
                                                      name=f"cell_{index}"))
        self.attention_layer = None
        if attention == "bahdanau":
            self.attention_layer = BahdanauAttention(units, dtype=self.dtype_policy,
                                                     name="attention")
        elif attention.startswith("luong"):
            self.attention_layer = LuongAttention(attention.split("_")[1],
                                                  dtype=self.dtype_policy, name="attention")
        self.combine = keras.layers.Dense(units, activation="tanh", use_bias=False,
                                          dtype=self.dtype_policy, name="combine")
        self.logits_dense = keras.layers.Dense(vocab_size, dtype=self.dtype_policy,
                                               name="logits")
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    @property
    def cells(self):
        """The recurrent cells, bottom first."""
        return [getattr(self, f"cell_{index}") for index in range(self.num_layers)]

    @property
    def num_states(self):
        """Number of flat initial-state tensors: `num_layers` times 2 (LSTM) or 1 (GRU)."""
        return self.num_layers * self.states_per_layer

    def build(self, input_shape):
        memory_shape = tuple(input_shape[1])
        memory_dim = int(memory_shape[-1])
        self.embedding.build(tuple(input_shape[0]))
        feed_dim = {"bahdanau": memory_dim, "none": 0}.get(self.attention, self.units)
        for index, cell in enumerate(self.cells):
            cell.build((None, self.embedding_dim + feed_dim if index == 0 else self.units))
        if self.attention_layer is not None:
            self.attention_layer.build([(None, self.units), memory_shape])
            self.combine.build((None, self.units + memory_dim))
        self.logits_dense.build((None, self.units))

    def initial_state(self, memory, states=None):
        """The loop state `{"cells": [...], "feed": ...}` from flat cell states (zeros if None)."""
        batch = ops.shape(memory)[0]
        zeros = ops.zeros((batch, self.units), self.compute_dtype)
        cells = list(states) if states else [zeros] * self.num_states
        if len(cells) != self.num_states:
            raise ValueError(
                f"AttentionDecoder({self.cell}, num_layers={self.num_layers}) takes "
                f"{self.num_states} initial states. Received: {len(cells)} states"
            )
        return {"cells": cells, "feed": zeros}

    def project_memory(self, memory):
        """Query-independent attention terms, computed once per source sentence."""
        if self.attention_layer is None:
            return memory
        return self.attention_layer.project_memory(memory)

    def _attend(self, query, memory, keys, memory_mask):
        if self.attention_layer is None:
            return None, ops.zeros_like(memory[:, :, 0])
        return self.attention_layer.attend(query, memory, keys, memory_mask)

    def _advance(self, embedded, state, memory, keys, memory_mask):
        """One step from embedded tokens: returns (attentional vector, new state, weights)."""
        cells = state["cells"]
        per_layer = self.states_per_layer
        if self.attention == "bahdanau":
            top_hidden = cells[(self.num_layers - 1) * per_layer]
            context, weights = self._attend(top_hidden, memory, keys, memory_mask)
            inputs = ops.concatenate([embedded, context], axis=-1)
        elif self.attention == "none":
            inputs = embedded
        else:
            inputs = ops.concatenate([embedded, state["feed"]], axis=-1)
        new_cells = []
        for index, cell in enumerate(self.cells):
            inputs, layer_states = cell(inputs, cells[index * per_layer:(index + 1) * per_layer])
            new_cells.extend(layer_states)
        if self.attention.startswith("luong"):
            context, weights = self._attend(inputs, memory, keys, memory_mask)
        if self.attention == "none":
            output, weights = inputs, ops.zeros_like(memory[:, :, 0])
        else:
            output = self.combine(ops.concatenate([inputs, context], axis=-1))
        return output, {"cells": new_cells, "feed": output}, weights

    def step(self, tokens, state, memory, keys, memory_mask=None):
        """One decoding step: `tokens [batch]` -> `(logits [batch, vocab], new_state, weights)`."""
        output, state, weights = self._advance(self.embedding(tokens), state, memory, keys,
                                               memory_mask)
        return self.logits_dense(output), state, weights

    def decoding_start(self, memory, states=None, memory_mask=None, start_id=0, never=()):
        """`(step_fn, initial_state, start_tokens)` for the `seqzoo.zoo.decoding` functions.

        Args:
            memory: `[batch, source_time, memory_dim]`, what the decoder attends over.
            states: optional flat initial cell states (zeros when omitted).
            memory_mask: optional boolean `[batch, source_time]`, False at padding.
            start_id: int, the first input token of every sequence.
            never: token ids that are never generated (e.g. padding and start): their logits
                are pushed to -1e9 so they stay out of every beam.

        The state carries the memory, its mask and projected keys, so beam search tiles and
        reorders them with the hypotheses.
        """
        state = {"decoder": self.initial_state(memory, states), "memory": memory,
                 "keys": self.project_memory(memory)}
        if memory_mask is not None:
            state["mask"] = memory_mask
        banned = tf.scatter_nd([[token] for token in never], [-1e9] * len(never),
                               [self.vocab_size]) if never else tf.zeros([self.vocab_size])

        def step_fn(tokens, state):
            logits, decoder_state, _ = self.step(tokens, state["decoder"], state["memory"],
                                                 state["keys"], state.get("mask"))
            return logits + tf.cast(banned, logits.dtype), {**state, "decoder": decoder_state}

        start = tf.fill([tf.shape(memory)[0]], tf.constant(start_id, tf.int32))
        return step_fn, state, start

    def call(self, inputs, mask=None, training=None):
        target, memory, *states = inputs
        memory_mask = mask[1] if isinstance(mask, (list, tuple)) else mask
        keys = self.project_memory(memory)
        embedded = self.dropout_layer(self.embedding(target), training=training)
        steps = ops.shape(target)[1]
        time_major = tf.transpose(embedded, [1, 0, 2])
        outputs = tf.TensorArray(self.compute_dtype, size=steps)
        weights = tf.TensorArray(self.compute_dtype, size=steps)

        def body(t, state, outputs, weights):
            output, state, step_weights = self._advance(time_major[t], state, memory, keys,
                                                        memory_mask)
            return t + 1, state, outputs.write(t, output), weights.write(t, step_weights)

        _, _, outputs, weights = tf.while_loop(
            lambda t, *_: t < steps, body,
            (tf.constant(0), self.initial_state(memory, states), outputs, weights),
        )
        outputs = self.dropout_layer(tf.transpose(outputs.stack(), [1, 0, 2]), training=training)
        return self.logits_dense(outputs), tf.transpose(weights.stack(), [1, 0, 2])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size,
            "units": self.units,
            "embedding_dim": self.embedding_dim,
            "cell": self.cell,
            "num_layers": self.num_layers,
            "attention": self.attention,
            "dropout": self.dropout,
        })
        return config
