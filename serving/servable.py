"""One loaded version of one SavedModel, loaded and called the way TF Serving does it."""

from __future__ import annotations

import contextlib
import itertools
import logging
import pathlib
import threading

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    input_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from seqzoo.serving.batch_scheduler import BatchScheduler
from seqzoo.serving.batching_parameters import BatchingParameters
from seqzoo.serving.serving_error import ServingError

WARMUP_FILE = pathlib.Path("assets.extra") / "tf_serving_warmup_requests"
DEFAULT_SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
# The entry TF2 SavedModels add to their SignatureDefs for the init op: not a callable signature.
INIT_OP_SIGNATURE_KEY = "__saved_model_init_op"
# TF Serving refuses a warmup file with more records than this.
MAX_WARMUP_RECORDS = 1000
_LOADS = itertools.count()


def read_signature_defs(path: pathlib.Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs a SavedModel declares, read from its `saved_model.pb`."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((pathlib.Path(path) / "saved_model.pb").read_bytes())
    return dict(saved_model.meta_graphs[0].signature_def)


def _invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


@contextlib.contextmanager
def _quiet_tensorflow_logger():
    # The TF1 loader is deprecated in favour of tf.saved_model.load, which is exactly the loader
    # TF Serving does not use; the deprecation notice would print on every server start.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def serialized_examples(request_input: input_pb2.Input) -> np.ndarray:
    """The examples of a Classify/Regress/MultiInference `Input` as a [batch] string array of
    serialized `tf.Example`s, the context (if any) merged into each, as TF Serving feeds them."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [example.SerializeToString()
                    for example in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        with_context = request_input.example_list_with_context
        context = with_context.context.SerializeToString()
        # Concatenated serializations parse as one merged message: context features, then the
        # example's own.
        examples = [context + example.SerializeToString() for example in with_context.examples]
    else:
        examples = []
    if not examples:
        raise _invalid("Input is empty: give at least one tf.Example (example_list or "
                       "example_list_with_context).")
    return np.array(examples, dtype=object)


class Servable:
    """A SavedModel version loaded as TF Serving loads it, ready to answer requests.

    Loading goes through TensorFlow's session-based SavedModel loader, the one TF Serving calls
    (`tensorflow::LoadSavedModel`): the MetaGraph tagged `serve` is imported into a fresh graph,
    its restore op fills the variables from `variables/`, its init op runs (tables, assets), and
    signatures are called by their tensor names. A SavedModel that only works through
    `tf.saved_model.load` fails here, as it would in TF Serving. Each signature is called through
    a callable prepared once per feeds and fetches (TF_SessionMakeCallable), so a request costs
    one session run and no graph lookups.

    Calls are thread safe: a session runs concurrent calls, and the prepared callables are made
    once under a lock.

    With a `batch_scheduler` (TF Serving's `--enable_batching`), concurrent `predict` calls of
    one signature and set of outputs are merged into one session run (see `BatchScheduler`).
    Signatures whose inputs or outputs are declared without a batch dimension (a scalar, or a
    fixed first dimension) always run alone. Classify, Regress and MultiInference run alone
    too: they feed serialized examples through the same session and stay as fast as before, but
    are not merged.

    Args:
        name: the model name requests use.
        version: the version number (the name of its directory).
        path: the version directory (holding `saved_model.pb`).
        batch_scheduler: a `BatchScheduler` that merges `predict` calls, or None.
        session_config: the `tf.compat.v1.ConfigProto` of the session (TF Serving's
            `session_config`: thread pools, executor); None: TensorFlow's defaults.
        batching_parameters: how this version's calls are batched (TF Serving's per-model
            `batching_params.pbtxt`); None: the batch scheduler's own parameters.

    Example:
    ```python
    servable = Servable("sentiment", 1, "models/sentiment/1")
    servable.warmup()
    servable.predict("serving_default", {"text": np.array([b"great film"], dtype=object)})
    ```
    """

    def __init__(self, name: str, version: int, path: str | pathlib.Path,
                 batch_scheduler: BatchScheduler | None = None,
                 session_config: config_pb2.ConfigProto | None = None,
                 batching_parameters: BatchingParameters | None = None):
        self.name = name
        self.version = int(version)
        self.path = pathlib.Path(path)
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph, config=session_config)
        try:
            with self._graph.as_default(), _quiet_tensorflow_logger():
                meta_graph = tf.compat.v1.saved_model.loader.load(
                    self._session, [tf.saved_model.SERVING], str(self.path))
        except Exception:
            self._session.close()
            raise
        self.signature_defs = dict(meta_graph.signature_def)
        self._input_specs = {
            key: {name: tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.as_dtype(info.dtype),
                                      name=name)
                  for name, info in signature.inputs.items()}
            for key, signature in self.signature_defs.items()}
        # What each input accepts in NumPy's terms, checked at every request: TensorFlow's
        # TensorShape and DType comparisons cost more than a small model's call.
        self._accepted = {key: {name: _accepted(spec) for name, spec in specs.items()}
                          for key, specs in self._input_specs.items()}
        self._callables: dict[tuple, object] = {}
        self._lock = threading.Lock()
        self._batch_scheduler = batch_scheduler
        self._batching_parameters = batching_parameters
        self._load_number = next(_LOADS)
        self._batched_signatures = {key for key, signature in self.signature_defs.items()
                                    if _has_batch_dimension(signature)}

    def close(self) -> None:
        """Releases the session (and the memory of the variables)."""
        self._session.close()

    # --- signatures -------------------------------------------------------------------------

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        """The SignatureDefs of the SavedModel, as TF Serving's model metadata gives them."""
        result = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in self.signature_defs.items():
            result.signature_def[key].CopyFrom(signature)
        return result

    @property
    def signature_names(self) -> list[str]:
        """The callable signatures (without the init op's entry)."""
        return sorted(key for key in self.signature_defs if key != INIT_OP_SIGNATURE_KEY)

    def _signature(self, signature_name: str) -> meta_graph_pb2.SignatureDef:
        key = signature_name or DEFAULT_SIGNATURE
        if key not in self.signature_defs:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Serving signature key \"{key}\" not found. Signatures of model {self.name} "
                f"version {self.version}: {', '.join(self.signature_names)}.",
            )
        return self.signature_defs[key]

    def input_specs(self, signature_name: str = "") -> dict[str, tf.TensorSpec]:
        """The inputs of a signature by name; an unknown signature is FAILED_PRECONDITION."""
        self._signature(signature_name)
        return self._input_specs[signature_name or DEFAULT_SIGNATURE]

    def _method_signature(self, signature_name: str, method: str, what: str):
        """The signature for a Classify or Regress call, with TF Serving's checks and errors."""
        key = signature_name or DEFAULT_SIGNATURE
        if key not in self.signature_defs:
            raise _invalid(f"No signature was found with the name: {key}. Signatures of model "
                           f"{self.name} version {self.version}: {', '.join(self.signature_names)}.")
        signature = self.signature_defs[key]
        if signature.method_name != method:
            raise _invalid(
                f"Expected {what} signature method_name to be {method}. Was: "
                f"{signature.method_name} (signature {key!r}; use :predict / Predict for it)."
            )
        if list(signature.inputs) != [tf.saved_model.CLASSIFY_INPUTS]:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Signature {key!r} must take exactly one input named 'inputs' (serialized "
                f"tf.Examples); it takes {sorted(signature.inputs)}.",
            )
        return signature

    # --- running ------------------------------------------------------------------------------

    def _run(self, feeds: dict[str, np.ndarray], fetches: tuple[str, ...]) -> list:
        """Runs the graph: feeds by tensor name, fetches by tensor name, through a callable made
        once per (feeds, fetches) combination."""
        feed_names = tuple(sorted(feeds))
        key = (feed_names, fetches)
        try:
            run = self._callables.get(key)
            if run is None:
                with self._lock:
                    run = self._callables.get(key)
                    if run is None:
                        # `Session.make_callable` with feeds only wraps `Session.run`, which
                        # resolves feeds and fetches in the graph at every call (twice as slow
                        # for a small model); a callable made from CallableOptions is prepared
                        # once in C++ (TF_SessionMakeCallable), as TF Serving's own calls are.
                        # Preparing it builds the executors, whose errors are the request's.
                        options = config_pb2.CallableOptions(feed=feed_names, fetch=fetches)
                        run = self._session._make_callable_from_options(options)
                        self._callables[key] = run
            return run(*(feeds[name] for name in feed_names))
        except tf.errors.OpError as err:
            raise ServingError.from_tf_error(err) from None

    def predict(self, signature_name: str, inputs: dict[str, np.ndarray],
                output_filter=(), batched: bool = True,
                deadline: float | None = None) -> dict[str, np.ndarray]:
        """Runs a signature on `inputs` after checking names, dtypes and shapes.

        Returns the outputs by name (only those in `output_filter` when it is not empty). With
        `batched` (and a batch scheduler) the call may be merged with concurrent ones; if it is
        still waiting for its batch at `deadline` (a `time.monotonic()` time), it is dropped
        with DEADLINE_EXCEEDED.
        """
        signature = self._signature(signature_name)
        specs = self.input_specs(signature_name)
        unknown = sorted(set(inputs) - set(specs))
        if unknown:
            raise _invalid(
                f"input tensor alias not found in signature: {', '.join(unknown)}. "
                f"Inputs expected to be in the set {{{', '.join(sorted(specs))}}}."
            )
        missing = sorted(set(specs) - set(inputs))
        if missing:
            raise _invalid(f"Missing input(s) {', '.join(missing)}; the signature expects "
                           f"{{{', '.join(sorted(specs))}}}.")
        wanted = sorted(set(output_filter)) or sorted(signature.outputs)
        unknown = sorted(set(wanted) - set(signature.outputs))
        if unknown:
            raise _invalid(
                f"output tensor alias not found in signature: {', '.join(unknown)}. Outputs "
                f"expected to be in the set {{{', '.join(sorted(signature.outputs))}}}."
            )
        accepted = self._accepted[signature_name or DEFAULT_SIGNATURE]
        feeds = {signature.inputs[name].name: _checked_array(name, np.asarray(inputs[name]), spec,
                                                              *accepted[name])
                 for name, spec in specs.items()}
        fetches = tuple(signature.outputs[name].name for name in wanted)
        key = signature_name or DEFAULT_SIGNATURE
        if batched and self._batch_scheduler is not None and key in self._batched_signatures:
            # Keyed by this load of the version (not the servable itself, which the scheduler
            # must not keep alive): a reload of the same version never shares its batches.
            values = self._batch_scheduler.run(
                (self.name, self.version, self._load_number, key, fetches), feeds,
                lambda merged: self._run(merged, fetches), deadline, self._batching_parameters)
        else:
            values = self._run(feeds, fetches)
        return {name: _as_array(value) for name, value in zip(wanted, values)}

    def _run_on_examples(self, signatures: list[meta_graph_pb2.SignatureDef],
                         request_input: input_pb2.Input) -> tuple[int, dict[str, np.ndarray]]:
        """Feeds the serialized examples to the (common) input of `signatures` and returns the
        batch size and every output tensor they name, by tensor name."""
        examples = serialized_examples(request_input)
        input_names = {signature.inputs[tf.saved_model.CLASSIFY_INPUTS].name
                       for signature in signatures}
        if len(input_names) != 1:
            raise _invalid("Input tensor must be the same for all Signatures.")
        fetches = tuple(sorted({info.name for signature in signatures
                                for info in signature.outputs.values()}))
        values = self._run({input_names.pop(): examples}, fetches)
        return len(examples), dict(zip(fetches, values))

    def classify(self, signature_name: str,
                 request_input: input_pb2.Input) -> classification_pb2.ClassificationResult:
        """TF Serving's Classify on a classify signature (serialized tf.Examples in, `classes`
        and/or `scores` out)."""
        signature = self._method_signature(signature_name, tf.saved_model.CLASSIFY_METHOD_NAME,
                                           "classification")
        batch, outputs = self._run_on_examples([signature], request_input)
        return _classification_result(signature, batch, outputs)

    def regress(self, signature_name: str,
                request_input: input_pb2.Input) -> regression_pb2.RegressionResult:
        """TF Serving's Regress on a regress signature (serialized tf.Examples in, `outputs`
        out, one float per example)."""
        signature = self._method_signature(signature_name, tf.saved_model.REGRESS_METHOD_NAME,
                                           "regression")
        batch, outputs = self._run_on_examples([signature], request_input)
        return _regression_result(signature, batch, outputs)

    def multi_inference(self, tasks, request_input: input_pb2.Input
                        ) -> list[inference_pb2.InferenceResult]:
        """TF Serving's MultiInference: several classify/regress signatures of this model on the
        same examples, in one run."""
        if not tasks:
            raise _invalid("MultiInferenceRequest has no tasks; give at least one.")
        methods = {tf.saved_model.CLASSIFY_METHOD_NAME: "classification",
                   tf.saved_model.REGRESS_METHOD_NAME: "regression"}
        signatures, seen = [], set()
        for task in tasks:
            key = task.model_spec.signature_name or DEFAULT_SIGNATURE
            if key in seen:
                raise _invalid(f"Duplicate evaluation of signature: {key}")
            seen.add(key)
            if task.method_name not in methods:
                raise ServingError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"Unsupported signature method_name: {task.method_name!r}; accepted: "
                    f"{', '.join(methods)}.",
                )
            signatures.append(self._method_signature(key, task.method_name,
                                                     methods[task.method_name]))
        batch, outputs = self._run_on_examples(signatures, request_input)
        results = []
        for task, signature in zip(tasks, signatures):
            result = inference_pb2.InferenceResult()
            result.model_spec.name = self.name
            result.model_spec.signature_name = task.model_spec.signature_name
            result.model_spec.version.value = self.version
            if task.method_name == tf.saved_model.CLASSIFY_METHOD_NAME:
                result.classification_result.CopyFrom(
                    _classification_result(signature, batch, outputs))
            else:
                result.regression_result.CopyFrom(_regression_result(signature, batch, outputs))
            results.append(result)
        return results

    # --- warmup -------------------------------------------------------------------------------

    def run_logged_request(self, entry: prediction_log_pb2.PredictionLog) -> None:
        """Runs the request of one warmup record (predict, classify, regress or multi-inference
        log), as TF Serving's warmup does; raises `ServingError` if it fails."""
        kind = entry.WhichOneof("log_type")
        if kind == "predict_log":
            request = entry.predict_log.request
            inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
            # Alone: warmup replays one request at a time, and a merge could only delay it.
            self.predict(request.model_spec.signature_name, inputs, request.output_filter,
                         batched=False)
        elif kind == "classify_log":
            request = entry.classify_log.request
            self.classify(request.model_spec.signature_name, request.input)
        elif kind == "regress_log":
            request = entry.regress_log.request
            self.regress(request.model_spec.signature_name, request.input)
        elif kind == "multi_inference_log":
            request = entry.multi_inference_log.request
            self.multi_inference(request.tasks, request.input)
        else:
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                               f"Unsupported log_type for warmup: {kind}")

    def warmup(self) -> int:
        """Replays `assets.extra/tf_serving_warmup_requests` (as TF Serving does on load).

        Returns the number of records replayed; a record that does not parse or fails raises
        `ServingError` (TF Serving then refuses the version).
        """
        path = self.path / WARMUP_FILE
        if not path.is_file():
            return 0
        count = 0
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                count += 1
                if count > MAX_WARMUP_RECORDS:
                    raise _invalid(f"Number of warmup records exceeds the maximum "
                                   f"({MAX_WARMUP_RECORDS}) at {path}")
                try:
                    entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
                except Exception:  # protobuf's DecodeError, whose module differs by backend
                    raise _invalid(f"Failed to parse warmup record {count} from {path}") from None
                try:
                    self.run_logged_request(entry)
                except ServingError as err:
                    raise ServingError(err.code, f"Warmup record {count} failed: {err.message}"
                                       ) from None
        except tf.errors.DataLossError as err:
            raise ServingError(grpc.StatusCode.DATA_LOSS,
                               f"{err.message}. Please verify your warmup data is in TFRecord "
                               "format.") from None
        return count


def _has_batch_dimension(signature: meta_graph_pb2.SignatureDef) -> bool:
    """Whether every input and output may have the batch as its first dimension: declared
    with an unknown rank, or a first dimension of unknown size. (A merged call whose outputs
    turn out otherwise is caught when it runs.)"""
    tensors = [*signature.inputs.values(), *signature.outputs.values()]
    return bool(signature.inputs) and all(
        info.tensor_shape.unknown_rank
        or (info.tensor_shape.dim and info.tensor_shape.dim[0].size == -1)
        for info in tensors)


def _accepted(spec: tf.TensorSpec) -> tuple[np.dtype | None, tuple[int | None, ...] | None]:
    """The NumPy dtype of an input (None for strings) and its dimensions (None where any size is
    accepted; None for all of them when the rank is unknown)."""
    if spec.dtype == tf.string:
        dtype = None
    else:
        try:
            dtype = np.dtype(spec.dtype.as_numpy_dtype)
        except KeyError:  # a resource or variant input: the session says what it accepts
            dtype = np.dtype(object)
    return dtype, None if spec.shape.rank is None else tuple(spec.shape.as_list())


def _checked_array(name: str, array: np.ndarray, spec: tf.TensorSpec, dtype: np.dtype | None,
                   dims: tuple[int | None, ...] | None) -> np.ndarray:
    """The input as the array the session is fed, or INVALID_ARGUMENT saying what is wrong;
    `dtype` and `dims` are what `_accepted(spec)` gives."""
    if dtype is None:
        if array.dtype.kind == "U":
            array = np.char.encode(array, "utf-8").astype(object)
        ok = array.dtype.kind in "OS"
    else:
        ok = array.dtype == dtype
    if not ok:
        raise _invalid(f"Input {name!r} expects {spec.dtype.name} values; received "
                       f"{array.dtype.name}.")
    if dims is not None and (len(dims) != array.ndim or any(
            size is not None and size != given for size, given in zip(dims, array.shape))):
        raise _invalid(
            f"Input {name!r} has shape {list(array.shape)}, which does not match the signature's "
            f"shape {spec.shape.as_list() if spec.shape.rank is not None else '?'} "
            "(-1/None is any size)."
        )
    return array


def _as_array(value) -> np.ndarray:
    # A scalar string output comes back from the session as plain bytes.
    if isinstance(value, bytes):
        return np.array(value, dtype=object)
    return np.asarray(value)


def _output(signature, key: str, outputs: dict[str, np.ndarray]) -> np.ndarray | None:
    return outputs[signature.outputs[key].name] if key in signature.outputs else None


def _classification_result(signature, batch: int, outputs: dict[str, np.ndarray]
                           ) -> classification_pb2.ClassificationResult:
    classes = _output(signature, tf.saved_model.CLASSIFY_OUTPUT_CLASSES, outputs)
    scores = _output(signature, tf.saved_model.CLASSIFY_OUTPUT_SCORES, outputs)
    if classes is None and scores is None:
        raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                           "Expected classification signature outputs to contain at least one of "
                           "\"classes\" or \"scores\".")
    for key, array, kind in (("classes", classes, "OS"), ("scores", scores, "f")):
        if array is None:
            continue
        if array.ndim != 2:
            raise _invalid(f"Expected Tensor shape: [batch_size num_classes] but got "
                           f"{list(array.shape)} for {key!r}.")
        if array.dtype.kind not in kind or (key == "scores" and array.dtype != np.float32):
            raise _invalid(f"Expected {key} Tensor of "
                           f"{'DT_STRING' if key == 'classes' else 'DT_FLOAT'}. Got: {array.dtype}")
        if array.shape[0] != batch:
            raise _invalid(f"Expected {key} output batch size of {batch}. Got: {array.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise _invalid(f"Tensors class and score should match in dim_size(1). Got "
                       f"{classes.shape[1]} vs. {scores.shape[1]}")
    num_classes = (classes if classes is not None else scores).shape[1]
    result = classification_pb2.ClassificationResult()
    for i in range(batch):
        classifications = result.classifications.add()
        for c in range(num_classes):
            entry = classifications.classes.add()
            if classes is not None:
                entry.label = classes[i, c].decode("utf-8", errors="replace")
            if scores is not None:
                entry.score = float(scores[i, c])
    return result


def _regression_result(signature, batch: int, outputs: dict[str, np.ndarray]
                       ) -> regression_pb2.RegressionResult:
    values = _output(signature, tf.saved_model.REGRESS_OUTPUTS, outputs)
    if values is None or len(signature.outputs) != 1:
        raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                           "A regression signature has exactly one output, named 'outputs'; "
                           f"this one has {sorted(signature.outputs)}.")
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise _invalid("Expected output Tensor shape to be either [batch_size] or "
                       f"[batch_size, 1] but got {list(values.shape)}")
    if values.shape[0] != batch:
        raise _invalid(f"Input batch size did not match output batch size: {batch} vs. "
                       f"{values.shape[0]}")
    if values.dtype != np.float32:
        raise _invalid(f"Expected output Tensor of DT_FLOAT.  Got: {values.dtype}")
    result = regression_pb2.RegressionResult()
    for value in values.reshape(-1):
        result.regressions.add().value = float(value)
    return result
