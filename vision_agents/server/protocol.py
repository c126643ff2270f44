"""Messages between the server and a worker process: one JSON object a line over pipes.

Server -> worker: ``start`` (the session request and its limits), ``stop`` (with a reason).
Worker -> server: ``ready`` (imported and warm) or ``unusable`` (the factory cannot load), ``started`` (agent in the call, join link),
``stats`` (every ``STATS_INTERVAL_S``; doubles as the heartbeat), ``ended`` / ``failed``.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE_BYTES = 1024 * 1024
STATS_INTERVAL_S = 0.5


class ProtocolError(Exception):
    """A line that is not a JSON object with a string ``type``."""


def encode(message: dict[str, Any]) -> bytes:
    if not isinstance(message.get("type"), str):
        raise ProtocolError(f"a message needs a string 'type': {sorted(message)}")
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {line[:80]!r}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(f"not a message object: {line[:80]!r}")
    return message
