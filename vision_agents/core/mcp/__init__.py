"""MCP (Model Context Protocol) tools for any `LLM` or `Realtime`: see docs/mcp.md.

    async with MCPTools(llm, [MCPServerStdio("python", ["server.py"]),
                              MCPServerHTTP("http://127.0.0.1:8000/mcp")]):
        ...  # the servers' tools are in llm.tools, called like local tools

Needs the ``mcp`` extra (``pip install 'vision-agents[mcp]'``); importing this module does not.
"""

from vision_agents.core.mcp.link import MCPConnectionError
from vision_agents.core.mcp.servers import MCPServer, MCPServerHTTP, MCPServerStdio
from vision_agents.core.mcp.tools import MCPToolInfo, MCPTools

__all__ = [
    "MCPConnectionError",
    "MCPServer",
    "MCPServerHTTP",
    "MCPServerStdio",
    "MCPToolInfo",
    "MCPTools",
]
