"""`vision-agents serve` as a subprocess, driven over HTTP: sessions, auth, limits, bodies,
isolation of a crashing session, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import numpy as np
import psutil
import pytest

from tests.browser.waiting import eventually
from tests.serve_kit import APP, EXAMPLE_APP, ROOT, TOKEN, Listener, ServeProcess
from vision_agents.server.schema import MAX_BODY_BYTES, MAX_METADATA_BYTES
from vision_agents.testing import OpenAIRealtimeServer, ScriptedReply, synthesize_speech, tone

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def servers() -> AsyncIterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    try:
        yield started
    finally:
        for server in started:
            await server.close()


async def serve(servers: list[ServeProcess], factory: str, *options: str) -> ServeProcess:
    server = await ServeProcess.start(factory, *options)
    servers.append(server)
    return server


async def session_state(server: ServeProcess, session_id: str) -> dict[str, object]:
    reply = await server.call("GET", f"/sessions/{session_id}")
    assert reply.status == 200, reply.body
    state: dict[str, object] = reply.body
    return state


async def test_example_app_session_joins_lists_and_leaves_on_delete(
    servers: list[ServeProcess],
) -> None:
    server = await serve(servers, EXAMPLE_APP, "-v")
    assert (await server.call("GET", "/health", token=None)).status == 200
    assert (await server.call("GET", "/ready", token=None)).status == 200

    created = await server.call("POST", "/sessions", json={"call_id": "support-1"})
    assert created.status == 201, created.body
    session_id = created.body["session_id"]
    assert created.body["call_id"] == "support-1"
    assert created.body["join_url"].startswith("http://127.0.0.1:")
    assert "/call/support-1#token=" in created.body["join_url"]
    assert await server.metric("vision_agents_sessions_active") == 1

    question = synthesize_speech("What do you see?")
    listener = await Listener.join(created.body["join_url"], speech=question)
    try:
        joined_at = time.monotonic()
        # It hears the agent (the offline agent greets and says what it sees) and sees it
        # (the detection processor's annotated copy of the participant's red camera).
        await eventually(lambda: listener.audio.loud_since(joined_at) >= 10, 60, "agent speech")
        await eventually(lambda: len(listener.video.arrivals) >= 5, 30, "agent video")
        r, g, b = listener.video.mean_rgb[-1]
        assert r > 120 and g < 80 and b < 80, listener.video.mean_rgb[-1]

        listed = await server.call("GET", "/sessions")
        assert [s["session_id"] for s in listed.body["sessions"]] == [session_id]
        await eventually(
            lambda: _participants(server, session_id, ["py"]), 10, "the participant listed"
        )
        state = await session_state(server, session_id)
        assert state["state"] == "running" and state["started_at"]
        # Where the start's time went, step by step, adding up to the whole.
        startup = state["startup"]
        assert isinstance(startup, dict)
        steps = ["worker", "build", "create_call", "model", "edge", "publish"]
        assert list(startup) == [*steps, "in_worker", "total"], startup
        assert all(startup[k] >= 0 for k in startup), startup
        inner = sum(startup[k] for k in steps[1:])
        assert abs(inner - startup["in_worker"]) < 0.05, startup
        assert startup["worker"] + startup["in_worker"] <= startup["total"] + 0.05, startup
        usage = state["usage"]
        assert isinstance(usage, dict) and usage["audio_in_s"] > 0 and usage["audio_out_s"] > 0
        assert await server.metric("vision_agents_audio_out_seconds_total") > 0
        # The spoken question was heard and answered: one turn's latency was measured.
        await eventually(
            lambda: _metric_at_least(server, "vision_agents_turn_latency_seconds_count", 1),
            60,
            "a turn latency",
        )

        asked = time.monotonic()
        deleted = await server.call("DELETE", f"/sessions/{session_id}")
        answered = time.monotonic() - asked
        assert deleted.status == 204
        assert answered < 1.0, f"DELETE took {answered:.2f} s"
        # The agent left: the call closed the participant's connection as the agent went.
        await eventually(lambda: listener.ws_closed_at is not None, 1.0, "the call to close")
        assert listener.ws_closed_at is not None and listener.ws_closed_at - asked < 1.0
    finally:
        await listener.leave()
    state = await session_state(server, session_id)
    assert (state["state"], state["reason"]) == ("ended", "deleted")
    assert await server.metric("vision_agents_sessions_active") == 0
    assert await server.metric('vision_agents_sessions_ended_total{reason="deleted"}') == 1
    assert (await server.call("DELETE", "/sessions/nope")).status == 404
    assert await server.terminate(within_s=20) == 0
    assert TOKEN not in server.output
    assert created.body["join_url"].split("#token=")[1] not in server.output


async def _metric_at_least(server: ServeProcess, name: str, value: float) -> bool:
    return await server.metric(name, default=0.0) >= value


async def _participants(server: ServeProcess, session_id: str, names: list[str]) -> bool:
    return (await session_state(server, session_id))["participants"] == names


async def test_auth_is_required_except_for_health_ready_and_metrics(
    servers: list[ServeProcess],
) -> None:
    server = await serve(servers, APP, "--prewarm", "0")
    for method, path in [
        ("POST", "/sessions"),
        ("GET", "/sessions"),
        ("GET", "/sessions/x"),
        ("DELETE", "/sessions/x"),
        ("GET", "/openapi.json"),
    ]:
        for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
            reply = await server.call(method, path, json={"call_id": "c"}, token=token)
            assert reply.status == 401, (method, path, token, reply.body)
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
            assert "Bearer" in reply.body["error"]
    for path in ("/health", "/ready", "/metrics"):
        assert (await server.call("GET", path, token=None)).status == 200
    assert await server.metric("vision_agents_sessions_active") == 0
    schema = await server.call("GET", "/openapi.json")
    assert schema.status == 200 and schema.body["openapi"].startswith("3.")
    assert set(schema.body["paths"]) >= {"/sessions", "/sessions/{session_id}", "/ready"}
    assert "call_id" in schema.body["components"]["schemas"]["CreateSession"]["properties"]
    assert (await server.call("GET", "/sessions")).body == {"sessions": []}


BAD_BODIES: list[tuple[object, str]] = [
    ({}, "call_id"),
    ({"call_id": ""}, "call_id"),
    ({"call_id": "../etc/passwd"}, "call_id"),
    ({"call_id": "x" * 65}, "call_id"),
    ({"call_id": 7}, "call_id"),
    ({"call_id": "c", "call_type": "a b"}, "call_type"),
    ({"call_id": "c", "metadata": []}, "metadata"),
    ({"call_id": "c", "metadata": {"k": "v" * MAX_METADATA_BYTES}}, "metadata"),
    ({"call_id": "c", "metadata": {str(i): i for i in range(40)}}, "metadata"),
    ({"call_id": "c", "agent": "x"}, "agent"),
    (["c"], "body"),
    ("c", "body"),
]


async def test_bad_bodies_are_refused_naming_the_field(servers: list[ServeProcess]) -> None:
    server = await serve(servers, APP, "--prewarm", "0")
    for body, field in BAD_BODIES:
        reply = await server.call("POST", "/sessions", json=body)
        assert reply.status == 422, (body, reply.body)
        assert reply.body["field"] == field and reply.body["error"].startswith(field), reply.body
    reply = await server.call("POST", "/sessions", data=b'{"call_id": ')
    assert reply.status == 422 and reply.body["field"] == "body"
    reply = await server.call("POST", "/sessions", data=b"x" * (MAX_BODY_BYTES + 1))
    assert reply.status == 413
    assert (await server.call("GET", "/sessions")).body == {"sessions": []}
    assert await server.metric("vision_agents_sessions_active") == 0


async def test_limits_per_node_per_call_duration_and_empty_call(
    servers: list[ServeProcess],
) -> None:
    server = await serve(
        servers,
        APP,
        "--max-sessions",
        "2",
        "--max-sessions-per-call",
        "1",
        "--empty-timeout",
        "4",
        "--max-duration",
        "9",
        "--prewarm",
        "2",
    )
    first = await server.call("POST", "/sessions", json={"call_id": "a"})
    assert first.status == 201, first.body
    same_call = await server.call("POST", "/sessions", json={"call_id": "a"})
    assert same_call.status == 409 and same_call.body["reason"] == "call_full"
    assert "call 'a'" in same_call.body["error"]
    # Nobody joins a: it leaves after the empty timeout.
    a = first.body["session_id"]
    await eventually(lambda: _state_is(server, a, "ended", "empty"), 10, "a to leave")
    state = await session_state(server, a)
    assert 3.5 <= state["usage"]["duration_s"] <= 8, state  # type: ignore[index]

    listeners: list[Listener] = []
    try:
        sessions = []
        for call_id in ("b", "c"):
            created = await server.call("POST", "/sessions", json={"call_id": call_id})
            assert created.status == 201, created.body
            sessions.append(created.body["session_id"])
            listeners.append(await Listener.join(created.body["join_url"]))
        full = await server.call("POST", "/sessions", json={"call_id": "d"})
        assert full.status == 503 and full.body["reason"] == "node_full"
        assert "capacity (2 sessions)" in full.body["error"] and full.headers["Retry-After"]
        ready = await server.call("GET", "/ready", token=None)
        assert ready.status == 503 and "capacity" in ready.body["reason"]
        assert await server.metric('vision_agents_sessions_refused_total{reason="node_full"}') == 1
        assert await server.metric('vision_agents_sessions_refused_total{reason="call_full"}') == 1
        # Occupied calls stay past the empty timeout, until the maximum duration.
        for session_id in sessions:
            await eventually(
                lambda s=session_id: _state_is(server, s, "ended", "max_duration"), 20, "the end"
            )
            state = await session_state(server, session_id)
            assert 8.5 <= state["usage"]["duration_s"] <= 13, state  # type: ignore[index]
        for listener in listeners:
            await eventually(lambda li=listener: li.ws_closed_at is not None, 2, "calls to close")
        assert (await server.call("GET", "/ready", token=None)).status == 200
    finally:
        for listener in listeners:
            await listener.leave()


async def _state_is(server: ServeProcess, session_id: str, state: str, reason: str) -> bool:
    now = await session_state(server, session_id)
    return (now["state"], now["reason"]) == (state, reason)


async def test_a_crashing_session_fails_while_another_keeps_streaming_audio(
    servers: list[ServeProcess],
) -> None:
    server = await serve(
        servers,
        APP,
        "--prewarm",
        "2",
        "--unresponsive-timeout",
        "2",
        "--max-session-memory",
        "800",
    )
    healthy = await server.call("POST", "/sessions", json={"call_id": "healthy"})
    assert healthy.status == 201, healthy.body
    listener = await Listener.join(healthy.body["join_url"])
    try:
        joined = time.monotonic()
        await eventually(lambda: listener.audio.loud_since(joined) >= 25, 60, "the tone")
        watch_from = time.monotonic()

        raised = await server.call(
            "POST", "/sessions", json={"call_id": "raises", "metadata": {"fault": "raise"}}
        )
        assert raised.status == 500 and raised.body["reason"] == "factory_error"
        assert "asked to fail" in raised.body["error"]

        killed = await server.call(
            "POST", "/sessions", json={"call_id": "dies", "metadata": {"fault": "kill"}}
        )
        assert killed.status == 201, killed.body
        blocked = await server.call(
            "POST", "/sessions", json={"call_id": "blocks", "metadata": {"fault": "block"}}
        )
        assert blocked.status == 201, blocked.body
        leaking = await server.call(
            "POST", "/sessions", json={"call_id": "leaks", "metadata": {"fault": "leak"}}
        )
        assert leaking.status == 201, leaking.body
        dies, blocks = killed.body["session_id"], blocked.body["session_id"]
        leaks = leaking.body["session_id"]
        await eventually(lambda: _state_is(server, dies, "failed", "worker_exited"), 10, "dies")
        await eventually(lambda: _state_is(server, blocks, "failed", "unresponsive"), 15, "blocks")
        await eventually(lambda: _state_is(server, leaks, "failed", "memory_limit"), 15, "leaks")
        assert "limit 800 MB" in str((await session_state(server, leaks))["error"])
        await asyncio.sleep(0)
        until = time.monotonic() + 1.0
        await eventually(
            lambda: time.monotonic() > until and bool(listener.audio.arrivals), 3, "more audio"
        )
        assert (await session_state(server, healthy.body["session_id"]))["state"] == "running"
    finally:
        await listener.leave()
    # The healthy session's audio went on, loud and gap-free, while the others failed.
    audio = listener.audio
    window = [i for i, t in enumerate(audio.arrivals) if t >= watch_from]
    assert len(window) > 50
    pts = [audio.pts[i] for i in window]
    steps = {b - a for a, b in itertools.pairwise(pts) if a is not None and b is not None}
    assert steps == {audio.samples[window[0]]}, f"audio timestamps jumped: {sorted(steps)[:5]}"
    quiet = [audio.rms[i] for i in window if audio.rms[i] < 1000]
    assert not quiet, f"{len(quiet)} quiet frames in the healthy session's tone"
    gaps = np.diff([audio.arrivals[i] for i in window])
    # The bound holds on a loaded 2-core machine too (other tests, other processes).
    # The stated bound: a busy 2-core machine with one session burning a core in a blocked
    # loop and another leaking memory gave pauses up to 0.59 s in a run (jitter buffer: 1 s).
    assert gaps.max() < 1.0, f"longest pause in the healthy session's audio: {gaps.max():.3f} s"
    assert await server.metric('vision_agents_sessions_failed_total{reason="worker_exited"}') == 1
    assert await server.metric('vision_agents_sessions_failed_total{reason="unresponsive"}') == 1
    assert await server.metric('vision_agents_sessions_failed_total{reason="factory_error"}') == 1
    assert await server.metric('vision_agents_sessions_failed_total{reason="memory_limit"}') == 1


async def test_new_sessions_are_refused_while_the_machine_is_overloaded(
    servers: list[ServeProcess],
) -> None:
    # A limit of 0.01% CPU: any machine running this test is "overloaded".
    server = await serve(servers, APP, "--prewarm", "0", "--max-cpu", "0.01")
    await eventually(lambda: _ready_says(server, "overloaded"), 10, "/ready to say overloaded")
    refused = await server.call("POST", "/sessions", json={"call_id": "x"})
    assert refused.status == 503 and refused.body["reason"] == "overloaded", refused.body
    assert "CPU at" in refused.body["error"]
    assert await server.metric("vision_agents_machine_cpu_percent") > 0


async def test_new_sessions_are_refused_while_a_running_session_s_loop_is_late(
    servers: list[ServeProcess],
) -> None:
    server = await serve(servers, APP, "--prewarm", "0", "--max-loop-lag", "50")
    busy = await server.call(
        "POST", "/sessions", json={"call_id": "busy", "metadata": {"fault": "lag", "after_s": 0}}
    )
    assert busy.status == 201, busy.body
    await eventually(lambda: _ready_says(server, "event loop"), 20, "/ready to say overloaded")
    refused = await server.call("POST", "/sessions", json={"call_id": "next"})
    assert refused.status == 503 and refused.body["reason"] == "overloaded", refused.body
    assert "event loop is" in refused.body["error"] and "limit 50 ms" in refused.body["error"]
    assert await server.metric('vision_agents_sessions_refused_total{reason="overloaded"}') == 1
    # Once the late session is gone, sessions are welcome again.
    deleted = await server.call("DELETE", f"/sessions/{busy.body['session_id']}")
    assert deleted.status == 204, deleted.body
    await eventually(lambda: _ready_is_ok(server), 20, "/ready to say ready")
    admitted = await server.call("POST", "/sessions", json={"call_id": "next"})
    assert admitted.status == 201, admitted.body


async def _ready_is_ok(server: ServeProcess) -> bool:
    reply = await server.call("GET", "/ready", token=None)
    return reply.status == 200


async def _ready_says(server: ServeProcess, words: str) -> bool:
    reply = await server.call("GET", "/ready", token=None)
    return reply.status == 503 and words in reply.body["reason"]


async def test_sigterm_drains_then_exits_zero(servers: list[ServeProcess]) -> None:
    server = await serve(servers, APP + "_async", "--drain-timeout", "2")  # an async factory
    created = await server.call("POST", "/sessions", json={"call_id": "draining"})
    assert created.status == 201, created.body
    listener = await Listener.join(created.body["join_url"])
    try:
        joined = time.monotonic()
        await eventually(lambda: listener.audio.loud_since(joined) >= 5, 60, "the tone")
        signalled = time.monotonic()
        # As systemd does by default: SIGTERM to every process of the service, workers too.
        for child in psutil.Process(server.process.pid).children(recursive=True):
            child.send_signal(signal.SIGTERM)
        server.process.send_signal(signal.SIGTERM)
        await eventually(lambda: _not_ready(server), 2, "/ready to refuse")
        refused = await server.call("POST", "/sessions", json={"call_id": "late"})
        assert refused.status == 503 and refused.body["reason"] == "draining"
        # The running session goes on until the drain deadline, then the agent leaves.
        state = await session_state(server, created.body["session_id"])
        assert state["state"] == "running"
        assert listener.ws_closed_at is None
        async with asyncio.timeout(20):
            code = await server.process.wait()
        assert code == 0
        await eventually(lambda: listener.ws_closed_at is not None, 2, "the call to close")
        assert listener.ws_closed_at is not None
        assert 1.5 < listener.ws_closed_at - signalled < 8
        assert listener.audio.loud_since(signalled + 1.0) > 0  # still heard while draining
    finally:
        await listener.leave()
    assert "drained" in server.output


async def _not_ready(server: ServeProcess) -> bool:
    reply = await server.call("GET", "/ready", token=None)
    return reply.status == 503 and reply.body["reason"] == "draining"


def _serve_cli(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VISION_AGENTS_API_TOKEN"}
    if token is not None:
        env["VISION_AGENTS_API_TOKEN"] = token
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "vision_agents", "serve", *args, "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_to_start_without_a_token_or_with_a_bad_factory() -> None:
    done = _serve_cli(APP, token=None)
    assert done.returncode == 2 and "VISION_AGENTS_API_TOKEN" in done.stderr
    done = _serve_cli(APP, token="short")
    assert done.returncode == 2 and "at least 16 characters" in done.stderr
    done = _serve_cli("no_colon_here")
    assert done.returncode == 2 and "MODULE:FUNCTION" in done.stderr
    done = _serve_cli(APP, "--max-sessions", "0")
    assert done.returncode == 2 and "max_sessions must be positive" in done.stderr
    done = _serve_cli("tests.server_app:no_such_factory")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cannot start a worker" in done.stdout
    assert "has no attribute 'no_such_factory'" in done.stdout  # the reason, in one line
    done = _serve_cli("tests.no_such_module:create_agent")
    assert done.returncode == 1 and "No module named 'tests.no_such_module'" in done.stdout
    assert "Traceback" in done.stderr  # the worker's, for the details


async def test_model_tokens_and_reconnects_reach_the_session_and_the_metrics(
    servers: list[ServeProcess],
) -> None:
    reply = tone(440, 0.5, sample_rate=24000).to_bytes()
    async with OpenAIRealtimeServer() as model:
        model.responder = lambda _event: ScriptedReply(transcript="Hello.", audio=reply)
        server = await serve(servers, "tests.server_app:create_openai_agent")
        created = await server.call(
            "POST",
            "/sessions",
            json={"call_id": "model", "metadata": {"model_url": model.base_url}},
        )
        assert created.status == 201, created.body
        session_id = created.body["session_id"]
        listener = await Listener.join(created.body["join_url"])
        try:
            await eventually(
                lambda: _metric_at_least(
                    server, 'vision_agents_model_tokens_total{kind="output_audio"}', 1
                ),
                30,
                "output tokens",
            )
            usage = (await session_state(server, session_id))["usage"]
            assert isinstance(usage, dict) and usage["tokens_output_audio"] > 0
            # The participant's camera reaches the model at the agent's fps, and is counted.
            await eventually(
                lambda: _metric_at_least(server, "vision_agents_model_frames_total", 2),
                30,
                "frames to the model counted",
            )
            usage = (await session_state(server, session_id))["usage"]
            assert isinstance(usage, dict) and usage["frames_to_model"] >= 2, usage
            # Their estimated image tokens, apart from the reported ones: the participant's
            # 320x240 camera at the plugin's default detail "low" is 85 tokens a frame
            # (OpenAI's vision rule), in the same snapshot as the frame count.
            assert usage["tokens_input_image_estimated"] == 85 * usage["frames_to_model"], usage
            estimated = await server.metric("vision_agents_model_image_tokens_estimated_total")
            assert estimated >= 170 and estimated % 85 == 0, estimated
            # Usually 0; a heavily loaded machine can make the plugin reconnect by itself.
            before = usage["reconnects"]
            assert await server.metric("vision_agents_model_reconnects_total") == before
            await model.drop()  # the connection breaks; the plugin reconnects
            await eventually(
                lambda: _metric_at_least(
                    server, "vision_agents_model_reconnects_total", before + 1
                ),
                30,
                "a reconnect counted",
            )
            usage = (await session_state(server, session_id))["usage"]
            assert isinstance(usage, dict) and usage["reconnects"] >= before + 1
        finally:
            await listener.leave()
