"""The Media Streams WebSocket protocol as plain objects: JSON text in, typed messages out, and
the messages we send back. No sockets here, so every case is tested by feeding text.

Twilio sends ``connected``, ``start``, ``media`` (base64 mu-law, 8 kHz mono), ``dtmf``,
``mark`` (a mark we sent has played, or a ``clear`` dropped it) and ``stop``. We send
``media``, ``mark`` and ``clear`` (drop whatever Twilio still has queued to play).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

MAX_MESSAGE_BYTES = 64 * 1024
"""A media message carries 20 ms (about 250 bytes); nothing Twilio sends comes near this."""


class ProtocolError(ValueError):
    """A message that is not Media Streams; the text says which field is wrong."""


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    channels: int
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Media:
    stream_sid: str
    payload: bytes
    """mu-law bytes, one per sample at 8 kHz."""
    timestamp_ms: int
    """Milliseconds since the stream started, by Twilio's clock."""
    chunk: int
    track: str


@dataclass(frozen=True)
class Dtmf:
    stream_sid: str
    digit: str


@dataclass(frozen=True)
class Mark:
    stream_sid: str
    name: str


@dataclass(frozen=True)
class Stop:
    stream_sid: str
    call_sid: str


Message = Connected | Start | Media | Dtmf | Mark | Stop

_DTMF_DIGITS = frozenset("0123456789*#ABCD")


def parse(text: str | bytes) -> Message:
    """One message from Twilio; raises ``ProtocolError`` naming what is wrong."""
    if len(text) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(text)} bytes is over {MAX_MESSAGE_BYTES}")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"a message is a JSON object, got {type(data).__name__}")
    event = data.get("event")
    if event == "connected":
        return Connected(
            protocol=_text(data, "protocol", required=False),
            version=_text(data, "version", required=False),
        )
    if event == "start":
        return _start(data)
    if event == "media":
        media = _object(data, "media")
        try:
            payload = base64.b64decode(_text(media, "payload", "media."), validate=True)
        except binascii.Error:
            raise ProtocolError("media.payload is not base64") from None
        return Media(
            stream_sid=_text(data, "streamSid"),
            payload=payload,
            timestamp_ms=_integer(media, "timestamp", "media.", default=0),
            chunk=_integer(media, "chunk", "media.", default=0),
            track=_text(media, "track", "media.", required=False) or "inbound",
        )
    if event == "dtmf":
        digit = _text(_object(data, "dtmf"), "digit", "dtmf.")
        if digit not in _DTMF_DIGITS:
            raise ProtocolError(f"dtmf.digit {digit!r} is not one of 0-9 * # A-D")
        return Dtmf(stream_sid=_text(data, "streamSid"), digit=digit)
    if event == "mark":
        return Mark(
            stream_sid=_text(data, "streamSid"), name=_text(_object(data, "mark"), "name", "mark.")
        )
    if event == "stop":
        stop = data.get("stop")
        call_sid = _text(stop, "callSid", "stop.", required=False) if isinstance(stop, dict) else ""
        return Stop(stream_sid=_text(data, "streamSid"), call_sid=call_sid)
    raise ProtocolError(f"unknown event {event!r}")


def media(stream_sid: str, payload: bytes) -> str:
    """Audio for the caller: mu-law 8 kHz bytes."""
    encoded = base64.b64encode(payload).decode("ascii")
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": encoded}})


def mark(stream_sid: str, name: str) -> str:
    """Ask Twilio to say when everything sent before this has played."""
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear(stream_sid: str) -> str:
    """Drop the audio Twilio has queued for the caller (barge-in)."""
    return json.dumps({"event": "clear", "streamSid": stream_sid})


def _start(data: dict[str, Any]) -> Start:
    start = _object(data, "start")
    fmt = start.get("mediaFormat", {})
    if not isinstance(fmt, dict):
        raise ProtocolError("start.mediaFormat is not an object")
    tracks = start.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise ProtocolError("start.tracks is not a list of strings")
    params = start.get("customParameters", {})
    if not isinstance(params, dict):
        raise ProtocolError("start.customParameters is not an object")
    return Start(
        stream_sid=_text(data, "streamSid", required=False) or _text(start, "streamSid", "start."),
        call_sid=_text(start, "callSid", "start."),
        account_sid=_text(start, "accountSid", "start.", required=False),
        tracks=tuple(tracks),
        encoding=_text(fmt, "encoding", "start.mediaFormat.", required=False) or "audio/x-mulaw",
        sample_rate=_integer(fmt, "sampleRate", "start.mediaFormat.", default=8000),
        channels=_integer(fmt, "channels", "start.mediaFormat.", default=1),
        custom_parameters={str(k): str(v) for k, v in params.items()},
    )


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"{data.get('event')} message without a {key!r} object")
    return value


def _text(data: dict[str, Any], key: str, prefix: str = "", *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ProtocolError(f"{prefix}{key} must be a non-empty string, got {value!r}")
    return value


def _integer(data: dict[str, Any], key: str, prefix: str, *, default: int) -> int:
    value = data.get(key)
    if value is None:
        return default
    try:
        number = int(value)  # Twilio sends numbers as strings ("chunk": "2")
    except (TypeError, ValueError):
        raise ProtocolError(f"{prefix}{key} must be a whole number, got {value!r}") from None
    if number < 0:
        raise ProtocolError(f"{prefix}{key} must not be negative, got {number}")
    return number
