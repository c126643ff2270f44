"""How to reach an MCP server (a command to spawn, or a URL) and which of its tools to use."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from vision_agents.core.redaction import SECRET_ENV_SUFFIXES, register_secret

if TYPE_CHECKING:
    from mcp import Client

INSTALL_HINT = "MCP tools need the mcp package: pip install 'vision-agents[mcp]'"

_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def import_mcp() -> Any:
    """The ``mcp`` package, imported on first use so core works without the extra."""
    try:
        import mcp
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return mcp


class MCPServer:
    """What the servers have in common: a name, which tools to take and how long a call may take.

    ``tools`` keeps only the named tools (the server's own names); ``tool_filter`` keeps a tool
    when it returns True for its name; with both, a tool must pass both. ``prefix`` goes in
    front of every tool name the model sees (``prefix="files_"``: ``read`` becomes
    ``files_read``), to tell servers' tools apart or avoid a clash. ``timeout`` bounds each
    call (seconds; None: no bound of its own, the LLM's ``tool_timeout`` still applies).
    """

    def __init__(
        self,
        name: str,
        *,
        tools: Collection[str] | None = None,
        tool_filter: Callable[[str], bool] | None = None,
        prefix: str = "",
        timeout: float | None = 30.0,
    ) -> None:
        if not name:
            raise ValueError("an MCP server needs a non-empty name")
        if timeout is not None and not timeout > 0:
            raise ValueError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        if isinstance(tools, str):
            raise TypeError(f"tools must be a collection of tool names, got the string {tools!r}")
        self.name = name
        self.tools = frozenset(tools) if tools is not None else None
        self.tool_filter = tool_filter
        self.prefix = prefix
        self.timeout = timeout

    def wants(self, tool_name: str) -> bool:
        """Whether the server's tool ``tool_name`` passes the allow list and the filter."""
        if self.tools is not None and tool_name not in self.tools:
            return False
        return self.tool_filter is None or bool(self.tool_filter(tool_name))

    def exposed_name(self, tool_name: str) -> str:
        """The name the model sees: prefixed, characters the providers refuse turned into '_'."""
        return _INVALID_NAME_CHARS.sub("_", f"{self.prefix}{tool_name}")

    def open(self) -> Client:
        """A new, not yet entered ``mcp.Client`` for this server."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class MCPServerStdio(MCPServer):
    """A server run as a child process that speaks MCP on its stdin and stdout.

    ``env`` is added to a minimal inherited environment (``PATH``, ``HOME``, ...), as the MCP
    SDK does; the server's stderr goes to ``stderr`` (ours by default). A server that exits is
    started again. Values of ``env`` under secret-looking names (``*_API_KEY``, ``*_TOKEN``,
    ...) are redacted from logs.
    """

    def __init__(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        name: str | None = None,
        stderr: TextIO | None = None,
        tools: Collection[str] | None = None,
        tool_filter: Callable[[str], bool] | None = None,
        prefix: str = "",
        timeout: float | None = 30.0,
    ) -> None:
        if isinstance(args, str):
            raise TypeError(f"args must be a sequence of strings, got the string {args!r}")
        super().__init__(
            name or Path(command).name,
            tools=tools,
            tool_filter=tool_filter,
            prefix=prefix,
            timeout=timeout,
        )
        self.command = command
        self.args = list(args)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.stderr = stderr
        for key, value in (self.env or {}).items():
            if key.upper().endswith(SECRET_ENV_SUFFIXES):
                register_secret(value)

    def open(self) -> Client:
        mcp = import_mcp()
        from mcp.client.stdio import stdio_client

        params = mcp.StdioServerParameters(
            command=self.command, args=self.args, env=self.env, cwd=self.cwd
        )
        transport = stdio_client(params, errlog=self.stderr or _process_stderr())
        client: Client = mcp.Client(transport, cache=None)
        return client


def _process_stderr() -> TextIO:
    """Our stderr if a child can write to it, else the process's own (pytest's capsys and some
    notebooks replace ``sys.stderr`` with an object that has no file descriptor)."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.__stderr__ or sys.stderr
    return sys.stderr


class MCPServerHTTP(MCPServer):
    """A server reached over MCP's streamable HTTP transport at ``url``.

    ``headers`` go with every request (e.g. ``{"Authorization": "Bearer ..."}``); their values
    are never logged (they are redacted from every log record) and are not in ``repr``. A lost
    connection is opened again.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
        connect_timeout: float = 10.0,
        tools: Collection[str] | None = None,
        tool_filter: Callable[[str], bool] | None = None,
        prefix: str = "",
        timeout: float | None = 30.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"MCP server url must be http:// or https:// with a host, got {url!r}")
        super().__init__(
            name or parts.hostname,
            tools=tools,
            tool_filter=tool_filter,
            prefix=prefix,
            timeout=timeout,
        )
        self.url = url
        self._headers = dict(headers or {})
        self.connect_timeout = connect_timeout
        for value in self._headers.values():
            register_secret(value)
        if parts.password:
            register_secret(parts.password)

    @property
    def safe_url(self) -> str:
        """The URL without credentials or query, for messages and logs."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    def open(self) -> Client:
        mcp = import_mcp()
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        http = httpx2.AsyncClient(
            headers=self._headers,
            timeout=httpx2.Timeout(self.connect_timeout, read=300.0),
        )
        transport = _ClosingTransport(streamable_http_client(self.url, http_client=http), http)
        client: Client = mcp.Client(transport, cache=None)
        return client

    def __repr__(self) -> str:
        return f"MCPServerHTTP(name={self.name!r}, url={self.safe_url!r})"


class _ClosingTransport:
    """The streamable HTTP transport, closing the HTTP client we made for it on the way out."""

    def __init__(self, inner: AbstractAsyncContextManager[Any], http: Any) -> None:
        self._inner = inner
        self._http = http

    async def __aenter__(self) -> Any:
        await self._http.__aenter__()
        try:
            return await self._inner.__aenter__()
        except BaseException:
            await self._http.__aexit__(None, None, None)
            raise

    async def __aexit__(self, *exc: Any) -> bool | None:
        try:
            return await self._inner.__aexit__(*exc)
        finally:
            await self._http.__aexit__(None, None, None)
