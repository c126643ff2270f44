"""A protocol-style realtime client: ``async with client.connect()``, ``read_events()``, ``send_*``.

For code written against clients shaped like AG2's ``RealtimeClientProtocol``. It is a thin
layer over one provider ``Realtime``: the events read are our typed events, and every call
goes to the provider's own implementation.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

from vision_agents.clients._common import apply_settings, build_realtime, detect_provider
from vision_agents.core.audio import PcmData
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.llm.realtime import Realtime, UnsupportedFeature

logger = logging.getLogger(__name__)

_CLOSED = object()


class RealtimeClient:
    """One provider session behind the protocol-style calls.

    Tool calls: tools declared with ``session_update({"tools": [...]})`` come out of
    ``read_events()`` as ``ToolCallStartedEvent`` (``call_id``, ``name``, ``arguments``) and are
    answered with ``send_function_result``; Python tools registered on ``realtime`` run by
    themselves.
    """

    def __init__(
        self,
        realtime: Realtime,
        *,
        input_rate: int = 24000,
        logger: logging.Logger | None = None,
    ) -> None:
        self.realtime = realtime
        self.input_rate = input_rate
        """Sample rate of raw PCM16 mono given to ``send_audio`` as bytes or base64."""
        self.logger = logger or globals()["logger"]
        self._queue: asyncio.Queue[Any] | None = None

    @property
    def provider_name(self) -> str:
        return self.realtime.provider_name

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        """Open the session for the ``async with`` block; close it cleanly after."""
        if self._queue is not None:
            raise RuntimeError(f"{self.provider_name}: this client is already connected")
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def forward(event: BaseEvent) -> None:
            queue.put_nowait(event)

        self._queue = queue
        self.realtime.events.subscribe(forward)
        try:
            await self.realtime.connect()
            self.logger.debug("%s: connected", self.provider_name)
            yield
        finally:
            try:
                await self.realtime.close()
                await self.realtime.events.wait(timeout=5.0)
            finally:
                self.realtime.events.unsubscribe(forward)
                queue.put_nowait(_CLOSED)
                self._queue = None

    async def read_events(self) -> AsyncIterator[BaseEvent]:
        """Our typed events, in order, until the session closes."""
        queue = self._queue
        if queue is None:
            raise RuntimeError(f"{self.provider_name}: read_events() needs `async with connect()`")
        while True:
            event = await queue.get()
            if event is _CLOSED:
                return
            yield event

    async def send_audio(self, audio: str | bytes | PcmData) -> None:
        """User audio: base64 or raw PCM16 mono at ``input_rate``, or a ``PcmData``."""
        if isinstance(audio, str):
            audio = base64.b64decode(audio)
        pcm = (
            audio
            if isinstance(audio, PcmData)
            else PcmData.from_bytes(audio, self.input_rate, 1, "s16")
        )
        await self.realtime.simple_audio_response(pcm)

    async def send_text(self, *, role: Literal["user", "assistant", "system"], text: str) -> None:
        """A user text turn. System text belongs in ``session_update({"instructions": ...})``."""
        if role == "user":
            await self.realtime.simple_response(text)
            return
        if role in ("system", "assistant"):
            raise UnsupportedFeature(
                self.provider_name,
                f"send_text(role={role!r})",
                "send user turns; set instructions with session_update({'instructions': ...})",
            )
        raise ValueError(f"role must be 'user', 'assistant' or 'system', got {role!r}")

    async def send_function_result(self, call_id: str, result: str) -> None:
        """Answer a call of a declared tool; returns once the result went to the provider."""
        await self.realtime.send_tool_output(call_id, result)

    async def session_update(self, session_options: Mapping[str, Any]) -> None:
        """``instructions``, ``tools`` (function schemas) and provider options (``voice``, ...)."""
        await apply_settings(self.realtime, session_options)

    async def truncate_audio(self, audio_end_ms: int, content_index: int, item_id: str) -> None:
        """Cut an assistant item's audio where playback stopped (providers with items)."""
        await self.realtime.truncate(item_id, audio_end_ms, content_index)

    @staticmethod
    def get_factory(
        llm_config: Mapping[str, Any], logger: logging.Logger | None = None, **kwargs: Any
    ) -> Callable[[], RealtimeClient] | None:
        return get_factory(llm_config, logger, **kwargs)


def get_factory(
    llm_config: Mapping[str, Any], logger: logging.Logger | None = None, **kwargs: Any
) -> Callable[[], RealtimeClient] | None:
    """A maker of clients for the first config (or ``config_list`` entry) we recognise, or None.

    The provider comes from ``api_type`` ("gemini"/"google", "openai", "xai"/"grok"), else the
    model name ("gemini-...", "gpt-...realtime...", "grok-..."). ``api_key``, ``base_url`` and
    ``model`` come from the config; ``kwargs`` go to the provider's ``Realtime``.
    """
    candidates = list(llm_config.get("config_list") or [llm_config])
    for config in candidates:
        provider = detect_provider(config)
        if provider is None:
            continue
        chosen = dict(config)

        def make(provider: str = provider, config: dict[str, Any] = chosen) -> RealtimeClient:
            realtime = build_realtime(
                provider,
                model=config.get("model"),
                api_key=config.get("api_key"),
                url=config.get("base_url"),
                **kwargs,
            )
            return RealtimeClient(realtime, logger=logger)

        return make
    return None


__all__ = ["RealtimeClient", "get_factory"]
