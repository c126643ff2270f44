"""One MCP server's connection: opened, watched, and opened again with backoff when lost.

The ``mcp`` SDK runs each connection inside anyio task groups that must be entered and left by
one task, and a failing transport cancels that task. So each server gets a supervisor task that
only holds the connection open; tool calls run in tasks of their own, and a call that the
transport cancels comes back as an error, never as a cancellation of the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.core.llm.tools import ToolError
from vision_agents.core.mcp.servers import MCPServer, MCPServerStdio
from vision_agents.core.utils.tasks import TaskOwner, cancel_and_wait

if TYPE_CHECKING:
    from mcp import Client

logger = logging.getLogger(__name__)

DEFAULT_RESTART = RetryPolicy(
    max_retries=10, initial_delay=0.25, max_delay=8.0, connect_timeout=20.0
)


class MCPConnectionError(ConnectionError):
    """An MCP server could not be reached or started; the message names it and the cause."""


@dataclass(frozen=True)
class RemoteTool:
    """A tool as the server lists it."""

    name: str
    description: str
    input_schema: dict[str, Any]


class ServerLink:
    """Keeps one server connected for as long as it is open; ``call`` runs one of its tools."""

    def __init__(
        self, server: MCPServer, *, restart: RetryPolicy, health_interval: float | None
    ) -> None:
        self.server = server
        self.restart = restart
        self.health_interval = health_interval
        self.state = "new"
        """new, connecting, up, restarting, failed or closed."""
        self.restarts = 0
        """Connections opened again after a loss."""
        self.last_error: str | None = None
        self.tools: list[RemoteTool] = []
        self._client: Client | None = None
        self._lost = asyncio.Event()
        self._up = asyncio.Event()
        self._first: asyncio.Future[None] | None = None
        self._tasks = TaskOwner(f"mcp:{server.name}")
        self._supervisor: asyncio.Task[None] | None = None
        self._connected = False

    @property
    def name(self) -> str:
        return self.server.name

    async def start(self) -> list[RemoteTool]:
        """Connect and list the tools; raises ``MCPConnectionError`` if the first try fails."""
        self.state = "connecting"
        self._first = asyncio.get_running_loop().create_future()
        self._supervisor = self._tasks.spawn(self._supervise(), "supervisor")
        try:
            await self._first
        except BaseException:
            await self.close()
            raise
        return self.tools

    async def wait_up(self, within: float) -> None:
        """Wait until the server is connected (e.g. after a restart); TimeoutError if not."""
        async with asyncio.timeout(within):
            await self._up.wait()

    async def close(self) -> None:
        """Close the connection (a stdio server's process is stopped) and every task."""
        self.state = "closed"
        self._up.clear()
        await cancel_and_wait(self._supervisor)
        await self._tasks.close()

    # -- calls -------------------------------------------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """Run ``tool`` with ``arguments``; every failure is a ``ToolError`` naming the server."""
        client = self._client
        if client is None or self.state != "up":
            raise ToolError(self._unavailable(tool))
        started = time.perf_counter()
        task = self._tasks.spawn(self._call(client, tool, arguments), f"call:{tool}")
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            await cancel_and_wait(task)
            raise
        if task.cancelled() and self.state == "closed":
            raise ToolError(f"MCP server {self.name!r} was closed during the call of {tool!r}")
        if task.cancelled():  # the transport tore the connection down under the call
            self._lose(f"the connection was lost during a call of {tool!r}", client)
            raise ToolError(
                f"MCP server {self.name!r} went away during the call of {tool!r} "
                f"(connection lost); it is being reconnected, try again shortly"
            )
        value, exc = task.result()
        if exc is None:
            return value
        if isinstance(exc, ToolError):
            raise exc
        if isinstance(exc, TimeoutError):
            raise ToolError(
                f"MCP server {self.name!r} did not answer the call of {tool!r} within "
                f"{self.server.timeout:g}s"
            ) from None
        if _is_connection_closed(exc):
            self._lose(f"the connection closed during a call of {tool!r}", client)
            what = "process exited" if self._is_stdio else "connection closed"
            raise ToolError(
                f"MCP server {self.name!r} went away during the call of {tool!r} ({what}); "
                "it is being restarted, try again shortly"
            ) from None
        if _is_protocol_error(exc):
            raise ToolError(f"MCP server {self.name!r} refused {tool!r}: {exc}") from None
        self._lose(f"{type(exc).__name__} during a call of {tool!r}", client)
        logger.info(
            "MCP server %r: call of %r failed after %.2fs: %s",
            self.name,
            tool,
            time.perf_counter() - started,
            exc,
        )
        raise ToolError(
            f"MCP server {self.name!r} failed during the call of {tool!r} "
            f"({type(exc).__name__}: {exc}); it is being reconnected"
        ) from None

    async def _call(
        self, client: Client, tool: str, arguments: dict[str, Any]
    ) -> tuple[Any, Exception | None]:
        """The call's value or its exception (returned: a failed call is not a failed task)."""
        try:
            async with asyncio.timeout(self.server.timeout):
                result = await client.call_tool(tool, arguments)
            return _tool_output(self.name, tool, result), None
        except Exception as exc:
            return None, exc

    def _unavailable(self, tool: str) -> str:
        why = f" ({self.last_error})" if self.last_error else ""
        if self.state == "failed":
            return (
                f"MCP server {self.name!r} is down{why} and was given up after "
                f"{self.restart.max_retries} restart attempts; tool {tool!r} is unavailable"
            )
        if self.state == "closed":
            return f"MCP server {self.name!r} is closed; tool {tool!r} is unavailable"
        return (
            f"MCP server {self.name!r} is restarting{why}; tool {tool!r} is unavailable until "
            "it is back, try again shortly"
        )

    @property
    def _is_stdio(self) -> bool:
        return isinstance(self.server, MCPServerStdio)

    def _lose(self, reason: str, client: Client) -> None:
        """Give up ``client``'s connection (unless a newer one replaced it already)."""
        if client is not self._client:
            return
        if self.state == "up":
            self.last_error = reason
            self.state = "restarting"
            self._up.clear()
        self._lost.set()

    # -- the supervisor ------------------------------------------------------------------------

    async def _supervise(self) -> None:
        delays: Iterator[float] | None = None
        while True:
            self._lost = asyncio.Event()
            self._connected = False
            try:
                await self._hold_connection()
                reason = self.last_error or "the connection ended"
            except asyncio.CancelledError:
                if self.state == "closed":  # close() is the only owner that cancels us
                    raise
                # The transport's task group cancelled this task and did not absorb it.
                task = asyncio.current_task()
                while task is not None and task.uncancel() > 0:
                    pass
                reason = "the connection was torn down by the transport"
            except Exception as exc:
                reason = _describe(exc)
            finally:
                self._client = None
                self._up.clear()
            if self.state == "closed":
                return
            if self._first_pending:
                assert self._first is not None
                self.state = "failed"
                self._first.set_exception(
                    MCPConnectionError(f"MCP server {self.name!r} could not be started: {reason}")
                )
                return
            self.state = "restarting"
            self.last_error = reason
            logger.warning("MCP server %r is down: %s", self.name, reason)
            if delays is None or self._connected:
                delays = self.restart.delays()  # backoff starts over after a good connection
            delay = next(delays, None)
            if delay is None:
                self.state = "failed"
                logger.error(
                    "MCP server %r: giving up after %d restart attempts (last: %s)",
                    self.name,
                    self.restart.max_retries,
                    reason,
                )
                return
            await asyncio.sleep(delay)

    @property
    def _first_pending(self) -> bool:
        return self._first is not None and not self._first.done()

    async def _hold_connection(self) -> None:
        """Open the connection, list tools, then wait for a loss (or for close)."""
        client = self.server.open()
        # Entering runs the handshake (and, for stdio, spawns the process).
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self.restart.connect_timeout):
                await stack.enter_async_context(client)
                listed = await _list_tools(client)
            self._on_connected(client, listed)
            await self._watch(client)

    def _on_connected(self, client: Client, listed: list[RemoteTool]) -> None:
        if self._first_pending:
            assert self._first is not None
            self.tools = listed
            self._first.set_result(None)
        else:
            self.restarts += 1
            known = {t.name for t in self.tools}
            now = {t.name for t in listed}
            if known - now:
                logger.warning(
                    "MCP server %r came back without tools %s; their calls will fail",
                    self.name,
                    sorted(known - now),
                )
            logger.info("MCP server %r is back (restart %d)", self.name, self.restarts)
        self._client = client
        self._connected = True
        self.state = "up"
        self.last_error = None
        self._up.set()

    async def _watch(self, client: Client) -> None:
        """Return when the connection is lost: a call saw it, or a periodic listing failed."""
        while True:
            try:
                async with asyncio.timeout(self.health_interval):
                    await self._lost.wait()
                return
            except TimeoutError:
                pass
            try:
                async with asyncio.timeout(self.restart.connect_timeout):
                    await client.list_tools()
            except Exception as exc:
                self._lose(f"a health check failed ({_describe(exc)})", client)
                return


async def _list_tools(client: Client) -> list[RemoteTool]:
    tools: list[RemoteTool] = []
    cursor: str | None = None
    for _ in range(100):  # a server that pages forever cannot hang the connect
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            tools.append(
                RemoteTool(
                    name=tool.name,
                    description=inspect.cleandoc(tool.description or tool.title or ""),
                    input_schema=dict(tool.input_schema or {}),
                )
            )
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _tool_output(server: str, tool: str, result: Any) -> Any:
    """A ``CallToolResult`` as the value the model gets; a tool error becomes ``ToolError``."""
    texts = [block.text for block in result.content if getattr(block, "type", None) == "text"]
    others = [
        block.model_dump(mode="json", by_alias=True, exclude_none=True)
        for block in result.content
        if getattr(block, "type", None) != "text"
    ]
    if result.is_error:
        message = " ".join(texts) or "no message"
        raise ToolError(f"MCP server {server!r} tool {tool!r} failed: {message}")
    structured = result.structured_content
    if structured is not None:
        # Tools that return a plain value get it wrapped as {"result": value} by the server.
        if isinstance(structured, dict) and set(structured) == {"result"}:
            return structured["result"]
        return structured
    if not others:
        return texts[0] if len(texts) == 1 else texts
    return {"text": texts, "content": others} if texts else {"content": others}


def _is_connection_closed(exc: BaseException) -> bool:
    from mcp import MCPError
    from mcp_types import CONNECTION_CLOSED

    return isinstance(exc, MCPError) and exc.error.code == CONNECTION_CLOSED


def _is_protocol_error(exc: BaseException) -> bool:
    from mcp import MCPError

    return isinstance(exc, MCPError)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    if isinstance(exc, TimeoutError):
        return "no answer within the connect timeout"
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
