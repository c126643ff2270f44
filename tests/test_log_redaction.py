"""API keys never reach a log record: every logger at DEBUG, across a connect and a reconnect,
for both providers through their public constructors, and through `vision-agents demo -v`.

Only public API is used (constructors, ``connect``/``close``, the local servers), so these tests
hold whatever the plugins' internals look like.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from vision_agents.core.redaction import REDACTED, redact, register_secret
from vision_agents.plugins import gemini
from vision_agents.plugins import openai as openai_plugin
from vision_agents.testing import GeminiLiveServer, OpenAIRealtimeServer

ROOT = Path(__file__).resolve().parents[1]
# Recognisable, and deliberately not shaped like a real key: only the header, bearer and
# registered-value rules can catch it, not the key-shape patterns.
FAKE_KEY = "q7zp3w9x-fake-api-key-for-redaction"

pytestmark = pytest.mark.timeout(90)


class Everything(logging.Handler):
    """Every record from every logger, formatted with its exception, as a handler would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []
        self.names: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.names.add(record.name)


@pytest.fixture
def all_logs() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    old_level = root.level
    # Loggers set to a level of their own would hide records: open them all up.
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    for name in levels:
        logging.getLogger(name).setLevel(logging.NOTSET)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def assert_no_key(text: str, key: str = FAKE_KEY) -> None:
    where = text.find(key)
    assert where < 0, f"the key is in the logs: ...{text[max(0, where - 200) : where + 50]}..."


def test_redact_rules() -> None:
    cases = {
        "> Authorization: Bearer abc.def-ghi": "Bearer abc",
        "> x-goog-api-key: zzzzzzzzzzzz": "zzzz",
        "{'api-key': 'k-1234567890'}": "k-1234567890",
        "(b'x-goog-api-key', b'k-1234567890')": "k-1234567890",
        "GET /v1beta/models?key=k-1234567890&alt=sse": "k-1234567890",
        "key AIzaSyA1234567890abcdefghijklmnopqrstu here": "AIzaSy",
        "openai sk-proj-abcdefghijklmnopqrstuv": "sk-proj",
        "ephemeral ek_abcdefghijklmnopqrstuvwx": "ek_abc",
        "xai xai-abcdefghijklmnopqrstuvwx": "xai-abc",
        "gemini auth_tokens/abc.def-123": "abc.def",
    }
    for text, secret in cases.items():
        clean = redact(text)
        assert secret not in clean and REDACTED in clean, (text, clean)
    assert redact("nothing secret: 1024 x 768 at 30 fps") == "nothing secret: 1024 x 768 at 30 fps"
    register_secret("a-registered-value-77")
    assert "a-registered-value-77" not in redact("it is a-registered-value-77!")


def test_records_exceptions_and_header_dumps(all_logs: Everything) -> None:
    log = logging.getLogger("tests.redaction")
    log.debug("calling with headers %s", {"Authorization": f"Bearer {FAKE_KEY}"})
    try:
        raise RuntimeError(f"upgrade refused for x-goog-api-key={FAKE_KEY}")
    except RuntimeError:
        log.exception("failed")
    ws = logging.getLogger("websockets.client")
    ws.debug("> %s: %s", "Authorization", f"Bearer {FAKE_KEY}")
    ws.debug("> %s: %s", "Host", "127.0.0.1")
    ws.debug("> GET %s HTTP/1.1", "/v1/realtime")
    text = "\n".join(all_logs.lines)
    assert_no_key(text)
    assert "calling with headers" in text and "RuntimeError" in text
    assert "Host" not in text, "websockets' per-header lines are dropped"
    assert "> GET /v1/realtime HTTP/1.1" in text


async def test_gemini_connect_and_reconnect_log_no_key(all_logs: Everything) -> None:
    async with GeminiLiveServer() as server:
        llm = gemini.Realtime(model="gemini-live-test", client=server.client(api_key=FAKE_KEY))
        await llm.connect()
        try:
            await server.wait_connected(1)
            await server.drop()
            await server.wait_connected(2, within=15)
        finally:
            await llm.close()
    text = "\n".join(all_logs.lines)
    # The capture works: the websockets client logged the handshakes at DEBUG.
    assert "websockets.client" in all_logs.names
    assert "GET /ws/" in text
    assert_no_key(text)


async def test_openai_connect_and_reconnect_log_no_key(all_logs: Everything) -> None:
    async with OpenAIRealtimeServer() as server:
        client = openai.AsyncOpenAI(api_key=FAKE_KEY, base_url=server.base_url)
        llm = openai_plugin.Realtime(client=client)
        await llm.connect()
        try:
            await server.wait_connections(1)
            await server.drop()
            await server.wait_connections(2, within=15)
        finally:
            await llm.close()
    text = "\n".join(all_logs.lines)
    assert "websockets.client" in all_logs.names
    assert "GET /v1/realtime" in text
    assert_no_key(text)


async def _run_demo_and_reconnect(
    env: dict[str, str], connected: object, drop: object, wait_second: object
) -> str:
    """Run `vision-agents demo -v` until it connected, dropped and reconnected; its output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vision_agents",
        "demo",
        "-v",
        "--no-browser",
        "--port",
        "0",
        "--duration",
        "60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    chunks: list[bytes] = []

    async def read() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            chunks.append(chunk)

    reader = asyncio.ensure_future(read())
    try:
        await connected()  # type: ignore[operator]
        await drop()  # type: ignore[operator]
        await wait_second()  # type: ignore[operator]
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await asyncio.wait_for(reader, 5)
    return b"".join(chunks).decode(errors="replace")


def _demo_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_API_KEY", "_BASE_URL")) and k != "SSL_CERT_FILE"
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


async def test_demo_cli_verbose_logs_no_key_openai() -> None:
    async with OpenAIRealtimeServer() as server:
        env = _demo_env(OPENAI_API_KEY=FAKE_KEY, OPENAI_BASE_URL=server.base_url)
        output = await _run_demo_and_reconnect(
            env,
            lambda: server.wait_connections(1, within=40),
            server.drop,
            lambda: server.wait_connections(2, within=15),
        )
    assert "using OpenAI Realtime" in output, output[-2000:]
    assert "DEBUG websockets.client" in output or "websockets.client" in output
    assert_no_key(output)


async def test_demo_cli_verbose_logs_no_key_gemini(tmp_path: Path) -> None:
    async with GeminiLiveServer() as server:
        ca = tmp_path / "ca.pem"
        ca.write_bytes(server.tls.ca_pem())
        env = _demo_env(
            GOOGLE_API_KEY=FAKE_KEY,
            GOOGLE_GEMINI_BASE_URL=server.base_url,
            SSL_CERT_FILE=str(ca),
        )
        output = await _run_demo_and_reconnect(
            env,
            lambda: server.wait_connected(1, within=40),
            server.drop,
            lambda: server.wait_connected(2, within=15),
        )
    assert "using Gemini Live" in output, output[-2000:]
    assert "websockets.client" in output
    assert_no_key(output)


async def test_key_is_not_in_reprs_or_a_refused_connects_exception() -> None:
    async with OpenAIRealtimeServer(api_key="the-right-key-1234") as server:
        llm = openai_plugin.Realtime(
            client=openai.AsyncOpenAI(api_key=FAKE_KEY, base_url=server.base_url)
        )
        assert_no_key(repr(llm))
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(llm.connect(), 15)
        await llm.close()
    assert "401" in str(info.value) or "invalid" in str(info.value).lower(), repr(info.value)
    assert_no_key("".join(traceback.format_exception(info.value)))
    async with GeminiLiveServer() as gserver:
        assert_no_key(repr(gemini.Realtime(model="m", client=gserver.client(api_key=FAKE_KEY))))
