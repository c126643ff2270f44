"""Optional OpenTelemetry spans for sessions (extra ``vision-agents[otel]``).

With ``opentelemetry-api`` installed, each session is a ``vision_agents.session`` span in the
server process, from admission to its end (attributes: session and call ids, final state
and reason; events when a worker is assigned and when the agent is in the call; error
status when it failed).
Spans go wherever the application's tracer provider sends them; without the package, or
without a provider, they cost nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

try:
    from opentelemetry import trace
except ImportError:  # the extra is not installed
    trace = None  # type: ignore[assignment]

TRACER = "vision_agents.server"
tracer_provider: Any = None
"""The provider spans go to; None: OpenTelemetry's global one (``trace.set_tracer_provider``)."""


class Span:
    """A started span, or nothing when OpenTelemetry is absent."""

    def __init__(self, span: Any = None) -> None:
        self._span = span

    def set(self, **attributes: str | int | float | bool) -> None:
        if self._span is not None:
            self._span.set_attributes(attributes)

    def event(self, name: str, **attributes: str | int | float | bool) -> None:
        if self._span is not None:
            self._span.add_event(name, attributes)

    def error(self, message: str) -> None:
        if self._span is not None and trace is not None:
            self._span.set_status(trace.Status(trace.StatusCode.ERROR, message))


@contextlib.contextmanager
def span(name: str, **attributes: str | int | float | bool) -> Iterator[Span]:
    """``with span("vision_agents.session", session_id=...) as s:`` (a no-op without OTel)."""
    if trace is None:
        yield Span()
        return
    tracer = trace.get_tracer(TRACER, tracer_provider=tracer_provider)
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield Span(current)
