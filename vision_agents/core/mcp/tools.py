"""`MCPTools`: the tools of one or more MCP servers, registered into an LLM's tool registry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from vision_agents.core.errors import UnsupportedFeature
from vision_agents.core.llm.llm import LLM
from vision_agents.core.llm.realtime import Realtime
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.core.llm.tools import ToolRegistry
from vision_agents.core.mcp.link import DEFAULT_RESTART, RemoteTool, ServerLink
from vision_agents.core.mcp.servers import MCPServer, import_mcp

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MCPToolInfo:
    """One registered MCP tool: the name the model sees, its server and the server's name."""

    name: str
    server: str
    remote_name: str


class MCPTools:
    """Connects to MCP servers and registers their tools into ``llm.tools``.

    ``connect()`` (or ``async with``) starts every server, lists its tools and registers those
    that pass the server's filter, as if they were local tools: they are in
    ``llm.tools.schemas()`` and go to the model with the others (a connected ``Realtime`` is
    sent the new tool list). Calls go to the tool's server. A server that dies is started
    again (stdio) or reconnected (HTTP) with ``restart``'s backoff; meanwhile its tools answer
    the model with an error naming the server. ``close()`` unregisters the tools and stops
    every server process and task.

    ``health_interval``: seconds between checks of an idle connection (a tool listing); a
    loss seen by a call is acted on at once. None: only calls notice a loss.
    """

    def __init__(
        self,
        llm: LLM | ToolRegistry,
        servers: Sequence[MCPServer],
        *,
        restart: RetryPolicy = DEFAULT_RESTART,
        health_interval: float | None = 10.0,
    ) -> None:
        import_mcp()  # fail here, with the install hint, rather than at connect
        if isinstance(servers, MCPServer):
            servers = [servers]
        names = [s.name for s in servers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"MCP server names must differ; used more than once: {duplicates}")
        if health_interval is not None and not health_interval > 0:
            raise ValueError(f"health_interval must be > 0 or None, got {health_interval!r}")
        self._llm = llm if isinstance(llm, LLM) else None
        self._registry = llm.tools if isinstance(llm, LLM) else llm
        self._links = [
            ServerLink(s, restart=restart, health_interval=health_interval) for s in servers
        ]
        self._registered: dict[str, MCPToolInfo] = {}
        self._connected = False

    async def connect(self) -> None:
        """Start every server and register its tools.

        Raises ``MCPConnectionError`` naming a server that cannot be started, and
        ``ValueError`` for a tool name that clashes with a registered tool; either way nothing
        stays registered or running.
        """
        if self._connected:
            raise RuntimeError("MCPTools is already connected")
        self._connected = True
        try:
            # Every start ends (up, or failed within its connect timeout) before we go on.
            outcomes = await asyncio.gather(
                *(link.start() for link in self._links), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            for link, listed in zip(self._links, outcomes, strict=True):
                assert not isinstance(listed, BaseException)
                self._register(link, listed)
        except BaseException:
            await self.close()
            raise
        await self._send_tools()

    async def close(self) -> None:
        """Unregister the tools and close every server (processes stopped, tasks awaited)."""
        for name in list(self._registered):
            if name in self._registry:
                self._registry.unregister(name)
        had_tools = bool(self._registered)
        self._registered.clear()
        await asyncio.gather(*(link.close() for link in self._links), return_exceptions=True)
        if had_tools and self._connected:
            await self._send_tools()
        self._connected = False

    async def __aenter__(self) -> MCPTools:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def tools(self) -> list[MCPToolInfo]:
        """The registered tools, in registration order."""
        return list(self._registered.values())

    def status(self) -> dict[str, dict[str, Any]]:
        """Per server: ``state`` (up, restarting, failed, ...), ``restarts`` and ``last_error``."""
        return {
            link.name: {
                "state": link.state,
                "restarts": link.restarts,
                "last_error": link.last_error,
            }
            for link in self._links
        }

    async def wait_until_up(self, server: str, within: float = 10.0) -> None:
        """Wait until ``server`` is connected (after a restart); raises TimeoutError if not."""
        for link in self._links:
            if link.name == server:
                await link.wait_up(within)
                return
        raise KeyError(
            f"no MCP server named {server!r}; servers: {[li.name for li in self._links]}"
        )

    def _register(self, link: ServerLink, listed: list[RemoteTool]) -> None:
        server = link.server
        taken = [tool for tool in listed if server.wants(tool.name)]
        if server.tools is not None:
            missing = sorted(server.tools - {tool.name for tool in listed})
            if missing:
                logger.warning(
                    "MCP server %r has no tools %s (it has %s)",
                    server.name,
                    missing,
                    sorted(tool.name for tool in listed),
                )
        for tool in taken:
            name = server.exposed_name(tool.name)
            clash = self._registered.get(name)
            if clash is not None:
                raise ValueError(
                    f"MCP tool {tool.name!r} of server {server.name!r} and tool "
                    f"{clash.remote_name!r} of server {clash.server!r} would both be named "
                    f"{name!r}; give one server a prefix=... or filter one out"
                )
            if name in self._registry:
                raise ValueError(
                    f"MCP tool {tool.name!r} of server {server.name!r} would be named {name!r}, "
                    f"but a tool named {name!r} is already registered; give the server a "
                    "prefix=... or filter the tool out"
                )
            self._registry.register_schema(
                name, tool.description, tool.input_schema, _caller(link, tool.name)
            )
            self._registered[name] = MCPToolInfo(name, server.name, tool.name)
        logger.info(
            "MCP server %r: %d of %d tools registered", server.name, len(taken), len(listed)
        )

    async def _send_tools(self) -> None:
        """Give a live Realtime session the new tool list (the next session gets it anyway)."""
        if isinstance(self._llm, Realtime) and self._llm.is_connected:
            try:
                await self._llm.update_tools()
            except UnsupportedFeature:
                logger.warning(
                    "%s cannot change tools mid-session; connect MCPTools before the model",
                    self._llm.provider_name,
                )


def _caller(link: ServerLink, remote_name: str) -> Any:
    async def call(**arguments: Any) -> Any:
        return await link.call(remote_name, arguments)

    call.__name__ = remote_name
    return call
