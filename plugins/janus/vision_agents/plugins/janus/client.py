"""A small typed client for Janus's WebSocket API: one session, its plugin handles, keepalives.

Janus answers a request with an ``ack`` and, for plugin messages that take time (a ``join``
with an SDP offer, say), with a later ``event`` carrying the same transaction. ``request``
waits for the final answer; everything else Janus sends (a publisher arriving, ``webrtcup``,
``hangup``, a handle ``detached``) goes to the handle's ``on_event`` callback. A session is
kept alive with a ``keepalive`` every ``keepalive_s`` (Janus drops a silent session after its
``session_timeout``, 60 s by default). When the socket closes, every pending request fails
with ``JanusClosed`` and ``closed`` is set: the edge reconnects with a new session.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"


class JanusError(RuntimeError):
    """Janus (or its plugin) refused a request: ``code`` and ``reason`` are Janus's own."""

    def __init__(self, code: int, reason: str, request: str) -> None:
        super().__init__(f"Janus refused {request!r}: {reason} (code {code})")
        self.code = code
        self.reason = reason


class JanusClosed(ConnectionError):
    """The WebSocket to Janus closed (Janus stopped or restarted, or the network dropped)."""


def signed_token(secret: str, ttl_s: float, plugins: tuple[str, ...] = (VIDEOROOM,)) -> str:
    """A token Janus accepts with ``token_auth_secret = secret``: it expires in ``ttl_s`` and
    allows ``plugins`` (Janus's HMAC-SHA1 signed-token format)."""
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s}")
    payload = ",".join([str(int(time.time() + ttl_s)), "janus", *plugins])
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha1).digest()
    return f"{payload}:{base64.b64encode(digest).decode()}"


EventCallback = Callable[[dict[str, Any]], None]


class JanusHandle:
    """One attached plugin handle; ``on_event`` receives its asynchronous events."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.id = handle_id
        self.on_event: EventCallback | None = None

    async def message(
        self, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send a plugin request; returns Janus's final answer (``plugindata`` and ``jsep``)."""
        request: dict[str, Any] = {"janus": "message", "handle_id": self.id, "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        answer = await self.session.request(request)
        data = answer.get("plugindata", {}).get("data", {})
        if "error_code" in data:
            raise JanusError(
                int(data["error_code"]), str(data.get("error", "")), str(body.get("request"))
            )
        return answer

    async def detach(self) -> None:
        with contextlib.suppress(JanusClosed, JanusError):
            await self.session.request({"janus": "detach", "handle_id": self.id})
        self.session.handles.pop(self.id, None)


class JanusSession:
    """A Janus session over one WebSocket. Use ``await JanusSession.connect(url, token)``."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._http = http
        self._ws = ws
        self._token: str | None = None
        self.id = 0
        self.handles: dict[int, JanusHandle] = {}
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._reader: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, url: str, token: str, *, keepalive_s: float = 25.0, timeout_s: float = 5.0
    ) -> JanusSession:
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(
                url, protocols=("janus-protocol",), timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
            )
        except (aiohttp.ClientError, OSError) as exc:
            await http.close()
            raise JanusClosed(f"cannot reach Janus at {url}: {exc}") from exc
        session = cls(http, ws)
        session._token = token
        session._reader = asyncio.create_task(session._read(), name="janus-read")
        try:
            answer = await asyncio.wait_for(session.request({"janus": "create"}), timeout_s)
        except BaseException:
            await session.close()
            raise
        session.id = int(answer["data"]["id"])
        session._keepalive = asyncio.create_task(
            session._keep_alive(keepalive_s), name="janus-keepalive"
        )
        return session

    async def attach(self, plugin: str = VIDEOROOM) -> JanusHandle:
        answer = await self.request({"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, int(answer["data"]["id"]))
        self.handles[handle.id] = handle
        return handle

    async def request(self, body: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
        """Send ``body`` (session id, token and transaction are added); the final answer."""
        if self.closed.is_set():
            raise JanusClosed(self.close_reason or "the Janus session is closed")
        transaction = secrets.token_hex(8)
        message = {**body, "transaction": transaction, "token": self._token}
        if self.id:
            message["session_id"] = self.id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        try:
            await self._ws.send_str(json.dumps(message))
            answer = await asyncio.wait_for(future, timeout_s)
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise JanusClosed(f"Janus socket failed: {exc}") from exc
        except TimeoutError:
            raise JanusError(
                0, f"no answer within {timeout_s:.0f} s", str(body.get("janus"))
            ) from None
        finally:
            self._pending.pop(transaction, None)
        if answer.get("janus") == "error":
            error = answer.get("error", {})
            raise JanusError(
                int(error.get("code", 0)), str(error.get("reason", "")), str(body.get("janus"))
            )
        return answer

    async def close(self) -> None:
        """Destroy the session (when still connected) and close the socket."""
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
        if not self.closed.is_set() and self.id:
            with contextlib.suppress(JanusClosed, JanusError):
                await self.request({"janus": "destroy"}, timeout_s=2.0)
        await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._closed("closed by us")
        await self._http.close()

    # -- internals ---------------------------------------------------------------------------

    def _closed(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(JanusClosed(reason))
        self._pending.clear()

    async def _read(self) -> None:
        reason = "Janus closed the socket"
        try:
            async for frame in self._ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    message = json.loads(frame.data)
                except ValueError:
                    logger.warning(
                        "Janus sent a message that is not JSON (%d bytes)", len(frame.data)
                    )
                    continue
                if isinstance(message, dict):
                    self._dispatch(message)
        except (aiohttp.ClientError, ConnectionError) as exc:
            reason = f"Janus socket failed: {exc}"
        finally:
            self._closed(reason)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        transaction = message.get("transaction")
        future = self._pending.get(transaction) if isinstance(transaction, str) else None
        if kind == "ack":
            return  # the answer (or the plugin's event) follows with the same transaction
        if future is not None and not future.done():
            future.set_result(message)
            return
        if kind == "timeout":
            self._closed("Janus timed the session out")
            return
        handle = self.handles.get(int(message.get("sender", 0) or 0))
        if handle is not None and handle.on_event is not None:
            try:
                handle.on_event(message)
            except Exception:
                logger.exception("handling a Janus event failed")

    async def _keep_alive(self, every_s: float) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(every_s)
            with contextlib.suppress(JanusError, JanusClosed):
                await self._send_only({"janus": "keepalive"})

    async def _send_only(self, body: dict[str, Any]) -> None:
        message = {**body, "transaction": secrets.token_hex(8), "token": self._token}
        message["session_id"] = self.id
        try:
            await self._ws.send_str(json.dumps(message))
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise JanusClosed(str(exc)) from exc
