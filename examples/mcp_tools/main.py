"""An agent whose model can call the tools of an MCP server: no key or network needed.

``weather_server.py`` (beside this file) is an MCP server with one tool, ``forecast``; the
agent starts it over stdio when it joins the call (and stops it when it leaves), and its
tool reaches the model as ``weather_forecast``. The offline
``FakeRealtime`` stands in for the model and asks for the tool twice (a known city, then an
unknown one: the error goes back to the model as a tool result). With a real model
(``openai.Realtime()``, ``gemini.Realtime()``) the model decides when to call it.

    pip install 'vision-agents[mcp]'
    python examples/mcp_tools/main.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from vision_agents.core import Agent, User
from vision_agents.core.llm.events import ToolCallCompletedEvent
from vision_agents.core.llm.tools import ToolResult
from vision_agents.core.mcp import MCPServerStdio
from vision_agents.testing import FakeRealtime, InMemoryEdge

HERE = Path(__file__).resolve().parent


async def main() -> list[ToolResult]:
    model = FakeRealtime()
    weather = MCPServerStdio(
        sys.executable, [str(HERE / "weather_server.py")], name="weather", prefix="weather_"
    )
    agent = Agent(
        edge=InMemoryEdge(), agent_user=User(name="Ada"), llm=model, mcp_servers=[weather]
    )

    @model.events.subscribe
    async def on_tool(event: ToolCallCompletedEvent) -> None:
        print(f"tool {event.name}: {'ok' if event.ok else 'error'}")

    async with agent.join(await agent.create_call("default", "mcp-example")):
        assert agent.mcp is not None
        print("tools from MCP:", [tool.name for tool in agent.mcp.tools])
        # FakeRealtime stands in for a model deciding to call the tool.
        model.call_tool("call-1", "weather_forecast", {"city": "Oslo"})
        model.call_tool("call-2", "weather_forecast", {"city": "Atlantis"})
        for _ in range(200):
            if len(model.tool_results) == 2:
                break
            await asyncio.sleep(0.05)
    results = sorted(model.tool_results, key=lambda r: r.call_id or "")
    for result in results:
        print(f"{result.call_id} -> {result.to_json()}")
    return results


if __name__ == "__main__":
    asyncio.run(main())
