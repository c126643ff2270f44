"""A tiny MCP server with one tool, run by ``main.py`` over stdio (needs the mcp extra)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server: MCPServer = MCPServer("weather")

FORECASTS = {"oslo": "snow, -3 C", "lisbon": "sunny, 19 C"}


@server.tool()
def forecast(city: str) -> str:
    """Tomorrow's weather in a city.

    Args:
        city: The city's name in English.
    """
    try:
        return FORECASTS[city.lower()]
    except KeyError:
        raise ToolError(f"no forecast for {city!r}; try one of {sorted(FORECASTS)}") from None


if __name__ == "__main__":
    server.run("stdio")
