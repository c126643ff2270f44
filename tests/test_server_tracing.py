"""Sessions as OpenTelemetry spans: the session manager with real worker processes, in this
process, with the SDK's in-memory exporter."""

from __future__ import annotations

import os

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.serve_kit import APP, ROOT, TOKEN
from vision_agents.server import ServerConfig, tracing
from vision_agents.server.metrics import ServerMetrics
from vision_agents.server.pool import WorkerPool
from vision_agents.server.sessions import SessionManager

pytestmark = pytest.mark.timeout(120)


async def test_each_session_is_a_span_with_its_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer_provider", provider)
    config = ServerConfig(factory=APP, api_token=TOKEN, prewarm=0)
    pool = WorkerPool(APP, "127.0.0.1", prewarm=0, ready_timeout_s=60)
    manager = SessionManager(config, pool, ServerMetrics())
    try:
        ok = await manager.create("traced", "default", {})
        assert ok.state == "running", ok.error
        await manager.stop(ok)
        bad = await manager.create("broken", "default", {"fault": "raise"})
        assert (bad.state, bad.reason) == ("failed", "factory_error")
        for session in (ok, bad):
            assert session.task is not None
            await session.task
    finally:
        await manager.close()
        await pool.close()
    spans = {s.attributes["call_id"]: s for s in exporter.get_finished_spans() if s.attributes}
    assert set(spans) == {"traced", "broken"}
    traced, broken = spans["traced"], spans["broken"]
    assert traced.name == "vision_agents.session"
    assert traced.attributes is not None and broken.attributes is not None
    assert traced.attributes["session_id"] == ok.session_id
    assert (traced.attributes["state"], traced.attributes["reason"]) == ("ended", "deleted")
    assert [e.name for e in traced.events] == ["worker", "started"]
    assert traced.status.status_code != StatusCode.ERROR
    assert (broken.attributes["state"], broken.attributes["reason"]) == ("failed", "factory_error")
    assert broken.status.status_code == StatusCode.ERROR
    assert "asked to fail" in (broken.status.description or "")
