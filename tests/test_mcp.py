"""MCP tools: servers started by the tests (stdio and streamable HTTP) give their tools to a model.

The Realtime tests drive the OpenAI plugin through the real ``openai`` SDK against the local
protocol server and read the ``function_call_output`` items it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import no_leaks, wait_until
from vision_agents.core import Agent
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.core.llm.tools import ToolRegistry
from vision_agents.core.mcp import (
    MCPConnectionError,
    MCPServerHTTP,
    MCPServerStdio,
    MCPTools,
)
from vision_agents.plugins import gemini
from vision_agents.plugins import openai as openai_plugin
from vision_agents.testing import (
    ChatReply,
    FakeRealtime,
    GeminiLiveServer,
    InMemoryEdge,
    OpenAIChatServer,
    OpenAIRealtimeServer,
    ScriptedReply,
    ToolCallReply,
)

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
SERVER = str(ROOT / "tests/mcp_servers/tools_server.py")
FAST_RESTART = RetryPolicy(max_retries=20, initial_delay=0.1, max_delay=0.5, connect_timeout=20)


def stdio_server(name: str = "local", marker: Path | None = None, **options: Any) -> MCPServerStdio:
    env = {"MCP_TEST_MARKER": str(marker)} if marker else None
    return MCPServerStdio(
        sys.executable, [SERVER, "stdio", "--name", name], env=env, name=name, **options
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HTTPServerProcess:
    """The test server on streamable HTTP at 127.0.0.1:port; can be killed and started again."""

    def __init__(self, marker: Path, name: str = "web") -> None:
        self.name = name
        self.marker = marker
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *[sys.executable, SERVER, "http", str(self.port), "--name", self.name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "MCP_TEST_MARKER": str(self.marker)},
        )

        def accepting() -> bool:
            assert self.process is not None and self.process.returncode is None, "server exited"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return True
            return False

        await wait_until(accepting, 30, f"the HTTP MCP server on port {self.port}")

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def http_server(tmp_path: Path) -> AsyncIterator[HTTPServerProcess]:
    server = HTTPServerProcess(tmp_path / "http-call-started")
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


@pytest.fixture(scope="module")
def shared_http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One HTTP server for the tests that do not kill it (each start imports the SDK: ~1 s)."""
    port = free_port()
    marker = tmp_path_factory.mktemp("mcp") / "call-started"
    process = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port), "--name", "web"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MCP_TEST_MARKER": str(marker)},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "the shared HTTP MCP server exited"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            assert time.monotonic() < deadline, "the shared HTTP MCP server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait(10)


@pytest.fixture
async def realtime_server() -> AsyncIterator[OpenAIRealtimeServer]:
    async with OpenAIRealtimeServer() as s:
        yield s


def make_llm(server: OpenAIRealtimeServer) -> openai_plugin.Realtime:
    client = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url)
    return openai_plugin.Realtime(
        client=client, retry=RetryPolicy(initial_delay=0.01), transport="websocket"
    )


def tool_outputs(server: OpenAIRealtimeServer) -> list[dict[str, Any]]:
    """The payloads of the function_call_output items the model received, in order."""
    return [
        json.loads(e["item"]["output"])
        for e in server.received_of("conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    ]


def is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A killed child of ours is a zombie until reaped: gone as a server all the same.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    return True


# -- (a) a Realtime session calls tools of a stdio and an HTTP server ----------------------


async def test_realtime_session_calls_tools_of_stdio_and_http_servers(
    realtime_server: OpenAIRealtimeServer, shared_http_url: str
) -> None:
    llm = make_llm(realtime_server)
    stdio = MCPTools(llm, [stdio_server("local", prefix="local_")])
    web = MCPTools(llm, [MCPServerHTTP(shared_http_url, name="web", prefix="web_")])
    await stdio.connect()  # before the session: its tools are in the first session.update
    await llm.connect()
    try:
        await realtime_server.wait_for(lambda: bool(realtime_server.received_of("session.update")))
        first = realtime_server.received_of("session.update")[0]["session"]
        assert [t["name"] for t in first["tools"]] == [
            "local_add",
            "local_echo",
            "local_pid",
            "local_slow",
            "local_fail",
        ]
        add = next(t for t in first["tools"] if t["name"] == "local_add")
        assert add["type"] == "function" and add["description"].startswith("Add two integers.")
        assert add["parameters"] == {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        }

        await web.connect()  # during the session: the live session is sent the new list
        await realtime_server.wait_for(
            lambda: any(
                "web_echo" in [t["name"] for t in e["session"].get("tools", [])]
                for e in realtime_server.received_of("session.update")
            )
        )
        assert [s.name for s in llm.tools.schemas()][-5:] == [
            "web_add",
            "web_echo",
            "web_pid",
            "web_slow",
            "web_fail",
        ]

        realtime_server.script(
            ScriptedReply(
                tool_calls=[
                    ("local_add", {"a": 2, "b": 3}),
                    ("web_echo", {"text": "hi"}),
                    ("local_add", {"a": "two", "b": 3}),
                    ("web_fail", {"reason": "on purpose"}),
                ]
            ),
            ScriptedReply(transcript="5 and hi"),
        )
        await llm.simple_response("use the tools")
        await realtime_server.wait_for(lambda: len(tool_outputs(realtime_server)) == 4, within=20)
        outputs = tool_outputs(realtime_server)
        assert {"result": 5} in outputs
        assert {"result": "web: hi"} in outputs
        errors = [o["error"] for o in outputs if "error" in o]
        assert len(errors) == 2
        bad_arguments = next(e for e in errors if "'add'" in e)
        # the server's validation message reaches the model, naming the argument
        assert "MCP server 'local'" in bad_arguments and "validation error" in bad_arguments
        assert "\na\n" in bad_arguments or "'a'" in bad_arguments
        assert any("MCP server 'web' tool 'fail' failed" in e and "on purpose" in e for e in errors)
        await realtime_server.wait_for(
            lambda: len(realtime_server.received_of("response.create")) >= 2
        )
        assert realtime_server.errors == []
    finally:
        await llm.close()
        await web.close()
        await stdio.close()
    assert len(llm.tools) == 0


async def test_gemini_live_session_gets_and_calls_mcp_tools(shared_http_url: str) -> None:
    async with GeminiLiveServer() as server:
        llm = gemini.Realtime(
            model="gemini-live-test", client=server.client(), retry=RetryPolicy(initial_delay=0.01)
        )
        async with MCPTools(llm, [MCPServerHTTP(shared_http_url, name="web", tools={"add"})]):
            await llm.connect()
            try:
                [decl] = server.setups[0]["tools"][0]["functionDeclarations"]
                assert decl["name"] == "add"
                assert decl["parameters_json_schema"]["required"] == ["a", "b"]
                call_id = await server.send_tool_call("add", {"a": 20, "b": 22})
                await server.wait_for(lambda: len(server.tool_responses) == 1)
                [response] = server.tool_responses
                assert response["id"] == call_id and response["response"] == {"result": 42}
            finally:
                await llm.close()


async def test_chat_llm_calls_mcp_tools(shared_http_url: str) -> None:
    replies = [
        ChatReply(tool_calls=[ToolCallReply("web_add", {"a": 4, "b": 5})]),
        ChatReply(text="Nine."),
    ]
    async with OpenAIChatServer(replies, api_key="sk-test") as server:
        llm = openai_plugin.LLM(
            model="local-model",
            client=openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url),
        )
        async with MCPTools(llm, [MCPServerHTTP(shared_http_url, name="web", prefix="web_")]):
            text = "".join([d async for d in llm.stream_response("add 4 and 5")])
        assert text == "Nine."
        first, second = server.requests[0], server.requests[1]
        assert "web_add" in [t["function"]["name"] for t in first["tools"]]
        assert json.loads(second["messages"][-1]["content"]) == {"result": 9}


# -- (b) a server killed mid-call ---------------------------------------------------------


async def test_stdio_server_killed_mid_call_errors_then_comes_back(
    realtime_server: OpenAIRealtimeServer, tmp_path: Path
) -> None:
    marker = tmp_path / "call-started"
    second_pid: int | None = None
    llm = make_llm(realtime_server)
    # No periodic check: the restart here can only come from the call that saw the loss.
    mcp_tools = MCPTools(
        llm, [stdio_server("local", marker=marker)], restart=FAST_RESTART, health_interval=None
    )
    await mcp_tools.connect()
    await llm.connect()
    try:
        realtime_server.script(ScriptedReply(tool_calls=[("pid", {})]))
        await llm.simple_response("who are you")
        await realtime_server.wait_for(lambda: len(tool_outputs(realtime_server)) == 1, within=10)
        first_pid = tool_outputs(realtime_server)[0]["result"]
        assert isinstance(first_pid, int)

        realtime_server.script(ScriptedReply(tool_calls=[("slow", {"seconds": 30})]))
        await llm.simple_response("wait")
        await wait_until(marker.exists, 15, "the slow call to start in the server")
        os.kill(first_pid, signal.SIGKILL)
        killed_at = time.perf_counter()
        await realtime_server.wait_for(lambda: len(tool_outputs(realtime_server)) == 2, within=10)
        error_after = time.perf_counter() - killed_at
        error = tool_outputs(realtime_server)[1]["error"]
        assert "MCP server 'local' went away during the call of 'slow'" in error
        assert "process exited" in error

        await mcp_tools.wait_until_up("local", within=30)
        restart_s = time.perf_counter() - killed_at
        status = mcp_tools.status()["local"]
        assert status["state"] == "up" and status["restarts"] == 1
        logging.getLogger(__name__).info(
            "error reached the model %.3fs after the kill; server back after %.2fs",
            error_after,
            restart_s,
        )
        print(f"kill -> error result {error_after:.3f}s, kill -> server back {restart_s:.2f}s")

        realtime_server.script(ScriptedReply(tool_calls=[("add", {"a": 40, "b": 2}), ("pid", {})]))
        await llm.simple_response("again")
        await realtime_server.wait_for(lambda: len(tool_outputs(realtime_server)) == 4, within=10)
        again = tool_outputs(realtime_server)[2:]
        assert {"result": 42} in again
        second_pid = next(o["result"] for o in again if o != {"result": 42})
        assert second_pid != first_pid
        assert is_gone(first_pid)
    finally:
        await llm.close()
        await mcp_tools.close()
    assert second_pid is not None
    await wait_until(lambda: is_gone(second_pid), 10, "the respawned server to be stopped")


async def test_http_server_killed_mid_call_errors_meanwhile_then_reconnects(
    http_server: HTTPServerProcess,
) -> None:
    registry = ToolRegistry()
    async with no_leaks():
        mcp_tools = MCPTools(
            registry, [MCPServerHTTP(http_server.url, name="web")], restart=FAST_RESTART
        )
        async with mcp_tools:
            assert (await registry.call("add", {"a": 1, "b": 2})).value == 3
            call = asyncio.create_task(registry.call("slow", {"seconds": 30}))
            await wait_until(http_server.marker.exists, 15, "the slow call to start in the server")
            await http_server.kill()
            result = await asyncio.wait_for(call, 10)
            assert not result.ok and result.error is not None
            assert result.error.startswith("MCP server 'web' "), result.error
            assert "during the call of 'slow'" in result.error, result.error

            # while the server is down, its tools answer with an error naming it
            await wait_until(
                lambda: mcp_tools.status()["web"]["state"] == "restarting", 10, "restarting"
            )
            down = await registry.call("echo", {"text": "anyone?"})
            assert not down.ok and down.error is not None
            assert "MCP server 'web' is restarting" in down.error

            await http_server.start()
            await mcp_tools.wait_until_up("web", within=30)
            back = await registry.call("echo", {"text": "back"})
            assert back.ok and back.value == "web: back"
            assert mcp_tools.status()["web"]["restarts"] == 1
        await http_server.kill()  # the test's own process watcher thread ends with it
        await wait_until(
            lambda: not [t for t in threading.enumerate() if t.name.startswith("asyncio-waitpid")],
            5,
            "the watcher thread of the killed HTTP server to end",
        )


async def test_idle_server_that_dies_is_noticed_and_restarted() -> None:
    registry = ToolRegistry()
    async with no_leaks():
        mcp_tools = MCPTools(
            registry, [stdio_server("local")], restart=FAST_RESTART, health_interval=0.2
        )
        async with mcp_tools:
            first_pid = (await registry.call("pid", {})).value
            os.kill(first_pid, signal.SIGKILL)
            await wait_until(
                lambda: mcp_tools.status()["local"]["restarts"] == 1, 30, "the health check"
            )
            assert mcp_tools.status()["local"]["state"] == "up"
            second = await registry.call("pid", {})
            assert second.ok and second.value != first_pid
        await wait_until(lambda: is_gone(second.value), 10, "the server process to be stopped")


# -- (c) filtering, clashes, timeouts, bad arguments ----------------------------------------


async def test_filtering_prefixes_and_name_clashes(shared_http_url: str) -> None:
    registry = ToolRegistry()

    @registry.register
    def echo(text: str) -> str:
        """A local echo."""
        return text

    async with no_leaks():
        only = MCPTools(
            registry,
            [
                stdio_server(
                    "calc", tools={"add", "pid", "nonexistent"}, tool_filter=lambda n: n != "pid"
                ),
                MCPServerHTTP(
                    shared_http_url,
                    name="web",
                    tool_filter=lambda n: n.startswith("e"),
                    prefix="web.",
                ),
            ],
        )
        async with only:
            assert registry.names == ["echo", "add", "web_echo"]
            assert [(t.name, t.server, t.remote_name) for t in only.tools] == [
                ("add", "calc", "add"),
                ("web_echo", "web", "echo"),
            ]
            assert (await registry.call("web_echo", {"text": "x"})).value == "web: x"
        assert registry.names == ["echo"]

        # a server tool named like a registered tool: a clear error naming both, nothing kept
        clash = MCPTools(registry, [MCPServerHTTP(shared_http_url, name="web")])
        with pytest.raises(
            ValueError, match=r"MCP tool 'echo' of server 'web'.*already registered"
        ):
            await clash.connect()
        assert registry.names == ["echo"]
        assert clash.status()["web"]["state"] == "closed"

        two = MCPTools(
            registry,
            [
                MCPServerHTTP(shared_http_url, name="one", tools={"add"}),
                MCPServerHTTP(shared_http_url, name="two", tools={"add"}),
            ],
        )
        with pytest.raises(
            ValueError, match=r"'add' of server 'two' and tool 'add' of server 'one'"
        ):
            await two.connect()
        assert registry.names == ["echo"]

    with pytest.raises(ValueError, match="names must differ"):
        MCPTools(registry, [stdio_server("x"), stdio_server("x")])


async def test_timeout_bad_arguments_and_unknown_server(shared_http_url: str) -> None:
    registry = ToolRegistry()
    async with no_leaks():
        async with MCPTools(registry, [stdio_server("calc", timeout=0.5)]):
            started = time.perf_counter()
            slow = await registry.call("slow", {"seconds": 20})
            waited = time.perf_counter() - started
            assert not slow.ok
            assert slow.error == "MCP server 'calc' did not answer the call of 'slow' within 0.5s"
            assert 0.5 <= waited < 3

            not_an_object = await registry.call("add", "[1, 2]")
            assert not not_an_object.ok
            assert "arguments must be a JSON object" in (not_an_object.error or "")
            missing = await registry.call("add", {"a": 1})
            assert not missing.ok and "'add' failed" in (missing.error or "")
            assert "b" in (missing.error or "")
            # the server is still fine after all that
            assert (await registry.call("add", {"a": 1, "b": 1})).value == 2

        # one server cannot start: the error names it, and the one that did start is stopped
        good = MCPTools(
            registry,
            [
                MCPServerHTTP(shared_http_url, name="web"),
                MCPServerStdio("/nonexistent/mcp-server", name="nothing"),
            ],
        )
        with pytest.raises(MCPConnectionError, match="MCP server 'nothing' could not be started"):
            await good.connect()
        assert good.status()["web"]["state"] == "closed"
        with pytest.raises(MCPConnectionError, match="MCP server 'nobody' could not be started"):
            await MCPTools(
                registry,
                [MCPServerHTTP(f"http://127.0.0.1:{free_port()}/mcp", name="nobody")],
                restart=RetryPolicy(connect_timeout=5),
            ).connect()
        assert len(registry) == 0


async def test_headers_never_reach_the_logs(
    shared_http_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = "mcp-test-bearer-7f3a9c1d2e"
    server = MCPServerHTTP(
        shared_http_url, headers={"Authorization": f"Bearer {token}"}, name="web"
    )
    assert token not in repr(server)
    registry = ToolRegistry()
    with caplog.at_level(logging.DEBUG):
        async with MCPTools(registry, [server]):
            assert (await registry.call("add", {"a": 1, "b": 1})).value == 2
            logging.getLogger("tests").debug("headers: %s", {"Authorization": f"Bearer {token}"})
    assert caplog.records, "nothing was logged: the check would prove nothing"
    assert token not in caplog.text


def test_missing_mcp_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)
    with pytest.raises(ImportError, match=r"pip install 'vision-agents\[mcp\]'"):
        MCPTools(ToolRegistry(), [stdio_server()])


# -- the example ------------------------------------------------------------------------


async def test_mcp_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "mcp_example", ROOT / "examples/mcp_tools/main.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = await module.main()
    out = capsys.readouterr().out
    assert "tools from MCP: ['weather_forecast']" in out
    assert [r.ok for r in results] == [True, False]
    assert results[0].value == "snow, -3 C"
    assert "MCP server 'weather' tool 'forecast' failed" in (results[1].error or "")
    assert "no forecast for 'Atlantis'" in (results[1].error or "")


async def test_agent_owns_its_mcp_servers() -> None:
    model = FakeRealtime()
    agent = Agent(edge=InMemoryEdge(), llm=model, mcp_servers=[stdio_server("local")])
    assert agent.mcp is not None and len(model.tools) == 0
    async with agent.join(await agent.create_call("default", "mcp")):
        assert model.tools.names == ["add", "echo", "pid", "slow", "fail"]
        model.call_tool("c1", "pid", {})
        await wait_until(lambda: len(model.tool_results) == 1, 10, "the tool result")
        pid = model.tool_results[0].value
        assert isinstance(pid, int) and not is_gone(pid)
    assert len(model.tools) == 0
    assert agent.mcp.status()["local"]["state"] == "closed"
    await wait_until(lambda: is_gone(pid), 10, "the server process to be stopped with the agent")
