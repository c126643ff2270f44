"""A small MCP server for the tests: ``python tools_server.py stdio|http PORT [--name NAME]``.

Its tools add numbers, echo text, report the process id (so a test can kill it), sleep (and
leave a marker file when a call starts, so a test knows a call is under way) and fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build(name: str) -> MCPServer:
    server: MCPServer = MCPServer(name)

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers.

        Args:
            a: The first number.
            b: The second number.
        """
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Say the text back, with the server's name in front."""
        return f"{name}: {text}"

    @server.tool()
    def pid() -> int:
        """The server's process id."""
        return os.getpid()

    @server.tool()
    async def slow(seconds: float) -> str:
        """Wait, then answer; a call leaves the file $MCP_TEST_MARKER when it starts."""
        marker = os.environ.get("MCP_TEST_MARKER")
        if marker:
            await asyncio.to_thread(Path(marker).write_text, str(os.getpid()))
        await asyncio.sleep(seconds)
        return f"slept {seconds}s"

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails with the reason given."""
        raise ToolError(reason)

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["stdio", "http"])
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--name", default="tools")
    args = parser.parse_args()
    server = build(args.name)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
