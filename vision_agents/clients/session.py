"""A session-style realtime model with the options LiveKit users rely on.

Retry policy, ``max_session_duration``, ``update_instructions`` / ``update_tools`` /
``update_options``, ``generate_reply`` (a future with a timeout), ``interrupt``, ``truncate``,
``commit_audio`` / ``clear_audio``. A thin layer over one provider ``Realtime``: each option
maps onto the provider's own setting, and what a provider cannot do raises
``UnsupportedFeature`` naming it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vision_agents.clients._common import ApiKey, build_realtime, update_options
from vision_agents.core.audio import PcmData
from vision_agents.core.events import EventManager
from vision_agents.core.llm.realtime import Realtime, UnsupportedFeature
from vision_agents.core.llm.runtime import RetryPolicy


@dataclass(frozen=True)
class ConnectOptions:
    """Reconnect policy: attempts after a drop, seconds between them, seconds per connect."""

    max_retry: int = 3
    retry_interval: float = 2.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.max_retry < 0 or self.retry_interval < 0 or self.timeout <= 0:
            raise ValueError(
                "ConnectOptions needs max_retry >= 0, retry_interval >= 0 and timeout > 0; "
                f"got {self}"
            )


class RealtimeSession:
    """One provider session ("gemini", "openai" or "xai"); ``async with`` opens and closes it.

    ``provider_options`` go to the provider's ``Realtime`` (``client=...``, ``voice=...``).
    """

    def __init__(
        self,
        provider: str,
        *,
        model: str | None = None,
        api_key: ApiKey | None = None,
        base_url: str | None = None,
        instructions: str | None = None,
        max_session_duration: float | None = None,
        conn_options: ConnectOptions | None = None,
        **provider_options: Any,
    ) -> None:
        self.conn_options = conn_options or ConnectOptions()
        options = dict(provider_options)
        retry = self.conn_options
        if provider == "gemini":
            if max_session_duration is not None:
                raise UnsupportedFeature(
                    "gemini_realtime",
                    "max_session_duration",
                    "the service announces its limit with goAway and the session resumes itself",
                )
        else:
            options.update(max_session_duration=max_session_duration)
        options.setdefault(
            "retry",
            RetryPolicy(
                max_retries=retry.max_retry,
                initial_delay=retry.retry_interval,
                max_delay=retry.retry_interval,
                connect_timeout=retry.timeout,
            ),
        )
        self.realtime: Realtime = build_realtime(
            provider, model=model, api_key=api_key, url=base_url, **options
        )
        if instructions is not None:
            self.realtime.set_instructions(instructions)
        self._surface_tools: list[str] = []

    @property
    def events(self) -> EventManager:
        """Subscribe to our typed events here (``@session.events.subscribe``)."""
        return self.realtime.events

    async def start(self) -> None:
        try:
            async with asyncio.timeout(self.conn_options.timeout):
                await self.realtime.connect()
        except TimeoutError:
            await self.realtime.close()
            raise TimeoutError(
                f"{self.realtime.provider_name}: not connected within {self.conn_options.timeout} s"
            ) from None

    async def aclose(self) -> None:
        await self.realtime.close()
        await self.realtime.events.wait(timeout=5.0)

    async def __aenter__(self) -> RealtimeSession:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def push_audio(self, pcm: PcmData) -> None:
        """User audio at any rate and channel count."""
        await self.realtime.simple_audio_response(pcm)

    async def send_text(self, text: str) -> None:
        await self.realtime.simple_response(text)

    async def update_instructions(self, instructions: str) -> None:
        await self.realtime.update_instructions(instructions)

    async def update_tools(self, tools: list[Callable[..., Any]]) -> None:
        """Replace the tools given here before with ``tools`` (Python functions, run for you)."""
        for name in self._surface_tools:
            if name in self.realtime.tools:
                self.realtime.tools.unregister(name)
        self._surface_tools = []
        for func in tools:
            self.realtime.register_function(func)
            self._surface_tools.append(self.realtime.tools.names[-1])
        await self.realtime.update_tools()

    async def update_options(self, **options: Any) -> None:
        """Provider options: ``voice``, ``turn_detection`` (OpenAI, xAI), ..."""
        await update_options(self.realtime, **options)

    def generate_reply(
        self, *, instructions: str | None = None, timeout: float = 30.0
    ) -> asyncio.Future[str]:
        """A reply now; the future gets its text, or ``TimeoutError`` after ``timeout`` s."""
        return self.realtime.generate_reply(instructions, timeout)

    async def interrupt(self) -> None:
        await self.realtime.interrupt()

    async def truncate(self, *, message_id: str, audio_end_ms: int, content_index: int = 0) -> None:
        await self.realtime.truncate(message_id, audio_end_ms, content_index)

    async def commit_audio(self) -> None:
        await self.realtime.commit_audio()

    async def clear_audio(self) -> None:
        await self.realtime.clear_audio()


__all__ = ["ConnectOptions", "RealtimeSession"]
