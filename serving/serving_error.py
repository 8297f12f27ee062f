"""The error type of the model server and its client: a gRPC status code and a message."""

from __future__ import annotations

import grpc

from seqzoo.zoo.image_formats import DECODING_SCOPE

# TF Serving's mapping of status codes to HTTP statuses (its REST handler does the same).
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.CANCELLED: 499,
}
_BY_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
# Lines of a TF runtime error that locate the failing node rather than say what failed.
_TF_NOISE = ("Graph execution error", "Detected at node", "<stack traces")
_DECODING_NODE = "/" + DECODING_SCOPE


class ServingError(ValueError):
    """A request the server cannot answer, with the status TF Serving would give it.

    It is a `ValueError` so that the CLI reports it as a user error rather than a traceback.

    Args:
        code: a `grpc.StatusCode` (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...).
        message: what was wrong and, where it helps, what is accepted.

    Example:
    ```python
    err = ServingError(grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(x)")
    err.http_status  # 404
    ```
    """

    def __init__(self, code: grpc.StatusCode, message: str):
        if not isinstance(code, grpc.StatusCode):
            raise TypeError(f"code must be a grpc.StatusCode. Received: code={code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS.get(self.code, 500)

    @classmethod
    def from_http_status(cls, status: int, message: str) -> "ServingError":
        return cls(_BY_HTTP_STATUS.get(status, grpc.StatusCode.UNKNOWN), message)

    @classmethod
    def from_tf_error(cls, error) -> "ServingError":
        """Wraps a `tf.errors.OpError`, keeping its code and the lines of its message that say
        what was wrong (an in-graph assertion's text, say), without TF's node and stack lines."""
        code = _BY_NUMBER.get(error.error_code, grpc.StatusCode.INTERNAL)
        lines = (error.message or str(error)).strip().splitlines()
        # Stack frames and node locations are indented; the statement of the failure is not.
        useful = [line for line in lines
                  if line.strip() and not line[0].isspace() and not line.startswith(_TF_NOISE)]
        # An image decoder's own error names no input; its node's scope does
        # (zoo/image_preprocessing.py), so that node location stays, as TF Serving shows it.
        useful += [line.strip() for line in lines if _DECODING_NODE in line][:1]
        return cls(code, " ".join(useful) or lines[0])

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"
