"""A listener-style realtime model: ``add_listener``, ``send_event``, connection options.

For code written against models shaped like the OpenAI Agents SDK's ``RealtimeModel``. A thin
layer over one provider ``Realtime``: listeners get our typed events, in order, and each
outgoing event is one call on the provider's own implementation.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, TypedDict

from vision_agents.clients._common import ApiKey, apply_settings, build_realtime
from vision_agents.core.audio import PcmData
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.llm.realtime import Realtime

logger = logging.getLogger(__name__)


class RealtimeModelListener(ABC):
    """Receives every event of the session."""

    @abstractmethod
    async def on_event(self, event: BaseEvent) -> None:
        """One typed event (``vision_agents.core.llm.events``); a raise is logged, not fatal."""


class RealtimeModelConfig(TypedDict, total=False):
    """Options for ``RealtimeModel.connect``."""

    api_key: ApiKey
    """A key, or a sync/async function called at each connect and reconnect (rotating keys).
    Unset: the provider's environment variable."""
    url: str
    """The provider's base URL instead of its default."""
    initial_model_settings: dict[str, Any]
    """``instructions``, ``tools`` (function schemas, answered with ``SendToolOutput``) and
    provider options (``voice``, ``turn_detection``, ...), applied before the session opens."""


@dataclass(frozen=True)
class SendUserInput:
    """A user text turn."""

    text: str


@dataclass(frozen=True)
class SendAudio:
    """User audio: a ``PcmData``, or raw PCM16 mono at ``sample_rate``."""

    audio: PcmData | bytes
    sample_rate: int = 24000
    commit: bool = False
    """End the user's turn after it (providers with client-side turns)."""


@dataclass(frozen=True)
class SendToolOutput:
    """The output of a call of a declared tool."""

    call_id: str
    output: Any


@dataclass(frozen=True)
class SendInterrupt:
    """Stop the reply being spoken."""


@dataclass(frozen=True)
class SendSessionUpdate:
    """New settings: ``instructions``, ``tools``, provider options."""

    settings: dict[str, Any] = field(default_factory=dict)


SendEvent = SendUserInput | SendAudio | SendToolOutput | SendInterrupt | SendSessionUpdate


class RealtimeModel:
    """One provider session ("gemini", "openai" or "xai") with listeners.

    ``provider_options`` go to the provider's ``Realtime`` (for example ``client=...``).
    """

    def __init__(self, provider: str, *, model: str | None = None, **provider_options: Any) -> None:
        self.provider = provider
        self.model = model
        self.provider_options = provider_options
        self.realtime: Realtime | None = None
        self._listeners: list[RealtimeModelListener] = []

    def add_listener(self, listener: RealtimeModelListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, listener: RealtimeModelListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def connect(self, options: RealtimeModelConfig | None = None) -> None:
        """Build the provider session from ``options`` and open it."""
        if self.realtime is not None:
            raise RuntimeError(f"{self.provider}: already connected; close() first")
        options = options or {}
        realtime = build_realtime(
            self.provider,
            model=self.model,
            api_key=options.get("api_key"),
            url=options.get("url"),
            **self.provider_options,
        )
        await apply_settings(realtime, options.get("initial_model_settings") or {})
        realtime.events.subscribe(self._deliver)
        self.realtime = realtime
        try:
            await realtime.connect()
        except BaseException:
            self.realtime = None
            await realtime.close()
            realtime.events.unsubscribe(self._deliver)
            raise

    async def _deliver(self, event: BaseEvent) -> None:
        for listener in list(self._listeners):
            try:
                await listener.on_event(event)
            except Exception:
                logger.exception(
                    "%s: listener %r failed on %s", self.provider, listener, event.type
                )

    def _live(self) -> Realtime:
        if self.realtime is None:
            raise RuntimeError(f"{self.provider}: not connected; call connect() first")
        return self.realtime

    async def send_event(self, event: SendEvent) -> None:
        """Send one typed outgoing event."""
        realtime = self._live()
        if isinstance(event, SendUserInput):
            await realtime.simple_response(event.text)
        elif isinstance(event, SendAudio):
            pcm = event.audio
            if not isinstance(pcm, PcmData):
                pcm = PcmData.from_bytes(pcm, event.sample_rate, 1, "s16")
            await realtime.simple_audio_response(pcm)
            if event.commit:
                await realtime.commit_audio()
        elif isinstance(event, SendToolOutput):
            await realtime.send_tool_output(event.call_id, event.output)
        elif isinstance(event, SendInterrupt):
            await realtime.interrupt()
        elif isinstance(event, SendSessionUpdate):
            await apply_settings(realtime, event.settings)
        else:
            raise TypeError(
                f"cannot send {event!r}; accepted: SendUserInput, SendAudio, SendToolOutput, "
                "SendInterrupt, SendSessionUpdate"
            )

    async def close(self) -> None:
        """Close the session; listeners get every event up to the disconnect."""
        realtime, self.realtime = self.realtime, None
        if realtime is None:
            return
        await realtime.close()
        await realtime.events.wait(timeout=5.0)
        realtime.events.unsubscribe(self._deliver)


__all__ = [
    "RealtimeModel",
    "RealtimeModelConfig",
    "RealtimeModelListener",
    "SendAudio",
    "SendEvent",
    "SendInterrupt",
    "SendSessionUpdate",
    "SendToolOutput",
    "SendUserInput",
]
