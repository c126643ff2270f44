"""The base class of every event the SDK publishes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar


def _new_event_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(kw_only=True)
class BaseEvent:
    """A typed event: a type name, when it happened, and which session and plugin sent it.

    Subclasses set ``type`` to a dotted name such as ``"realtime.audio.output"``.
    """

    type: ClassVar[str] = "base"

    event_id: str = field(default_factory=_new_event_id)
    timestamp: datetime = field(default_factory=_now)
    session_id: str | None = None
    plugin_name: str | None = None


@dataclass(kw_only=True)
class HandlerErrorEvent(BaseEvent):
    """A subscribed handler raised; the publisher and the other handlers carried on."""

    type: ClassVar[str] = "events.handler_error"

    handler_name: str
    event_type: str
    error: BaseException


@dataclass(kw_only=True)
class EventsDroppedEvent(BaseEvent):
    """A handler fell behind and its oldest queued events were dropped (see EventManager)."""

    type: ClassVar[str] = "events.dropped"

    handler_name: str
    dropped: int
