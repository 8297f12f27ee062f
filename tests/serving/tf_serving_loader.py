"""Replays SavedModel versions' warmup records under TF Serving's loader, in a process that
cannot import seqzoo, and saves every output.

    python -I tf_serving_loader.py     (then one line `VERSION_DIR<tab>OUT.npz` per version on stdin;
                                        it answers each with a line `ok` or `error: ...`)

The version is loaded as TF Serving's `SavedModelBundleFactory` loads it (`LoadSavedModel`: tag
`serve`, the restore op, the init op, into a Session) and each record of
`assets.extra/tf_serving_warmup_requests` is run through its signature by tensor names. Written
against TensorFlow and the TF Serving protos only, as an independent reference for our server.
OUT.npz holds `RECORD/OUTPUT` arrays and `RECORD/signature` names.
"""

import importlib.abc
import os
import sys


class _NoProject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("seqzoo", "zoo", "training", "serving"):
            raise ImportError(f"{name} must not be importable here")
        return None


sys.meta_path.insert(0, _NoProject())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import prediction_log_pb2  # noqa: E402


def serialized(request_input):
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in request_input.example_list.examples]
    context = request_input.example_list_with_context.context.SerializeToString()
    return [context + e.SerializeToString()
            for e in request_input.example_list_with_context.examples]


def main(version_dir, out):
    """Loads `version_dir` as TF Serving does, replays its warmup records, saves the outputs."""
    graph = tf.Graph()
    results = {}
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], version_dir)
        path = os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")
        for index, record in enumerate(tf.compat.v1.io.tf_record_iterator(path)):
            log = prediction_log_pb2.PredictionLog.FromString(record)
            kind = log.WhichOneof("log_type")
            request = getattr(log, kind).request
            name = request.model_spec.signature_name or "serving_default"
            signature = meta_graph.signature_def[name]
            if kind == "predict_log":
                feeds = {signature.inputs[key].name: tf.make_ndarray(proto)
                         for key, proto in request.inputs.items()}
            else:
                feeds = {signature.inputs["inputs"].name: serialized(request.input)}
            fetched = session.run({key: info.name for key, info in signature.outputs.items()},
                                  feeds)
            results[f"{index}/signature"] = np.array(name)
            results.update({f"{index}/{key}": np.asarray(value) for key, value in fetched.items()})
    np.savez(out, **results)


if __name__ == "__main__":
    for line in sys.stdin:
        try:
            main(*line.rstrip("\n").split("\t"))
            print("ok", flush=True)
        except Exception as err:  # reported to the test, which shows it
            print(f"error: {type(err).__name__}: {err}".replace("\n", " "), flush=True)
