"""MCP servers the MCP tests start (stdio or streamable HTTP), written with the mcp SDK."""
