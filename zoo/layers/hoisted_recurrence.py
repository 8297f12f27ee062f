"""The CPU kernel of the zoo's `LSTM` and `GRU`: the input projection hoisted out of the time
loop, and a hand-written backward pass.

Keras's own CPU path runs the whole cell in every step of a `tf.while_loop` (input projection
included) and lets TensorFlow differentiate the loop, which stacks every intermediate of every
step and replays them one small op at a time. Here:

- the input projection of all steps is one GEMM `[time * batch, in] @ [in, gates]` before the
  loop; each step runs only `h @ recurrent_kernel` and the gate arithmetic;
- the gradient of the loop is written by hand (`tf.custom_gradient`): the forward loop keeps
  what the backward pass needs (the LSTM's activated gates and `tanh` of its carry; the GRU's
  recurrent projection), the backward loop carries only `h` (and `c`) gradients through
  `recurrent_kernel`, and the weight gradients are one GEMM each over all steps;
- in training (`training=True`, not while exporting) on inputs of static shape, both loops run
  as XLA-compiled functions (a `None` axis, as in batches padded to their longest sequence,
  keeps the standard-op loops: XLA would compile again for every length).
  The profile of a train step on 2 cores says why: in TensorFlow's executor every small op of a
  loop step (`[batch, units]` tensors) costs a dispatch and, with 2 intra-op threads, a split of
  its few thousand elements across threads that costs more than the arithmetic; an LSTM step has
  some 30 of them each way. Compiled, a step is one matrix product and a few fused elementwise
  kernels.
- compiled, a chain of loops still runs mostly on one core: a step's `[batch, units]` matrix
  product is too small to share. So training splits the batch into as many slices as
  TensorFlow has threads (`batch_slices`: slices of at least `MIN_SLICE` examples), each slice
  its own forward and backward loop with the weights shared, and TensorFlow's executor runs
  the chains at once. Rows of a batch never interact in a recurrence, so the results are the
  unsliced ones; the weight gradients of the slices add up. The two directions of a
  `BidirectionalEncoder` level slice their batches too, although they already run at once:
  one chain per direction on 2 cores measured 0.84x-0.91x the speed of two for the GRU, and
  1.03x for the LSTM.

Every op outside training is a standard TensorFlow kernel (`While`, `MatMul`, `TensorList*`,
elementwise ops), so SavedModels holding it serve anywhere TensorFlow does; exports never hold
the compiled functions.

Masks (any pattern, right padding being the common one) are handled outside the loop: the valid
steps of each example are gathered to the front in processing order (reversed for
`go_backwards`), the loop runs over the compacted sequences, and outputs and final states are
gathered back. That gives Keras's semantics exactly: masked steps leave the state unchanged,
their output repeats the last valid output (zeros with `zero_output_for_mask` or before the
first valid step), and the final state is the state after the last valid step.
"""

from __future__ import annotations

import logging
import os

import keras
import tensorflow as tf
from keras import ops

from seqzoo.zoo.layers.portable_rnn import exporting

log = logging.getLogger(__name__)

_LOGGED = set()

# Every slice's loop pays a whole batch's per-step costs (launches, a matrix product too small
# to run at full speed), so small slices cost more than a second core gives back. 16 is from
# loaded measurements only (a batch of 16 in two slices: 0.9x-1.2x of one chain's speed).
MIN_SLICE = 16


def _log_once(layer, kernel: str) -> None:
    """Logs, once per process for each layer class and kernel, which kernel a layer runs."""
    key = (type(layer).__name__, kernel)
    if key not in _LOGGED:
        _LOGGED.add(key)
        log.info("seqzoo %s runs the %s kernel.", type(layer).__name__, kernel)


def fused_kernel_obstacles(layer) -> list[str]:
    """The settings of an `LSTM`/`GRU` that neither cuDNN nor the hoisted kernel computes (the
    conditions of Keras's `cudnn_ok` and of the layer's `inner_loop`), e.g.
    `["activation=relu", "recurrent_dropout=0.2"]`; empty when both can run it."""
    cell = layer.cell
    obstacles = []
    for name, wanted in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
        function = getattr(cell, name)
        if getattr(function, "__name__", None) != wanted:
            obstacles.append(f"{name}={getattr(function, '__name__', function)}")
    if layer.unroll:
        obstacles.append("unroll=True")
    if not cell.use_bias:
        obstacles.append("use_bias=False")
    if cell.recurrent_dropout:
        obstacles.append(f"recurrent_dropout={cell.recurrent_dropout}")
    if not getattr(cell, "reset_after", True):
        obstacles.append("reset_after=False")
    return obstacles


def _cudnn_chosen(layer) -> bool:
    """Whether Keras's own `inner_loop` takes the cuDNN kernel (a visible GPU, cuDNN-compatible
    arguments and `use_cudnn` "auto" or True), as Keras decides it."""
    from keras.src import backend

    cell = layer.cell
    arguments = (cell.activation, cell.recurrent_activation, layer.unroll, cell.use_bias)
    if hasattr(cell, "reset_after"):
        arguments += (cell.reset_after,)
    return (layer.use_cudnn in ("auto", True) and not cell.recurrent_dropout
            and backend.cudnn_ok(*arguments))


def hoisted_inner_loop(layer, keras_inner_loop, sequences, initial_state, mask, training):
    """`inner_loop` of the zoo's `LSTM`/`GRU`: cuDNN where Keras picks it, the hoisted kernel
    where the layer's arguments allow, else Keras's generic loop; the choice is logged once.

    Args:
        layer: the `LSTM` or `GRU` layer.
        keras_inner_loop: the Keras class's bound `inner_loop`.
        sequences, initial_state, mask, training: as Keras's `RNN.inner_loop` takes them.

    Returns:
        `(last_output, outputs, states)` as Keras's `inner_loop` returns them.
    """
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    obstacles = fused_kernel_obstacles(layer)
    if _cudnn_chosen(layer) or layer.use_cudnn is True:
        _log_once(layer, "cuDNN")
        return keras_inner_loop(sequences, initial_state, mask, training=training)
    if obstacles:
        _log_once(layer, f"Keras generic ({', '.join(obstacles)})")
        return keras_inner_loop(sequences, initial_state, mask, training=training)
    # Training runs the loops XLA-compiled where the traced shape is static: XLA compiles once
    # per shape, so batches of varying length (a `None` time axis) keep the standard-op loops,
    # as do exports and inference.
    compiled = bool(training) and not exporting() and sequences.shape.is_fully_defined()
    _log_once(layer, "hoisted-projection CPU" + (", XLA-compiled loops" if compiled else ""))
    cell = layer.cell
    if training and cell.dropout:
        # Keras's cell drops the same input units at every step of a sequence.
        sequences = sequences * ops.expand_dims(cell.get_dropout_mask(sequences[:, 0, :]), 1)
    if not isinstance(initial_state, (list, tuple)):
        initial_state = [initial_state]
    return _run(layer, sequences, list(initial_state), mask, compiled)


def batch_slices(batch) -> list[int]:
    """The sizes of the batch slices the compiled loops of a `batch` run on, each slice its own
    chain of forward and backward loops: one chain per thread TensorFlow has to run them at
    once (the fewer of its intra-op and inter-op threads), each slice of at least `MIN_SLICE`
    examples; e.g. `[16, 16]` for 32 on 2 cores, `[batch]` for small batches or a single
    thread.

    Why: a step's `[batch, units] @ recurrent_kernel` is too small for a compiled loop to keep
    two cores busy, so one chain runs mostly on one core; independent chains keep them all.
    """
    threads = min(tf.config.threading.get_intra_op_parallelism_threads() or _cores(),
                  tf.config.threading.get_inter_op_parallelism_threads() or _cores())
    count = max(1, min(threads, batch // MIN_SLICE))
    return [batch // count + (index < batch % count) for index in range(count)]


def _cores() -> int:
    """The cores this process may run on: TensorFlow's default for both thread pools."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # macOS and Windows have no affinity call


def _time_major_steps(sequences, mask, go_backwards):
    """The inputs `[time, batch, in]` in processing order, valid steps first when masked, and
    the processing-order mask `[batch, time]` (None without a mask)."""
    if mask is None:
        steps = tf.transpose(sequences, [1, 0, 2])
        return (tf.reverse(steps, [0]) if go_backwards else steps), None
    valid = tf.cast(mask, tf.bool)
    if go_backwards:
        valid = tf.reverse(valid, [1])
    batch, time = tf.unstack(tf.shape(valid))
    positions = tf.range(time)[None, :]
    # Sorting valid positions before padded ones (keys unique) keeps each group in order.
    order = tf.argsort(tf.where(valid, positions, positions + time), axis=1)
    source_time = time - 1 - order if go_backwards else order
    batch_index = tf.broadcast_to(tf.range(batch)[None, :], [time, batch])
    indices = tf.stack([batch_index, tf.transpose(source_time)], axis=-1)
    return tf.gather_nd(sequences, indices), valid


def _project(steps, kernel, bias):
    """`steps @ kernel + bias` for all steps `[time, batch, in]` as one GEMM."""
    shape = tf.shape(steps)
    # `bias_add`, not `+`: Grappler fuses it into the GEMM (`_FusedMatMul`), and its gradient
    # is one `BiasAddGrad` rather than a broadcasting `Sum`.
    flat = tf.nn.bias_add(tf.matmul(tf.reshape(steps, [-1, steps.shape[-1]]), kernel), bias)
    return tf.reshape(flat, tf.concat([shape[:2], [kernel.shape[-1]]], axis=0))


def _run(layer, sequences, initial_state, mask, compiled):
    cell = layer.cell
    # Tensors, not variables, so the custom gradients below need no `variables` argument.
    kernel, recurrent_kernel, bias = (tf.convert_to_tensor(weight) for weight in (
        cell.kernel, cell.recurrent_kernel, cell.bias))
    steps, valid = _time_major_steps(sequences, mask, layer.go_backwards)
    if isinstance(cell, keras.layers.LSTMCell):
        functions, input_bias, weights = ((_lstm_forward, _lstm_backward), bias,
                                          [recurrent_kernel])
    else:
        functions, input_bias, weights = ((_gru_forward, _gru_backward), bias[0],
                                          [recurrent_kernel, bias[1]])
    sizes = batch_slices(steps.shape[1]) if compiled else [None]
    if len(sizes) == 1:
        sequences_of_states = _recurrence(*functions, compiled, _project(steps, kernel, input_bias),
                                          *initial_state, *weights)
    else:
        # One chain of compiled loops per slice, which TensorFlow's executor runs in
        # parallel; the weight gradients of the slices add up where the weights are shared.
        # Each slice projects its own inputs: splitting the inputs (and concatenating their
        # gradients) copies `in` columns where the projections have `gates`.
        slices = zip(tf.split(steps, sizes, axis=1),
                     *(tf.split(state, sizes, axis=0) for state in initial_state))
        chains = [_recurrence(*functions, compiled, _project(piece, kernel, input_bias),
                              *states, *weights) for piece, *states in slices]
        sequences_of_states = [tf.concat(pieces, axis=1) for pieces in zip(*chains)]
    hidden = sequences_of_states[0]

    if valid is None:
        last_output = hidden[-1]
        states = [sequence[-1] for sequence in sequences_of_states]
        outputs = tf.transpose(hidden, [1, 0, 2]) if layer.return_sequences else None
    else:
        batch = tf.shape(valid)[0]
        counts = tf.cumsum(tf.cast(valid, tf.int32), axis=1)
        # Row k of `with_zero` is the output after k valid steps (row 0: none yet, zeros).
        with_zero = tf.concat([tf.zeros_like(hidden[:1]), hidden], axis=0)
        index = tf.where(valid, counts, 0) if layer.zero_output_for_mask else counts
        if layer.return_sequences:
            batch_index = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(index))
            outputs = tf.gather_nd(with_zero, tf.stack([index, batch_index], axis=-1))
            last_output = outputs[:, -1]
        else:
            outputs = None
            last_output = tf.gather_nd(with_zero, tf.stack([index[:, -1], tf.range(batch)], -1))
        final = tf.stack([counts[:, -1], tf.range(batch)], axis=-1)
        states = [tf.gather_nd(tf.concat([start[None], sequence], axis=0), final)
                  for start, sequence in zip(initial_state, sequences_of_states)]
    if outputs is None:
        outputs = last_output[:, None, :]
    return last_output, outputs, states


def _steps(sequence):
    """`sequence` `[time, ...]` as a TensorArray, whose `read(t)` in a loop is one op (a
    slice `sequence[t]` is four: its begin and end vectors are packed every step)."""
    return tf.TensorArray(sequence.dtype, size=tf.shape(sequence)[0],
                          element_shape=sequence.shape[1:]).unstack(sequence)


def _stacked(loop_result):
    return [array.stack() for array in loop_result]


def _arrays(steps, dtype, *shapes):
    """One TensorArray of `steps` elements for each of the element `shapes`."""
    return [tf.TensorArray(dtype, size=steps, element_shape=shape) for shape in shapes]


def _previous(start, sequence):
    """The sequence shifted one step later, `start` first: the state each step began from."""
    return tf.concat([start[None], sequence[:-1]], axis=0)


def _weight_gradient(inputs, gradients):
    """`sum_t inputs[t]^T @ gradients[t]` as one GEMM over all steps."""
    return tf.matmul(tf.reshape(inputs, [-1, inputs.shape[-1]]),
                     tf.reshape(gradients, [-1, gradients.shape[-1]]), transpose_a=True)


def _or_zeros(gradient, like):
    return tf.zeros_like(like) if gradient is None else gradient


def _recurrence(forward, backward, compiled, *inputs):
    """The outputs of `forward(*inputs)`, differentiated by `backward`.

    Args:
        forward: `forward(*inputs)` returns `(outputs, saved)`: a tuple of output sequences
            and a tuple of what `backward` needs besides them.
        backward: `backward(d_outputs, outputs, saved, inputs)` returns the gradients of
            `inputs`, `d_outputs` one per output (None, except for the first, where none flows).
        compiled: whether both run as XLA-compiled functions.
        *inputs: tensors, the first the projected inputs `[time, batch, gates]`.

    Returns:
        The tuple of output sequences.
    """
    if compiled:
        forward, backward = _COMPILED[forward], _COMPILED[backward]

    @tf.custom_gradient
    def recurrence(*inputs):
        # The gradient is `backward`'s alone; stopping it here keeps a recording tape from
        # asking the (compiled) forward function for the intermediates of its loop.
        outputs, saved = forward(*(tf.stop_gradient(tensor) for tensor in inputs))

        def gradient(*d_outputs):
            # The first output (the hidden states) always gets a gradient tensor; the others
            # stay None when none flows, so `backward` skips them rather than adding zeros.
            d_outputs = (_or_zeros(d_outputs[0], outputs[0]), *d_outputs[1:])
            return backward(d_outputs, outputs, saved, inputs)

        return outputs, gradient

    outputs = recurrence(*inputs)
    # A loop's stacked sequences lose their static time axis; a layer stacked on this one
    # needs it to run its own loops compiled.
    for output in outputs:
        output.set_shape(inputs[0].shape[:1].concatenate(output.shape[1:]))
    return outputs


def _lstm_forward(projected, h0, c0, recurrent_kernel):
    """LSTM over `projected` (`x @ kernel + bias`, `[time, batch, 4 units]`, Keras gate order
    i, f, c, o) from `(h0, c0)`: the hidden and carry states after every step, and each
    step's activated gates and `tanh` of its carry for the backward pass."""
    time = tf.shape(projected)[0]
    units = recurrent_kernel.shape[0]
    projected_steps = _steps(projected)

    def step(t, h, c, hidden, carry, records):
        z = projected_steps.read(t) + tf.matmul(h, recurrent_kernel)
        i, f, g, o = tf.split(z, 4, axis=1)
        i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
        c = f * c + i * g
        tanh_c = tf.tanh(c)
        h = o * tanh_c
        return (t + 1, h, c, hidden.write(t, h), carry.write(t, c),
                records.write(t, tf.concat([i, f, g, o, tanh_c], axis=1)))

    arrays = _arrays(time, h0.dtype, h0.shape, c0.shape, [h0.shape[0], 5 * units])
    _, _, _, *arrays = tf.while_loop(lambda t, *_: t < time, step, [0, h0, c0, *arrays])
    hidden, carry, records = _stacked(arrays)
    return (hidden, carry), (records,)


def _lstm_backward(d_outputs, outputs, saved, inputs):
    """Gradients of `_lstm_forward`'s inputs: the gate derivatives of each step from the
    saved activations, in one loop back through the steps carrying `h` and `c` gradients."""
    (d_hidden, d_carry), (hidden, carry), (records,) = d_outputs, outputs, saved
    _, h0, c0, recurrent_kernel = inputs
    time = tf.shape(hidden)[0]
    # Without a gradient for the carry states (the usual case: only the outputs are used),
    # the loop reads `d_hidden` alone.
    upstream = _steps(d_hidden if d_carry is None else tf.concat([d_hidden, d_carry], axis=2))
    record_steps = _steps(records)
    previous_carry = _steps(_previous(c0, carry))
    # Transposed once: a MatMul with transpose_b in the loop is slower on CPU.
    recurrent_kernel_t = tf.transpose(recurrent_kernel)

    def back(t, dh, dc, d_gates):
        t = t - 1
        if d_carry is None:
            dh_up, dc_up = upstream.read(t), 0.0
        else:
            dh_up, dc_up = tf.split(upstream.read(t), 2, axis=1)
        i, f, g, o, tanh_c = tf.split(record_steps.read(t), 5, axis=1)
        dh = dh + dh_up
        dc = dc + dc_up + dh * o * (1.0 - tf.square(tanh_c))
        dz = tf.concat([dc * g * i * (1.0 - i), dc * previous_carry.read(t) * f * (1.0 - f),
                        dc * i * (1.0 - tf.square(g)), dh * tanh_c * o * (1.0 - o)], axis=1)
        return t, tf.matmul(dz, recurrent_kernel_t), dc * f, d_gates.write(t, dz)

    _, dh0, dc0, d_gates = tf.while_loop(
        lambda t, *_: t > 0, back,
        [time, tf.zeros_like(h0), tf.zeros_like(c0),
         *_arrays(time, h0.dtype, [h0.shape[0], 4 * h0.shape[-1]])])
    d_gates = d_gates.stack()
    return d_gates, dh0, dc0, _weight_gradient(_previous(h0, hidden), d_gates)


def _gru_forward(projected, h0, recurrent_kernel, recurrent_bias):
    """GRU (`reset_after=True`) over `projected` (`x @ kernel + input_bias`, `[time, batch,
    3 units]`, Keras gate order z, r, h) from `h0`: the hidden state after every step, and
    each step's `h @ recurrent_kernel + recurrent_bias` for the backward pass."""
    time = tf.shape(projected)[0]
    units = recurrent_kernel.shape[0]
    projected_steps = _steps(projected)

    def step(t, h, hidden, inner):
        x_zr, x_h = tf.split(projected_steps.read(t), [2 * units, units], axis=1)
        h_inner = tf.matmul(h, recurrent_kernel) + recurrent_bias
        inner_zr, inner_h = tf.split(h_inner, [2 * units, units], axis=1)
        z, r = tf.split(tf.sigmoid(x_zr + inner_zr), 2, axis=1)
        candidate = tf.tanh(x_h + r * inner_h)
        h = candidate + z * (h - candidate)
        return t + 1, h, hidden.write(t, h), inner.write(t, h_inner)

    arrays = _arrays(time, h0.dtype, h0.shape, projected.shape[1:])
    _, _, *arrays = tf.while_loop(lambda t, *_: t < time, step, [0, h0, *arrays])
    hidden, inner = _stacked(arrays)
    return (hidden,), (inner,)


def _gru_backward(d_outputs, outputs, saved, inputs):
    """Gradients of `_gru_forward`'s inputs: every gate gradient is `d hidden` times a
    coefficient known after the forward loop, so the loop back carries only `h` gradients."""
    (d_hidden,), (hidden,), (inner,) = d_outputs, outputs, saved
    projected, h0, recurrent_kernel, _ = inputs
    time = tf.shape(hidden)[0]
    units = recurrent_kernel.shape[0]
    x_zr, x_h = tf.split(projected, [2 * units, units], axis=2)
    inner_zr, inner_h = tf.split(inner, [2 * units, units], axis=2)
    z, r = tf.split(tf.sigmoid(x_zr + inner_zr), 2, axis=2)
    candidate = tf.tanh(x_h + r * inner_h)
    to_z = z * (1.0 - z) * (_previous(h0, hidden) - candidate)
    to_candidate = (1.0 - z) * (1.0 - tf.square(candidate))
    to_r = to_candidate * inner_h * r * (1.0 - r)
    to_inner = tf.concat([to_z, to_r, to_candidate * r], axis=2)
    upstream = _steps(d_hidden)
    coefficients = _steps(tf.concat([to_inner, z], axis=2))
    recurrent_kernel_t = tf.transpose(recurrent_kernel)  # as in the LSTM's gradient

    def back(t, dh, d_steps):
        t = t - 1
        dh = upstream.read(t) + dh
        to_inner_t, z_t = tf.split(coefficients.read(t), [3 * units, units], axis=1)
        d_inner = tf.tile(dh, [1, 3]) * to_inner_t
        return t, dh * z_t + tf.matmul(d_inner, recurrent_kernel_t), d_steps.write(t, dh)

    _, dh0, d_steps = tf.while_loop(
        lambda t, *_: t > 0, back, [time, tf.zeros_like(h0), *_arrays(time, h0.dtype, h0.shape)])
    d_steps = tf.tile(d_steps.stack(), [1, 1, 3])
    d_inner = d_steps * to_inner
    d_projected = d_steps * tf.concat([to_z, to_r, to_candidate], axis=2)
    return (d_projected, dh0, _weight_gradient(_previous(h0, hidden), d_inner),
            tf.reduce_sum(d_inner, axis=[0, 1]))


# The XLA-compiled versions training runs (one per function; each traces once per shape).
_COMPILED = {function: tf.function(function, jit_compile=True) for function in (
    _lstm_forward, _lstm_backward, _gru_forward, _gru_backward)}
