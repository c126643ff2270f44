"""Signed, expiring join tokens bound to one call and one participant (HMAC-SHA256).

A token is accepted only in its canonical form (the exact bytes ``mint`` produced): no
padding, no other alphabet, no whitespace, no trailing bits. Its participant id lets the
server keep one seat per token at a time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

MAX_TOKEN_CHARS = 1024
_PART = re.compile(r"^[A-Za-z0-9_-]+$")


class TokenError(ValueError):
    """A join token is malformed, forged, expired or for another call."""


@dataclass(frozen=True)
class JoinClaims:
    """What a valid token grants: one seat in ``call_id`` as ``name`` until ``expires_at``.

    ``participant_id`` is random per minted token; the server holds at most one seat for it.
    """

    call_id: str
    name: str
    expires_at: float
    participant_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Decode unpadded base64url, refusing any form ``_b64`` would not have produced."""
    if not _PART.match(text) or len(text) % 4 == 1:
        raise ValueError("not canonical base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:  # e.g. non-zero trailing bits
        raise ValueError("not canonical base64url")
    return data


class JoinTokens:
    """Mints and checks join tokens: ``<payload>.<signature>``, both base64url.

    The payload names the call, a display name and an expiry time; the signature is an
    HMAC-SHA256 of the payload with ``secret`` (random per process when not given, so links
    die with the server unless the secret is kept).
    """

    def __init__(self, secret: bytes | None = None) -> None:
        if secret is not None and len(secret) < 16:
            raise ValueError(f"secret must be at least 16 bytes, got {len(secret)}")
        self._secret = secret or secrets.token_bytes(32)

    def mint(self, call_id: str, *, name: str = "", ttl_s: float = 3600.0) -> str:
        """A token for joining ``call_id``, valid for ``ttl_s`` seconds."""
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
        payload = json.dumps(
            {
                "c": call_id,
                "n": name,
                "e": round(time.time() + ttl_s, 3),
                "p": secrets.token_urlsafe(9),
            },
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def verify(self, token: str, call_id: str) -> JoinClaims:
        """The token's claims if it is authentic, unexpired and for ``call_id``; else TokenError."""
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise TokenError("malformed join token")
        body, signature = token.split(".")
        try:
            payload, given = _unb64(body), _unb64(signature)
        except (ValueError, TypeError, UnicodeError) as exc:
            raise TokenError("malformed join token") from exc
        if not hmac.compare_digest(given, self._sign(payload)):
            raise TokenError("join token signature does not match")
        try:
            data = json.loads(payload)
            claims = JoinClaims(str(data["c"]), str(data["n"]), float(data["e"]), str(data["p"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError("malformed join token payload") from exc
        if claims.call_id != call_id:
            raise TokenError(f"join token is for another call, not {call_id!r}")
        if claims.expires_at < time.time():
            raise TokenError("join token expired")
        return claims

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()
