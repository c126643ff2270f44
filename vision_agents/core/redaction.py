"""Keep API keys out of logs, whoever logs them: our code or the libraries we drive.

``install()`` runs when ``vision_agents`` is imported. It does two things, process-wide:

- every log record is redacted as it is made (a log record factory, so it covers every
  logger, at every level, whatever handlers the application adds later): secret headers
  (``Authorization``, ``x-goog-api-key``, ``api-key``, ...), bearer tokens, ``key=`` query
  parameters, key-shaped strings (Google ``AIza...``, OpenAI ``sk-...``/``ek_...``, xAI
  ``xai-...``) and the values of secret environment variables or of ``register_secret``
  become ``[REDACTED]``, in the message, its arguments, a logged exception and a stack;
- the header dumps of the ``websockets`` client and server (one DEBUG line per header on
  every connect) are dropped; the request and status lines stay.

``redact(text)`` applies the same rules to any string, for messages built by hand.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any

REDACTED = "[REDACTED]"

SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-goog-api-key",
    "x-api-key",
    "api-key",
    "openai-api-key",
    "cookie",
    "set-cookie",
)
SECRET_ENV_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_CLIENT_SECRET")
HEADER_DUMP_LOGGERS = ("websockets.client", "websockets.server")

_header_names = "|".join(re.escape(h) for h in sorted(SECRET_HEADERS, key=len, reverse=True))
# "Authorization: Bearer x", "x-goog-api-key=x", "'api-key': 'x'", (b'x-goog-api-key', b'x')
_HEADER = re.compile(
    rf"(?i)(?<![\w-])((?:{_header_names})(?:[\"']?\s*[:=]\s*|[\"']\s*,\s*b?)[\"']?)"
    r"(?:(?:bearer|basic|token)\s+)?[^\s\"',;)]+"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
_QUERY = re.compile(r"(?i)([?&](?:key|api_key|apikey|access_token|token)=)[^&\s\"'#]+")
_KEY_SHAPES = re.compile(
    r"AIza[0-9A-Za-z_-]{30,}"  # Google API keys
    r"|\b(?:sk|xai)-[A-Za-z0-9_-]{16,}"  # OpenAI and xAI keys
    r"|\bek_[A-Za-z0-9_-]{16,}"  # OpenAI ephemeral client secrets
    r"|\bauth_tokens/[A-Za-z0-9_.-]+"  # Gemini ephemeral tokens
)
_MIN_LITERAL = 8  # shorter registered values would redact ordinary words

_literals: set[str] = set()
_literal_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()
_installed = False


def register_secret(value: str | None) -> None:
    """Redact this exact value wherever it appears (e.g. a key passed in code, not env)."""
    global _literal_pattern
    if not value or len(value) < _MIN_LITERAL:
        return
    with _lock:
        if value in _literals:
            return
        _literals.add(value)
        ordered = sorted(_literals, key=len, reverse=True)
        _literal_pattern = re.compile("|".join(re.escape(v) for v in ordered))


def _register_environment() -> None:
    for name, value in os.environ.items():
        if name.upper().endswith(SECRET_ENV_SUFFIXES):
            register_secret(value)


def redact(text: str) -> str:
    """``text`` with secret headers, tokens, key-shaped strings and known secrets replaced."""
    pattern = _literal_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _QUERY.sub(lambda m: m.group(1) + REDACTED, text)
    return _KEY_SHAPES.sub(REDACTED, text)


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: the handler reports it; redact the parts
        message = None
    if message is None:
        record.msg = redact(str(record.msg))
        record.args = tuple(redact(str(a)) for a in record.args) if record.args else None
    else:
        clean = redact(message)
        if clean != message:
            record.template = record.msg  # what _drop_header_dumps recognises
            record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _drop_header_dumps(record: logging.LogRecord) -> bool:
    """False for the websockets per-header DEBUG lines ("> %s: %s" / "< %s: %s")."""
    template = getattr(record, "template", record.msg)
    return not (isinstance(template, str) and template in ("> %s: %s", "< %s: %s"))


def install() -> None:
    """Redact every log record made from now on and quiet websockets' header dumps (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    _register_environment()
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(redacting_factory)
    for name in HEADER_DUMP_LOGGERS:
        logging.getLogger(name).addFilter(_drop_header_dumps)
