"""A local OpenAI-compatible chat completions server for tests: scripted, streaming, strict.

``POST /v1/chat/completions`` checks the request like the real API would (known keys only,
roles, tool messages answering earlier tool calls, image parts as data URLs) and answers
with the next scripted ``ChatReply``: text, and/or tool calls, streamed as server-sent
events (or as one JSON body when ``stream`` is false). Every request is kept in ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_REQUEST_KEYS = {
    "model", "messages", "stream", "stream_options", "tools", "tool_choice", "temperature",
    "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "user", "n",
    "parallel_tool_calls", "response_format", "presence_penalty", "frequency_penalty",
}  # fmt: skip
_ROLES = {"system", "developer", "user", "assistant", "tool"}


class ChatRequestError(ValueError):
    """The request breaks the chat completions API; the server answers 400 with this text."""


@dataclass
class ToolCallReply:
    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: "call_" + uuid.uuid4().hex[:12])


@dataclass
class ChatReply:
    """One scripted answer: ``text`` streamed in pieces of ``chunk_chars``, then tool calls."""

    text: str = ""
    tool_calls: list[ToolCallReply] = field(default_factory=list)
    chunk_chars: int = 8
    delay_s: float = 0.0


Responder = Callable[[dict[str, Any]], ChatReply]


class OpenAIChatServer:
    """``async with OpenAIChatServer(replies) as server``: ``server.base_url`` ends in ``/v1``.

    ``replies`` is a list consumed in order, or a function of the request body.
    """

    def __init__(self, replies: list[ChatReply] | Responder, *, api_key: str | None = None):
        self._replies = replies
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> OpenAIChatServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        if self.api_key is not None and request.headers.get("Authorization") != (
            f"Bearer {self.api_key}"
        ):
            return web.json_response({"error": {"message": "bad API key"}}, status=401)
        try:
            body = await request.json()
            validate_request(body)
        except (ChatRequestError, json.JSONDecodeError) as exc:
            self.errors.append(str(exc))
            return web.json_response(
                {"error": {"message": str(exc), "type": "invalid_request_error"}}, status=400
            )
        self.requests.append(body)
        reply = self._next_reply(body)
        if not body.get("stream"):
            return web.json_response(_whole(body["model"], reply))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in _chunks(body["model"], reply):
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _next_reply(self, body: dict[str, Any]) -> ChatReply:
        if callable(self._replies):
            return self._replies(body)
        if not self._replies:
            return ChatReply(text="(no more scripted replies)")
        return self._replies.pop(0)


def validate_request(body: Any) -> None:
    """Raise ``ChatRequestError`` for anything the real endpoint would reject."""
    if not isinstance(body, dict):
        raise ChatRequestError("the body must be a JSON object")
    extra = set(body) - _REQUEST_KEYS
    if extra:
        raise ChatRequestError(f"unknown keys: {sorted(extra)}; accepted: {sorted(_REQUEST_KEYS)}")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ChatRequestError("'model' must be a non-empty string")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ChatRequestError("'messages' must be a non-empty list")
    open_calls: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise ChatRequestError(f"messages[{i}] needs a role among {sorted(_ROLES)}")
        role = message["role"]
        content = message.get("content")
        if role == "tool":
            if message.get("tool_call_id") not in open_calls:
                raise ChatRequestError(f"messages[{i}]: tool message answers no open tool call")
            open_calls.discard(message["tool_call_id"])
            if not isinstance(content, str):
                raise ChatRequestError(f"messages[{i}]: tool content must be a string")
            continue
        if open_calls:
            raise ChatRequestError(f"messages[{i}]: tool calls {sorted(open_calls)} unanswered")
        if role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                function = call.get("function", {})
                json.loads(function.get("arguments", ""))  # must be JSON
                open_calls.add(call["id"])
        elif isinstance(content, list):
            if role != "user":
                raise ChatRequestError(f"messages[{i}]: only user messages may have parts")
            for part in content:
                kind = part.get("type")
                if kind == "image_url":
                    url = part.get("image_url", {}).get("url", "")
                    if not url.startswith(("data:image/", "https://")):
                        raise ChatRequestError(f"messages[{i}]: image url must be a data URL")
                elif kind != "text":
                    raise ChatRequestError(f"messages[{i}]: unknown content part {kind!r}")
        elif not isinstance(content, str):
            raise ChatRequestError(f"messages[{i}]: content must be a string or a list of parts")
    if open_calls:
        raise ChatRequestError(f"tool calls {sorted(open_calls)} were never answered")
    for tool in body.get("tools", []):
        function = tool.get("function") if tool.get("type") == "function" else None
        if not isinstance(function, dict) or not function.get("name"):
            raise ChatRequestError(f"bad tool {tool!r}: needs type 'function' and a name")
        if function.get("parameters", {}).get("type") != "object":
            raise ChatRequestError(f"tool {function['name']}: parameters must be an object schema")


def _chunk(model: str, cid: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _chunks(model: str, reply: ChatReply) -> list[dict[str, Any]]:
    cid = "chatcmpl-" + uuid.uuid4().hex[:12]
    out = [_chunk(model, cid, {"role": "assistant", "content": ""}, None)]
    step = max(1, reply.chunk_chars)
    for start in range(0, len(reply.text), step):
        out.append(_chunk(model, cid, {"content": reply.text[start : start + step]}, None))
    for index, call in enumerate(reply.tool_calls):
        args = json.dumps(call.arguments)
        half = len(args) // 2  # arguments arrive in pieces, as from the real API
        first = {"index": index, "id": call.id, "type": "function"}
        first["function"] = {"name": call.name, "arguments": args[:half]}
        out.append(_chunk(model, cid, {"tool_calls": [first]}, None))
        rest = {"index": index, "function": {"arguments": args[half:]}}
        out.append(_chunk(model, cid, {"tool_calls": [rest]}, None))
    finish = "tool_calls" if reply.tool_calls else "stop"
    out.append(_chunk(model, cid, {}, finish))
    return out


def _whole(model: str, reply: ChatReply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:12],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
            }
        ],
    }
