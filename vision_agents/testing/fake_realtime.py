"""`FakeRealtime`: a Realtime model double that records what it gets and answers from a script."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import av

from vision_agents.core.audio import PcmData
from vision_agents.core.llm.realtime import Realtime
from vision_agents.core.llm.tools import ToolResult
from vision_agents.core.types import Participant


@dataclass(frozen=True)
class ReceivedFrame:
    """A video frame as the model received it."""

    received_at: float  # time.monotonic()
    pts: int | None
    width: int
    height: int


Responder = Callable[[str], tuple[str, PcmData | None]]


class FakeRealtime(Realtime):
    """Behaves like a provider session without a network.

    It keeps every audio chunk, frame, text, reply request and tool result it receives. A
    text turn (and ``generate_reply``, given its instructions) is answered by
    ``responder(text) -> (reply_text, reply_audio)``: the reply audio is emitted in 20 ms
    chunks as ``RealtimeAudioOutputEvent``s, then the done event, like a provider.
    """

    provider_name: ClassVar[str] = "fake_realtime"

    def __init__(
        self,
        fps: float = 1,
        *,
        responder: Responder | None = None,
        keep_frames: int = 10,
        max_image_side: int | None = None,
    ) -> None:
        super().__init__(fps=fps)
        self.max_image_side = max_image_side
        """The side a provider would scale frames to (the agent asks edges for no more); the
        frames themselves are kept as they came."""
        self.responder = responder
        self.audio_chunks: list[PcmData] = []
        self.frames: list[ReceivedFrame] = []
        self.latest_frames: deque[av.VideoFrame] = deque(maxlen=keep_frames)
        """The newest frames themselves (timing of all of them is in ``frames``)."""
        self.texts: list[str] = []
        self.reply_requests: list[str | None] = []
        """The instructions of each ``generate_reply`` call, in order."""
        self.tool_results: list[ToolResult] = []
        self.connect_count = 0
        self._response_seq = 0

    @property
    def audio_received(self) -> float:
        """Seconds of user audio received."""
        return sum(c.duration for c in self.audio_chunks)

    async def connect(self) -> None:
        self.connect_count += 1
        self._emit_connected_event(session_config={"instructions": self.instructions})

    async def simple_audio_response(
        self, pcm: PcmData, participant: Participant | None = None
    ) -> None:
        self.audio_chunks.append(pcm)
        self._emit_audio_input_event(pcm)

    async def close(self) -> None:
        await self._close_base()
        if self._connected:
            self._emit_disconnected_event(reason="closed", was_clean=True)

    async def _send_text(self, text: str) -> None:
        self.texts.append(text)
        if self.responder is not None:
            reply_text, reply_audio = self.responder(text)
            self.respond(reply_text, reply_audio)

    def generate_reply(
        self, instructions: str | None = None, timeout: float = 30.0
    ) -> asyncio.Future[str]:
        """Record the request and answer it at once (``responder`` given the instructions)."""
        self.reply_requests.append(instructions)
        reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        text = ""
        if self.responder is not None:
            text, audio = self.responder(instructions or "")
            self.respond(text, audio)
        reply.set_result(text)
        return reply

    async def _send_video_frame(self, frame: av.VideoFrame) -> None:
        self.frames.append(ReceivedFrame(time.monotonic(), frame.pts, frame.width, frame.height))
        self.latest_frames.append(frame)

    async def _send_tool_result(self, result: ToolResult) -> None:
        self.tool_results.append(result)

    def respond(self, text: str, audio: PcmData | None = None) -> str:
        """Emit a whole reply now, as a provider would; returns its response id."""
        self._response_seq += 1
        response_id = f"resp_{self._response_seq}"
        if audio is not None:
            for chunk in audio.chunks(20):
                self._emit_audio_output_event(chunk, response_id=response_id)
        if text:
            self._emit_agent_speech_transcription(text)
            self._emit_response_event(text, response_id=response_id)
        self._emit_audio_output_done_event(response_id=response_id)
        return response_id

    def call_tool(self, call_id: str, name: str, arguments: dict[str, Any] | str) -> None:
        """Act as if the model asked for a tool."""
        self._start_tool_call(call_id, name, arguments)
