"""What one REST request may cost the model server."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class RestLimits:
    """What one REST request may cost the server.

    Args:
        max_body_bytes: largest request body; a larger one is answered 413 without being parsed.
        timeout_seconds: how long a request may take to arrive (its body included) and an idle
            keep-alive connection may stay open (TF Serving's `--rest_api_timeout_in_ms`).
        max_elements: most tensor elements one predict request may hold (400 beyond).
    """

    max_body_bytes: int = 16 << 20
    timeout_seconds: float = 30.0
    max_elements: int = 1 << 22

    def __post_init__(self):
        for key in ("max_body_bytes", "timeout_seconds", "max_elements"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0. Received: {key}={getattr(self, key)}")
