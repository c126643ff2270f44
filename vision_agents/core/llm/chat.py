"""`ChatLLM`: a text chat model that streams its reply, for the voice pipeline (STT -> LLM -> TTS).

Providers implement ``_generate`` (one user turn -> text deltas, running tools through the
registry as the model asks); the base keeps the history, builds the system prompt from the
instructions and what the processors know, keeps the latest video frame for vision models,
and publishes ``RealtimeResponseEvent`` deltas and the complete reply.
"""

from __future__ import annotations

import json
import uuid
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import av

from vision_agents.core.llm.events import RealtimeResponseEvent
from vision_agents.core.llm.llm import LLM
from vision_agents.core.types import Participant
from vision_agents.core.utils.video import encode_jpeg


@dataclass
class ChatMessage:
    """One turn of the conversation, provider-neutral."""

    role: Literal["user", "assistant"]
    text: str


@dataclass
class ChatRequest:
    """What a provider gets for one turn: the system prompt, the history ending with the
    user's new message, and the latest camera still (JPEG) when video is attached."""

    system: str
    messages: list[ChatMessage]
    image_jpeg: bytes | None


class ChatLLM(LLM):
    """A chat model whose reply streams as text.

    ``attach_video``: send the newest frame (``set_latest_frame``) with each user turn;
    ``max_history``: messages kept; ``max_tool_rounds``: tool calls the model may chain in one
    turn before it must answer.
    """

    provider_name: ClassVar[str] = "chat_llm"

    def __init__(
        self,
        *,
        attach_video: bool = True,
        max_history: int = 40,
        max_tool_rounds: int = 5,
        tool_timeout: float | None = 30.0,
        max_image_side: int = 768,
    ) -> None:
        super().__init__(tool_timeout=tool_timeout)
        if max_history < 2:
            raise ValueError(f"max_history must be at least 2 messages, got {max_history!r}")
        if max_tool_rounds < 0:
            raise ValueError(f"max_tool_rounds must be >= 0, got {max_tool_rounds!r}")
        if max_image_side < 16:
            raise ValueError(f"max_image_side must be at least 16 pixels, got {max_image_side!r}")
        self.attach_video = attach_video
        self.max_history = max_history
        self.max_tool_rounds = max_tool_rounds
        self.max_image_side = max_image_side
        self.history: list[ChatMessage] = []
        self.context: Callable[[], dict[str, Any]] | None = None
        """Returns what the processors know now; added to the system prompt of each turn."""
        self.latest_frame: av.VideoFrame | None = None

    def set_latest_frame(self, frame: av.VideoFrame) -> None:
        self.latest_frame = frame

    @abstractmethod
    def _generate(self, request: ChatRequest) -> AsyncIterator[str]:
        """Stream the reply to ``request`` as text deltas, running tools the model calls."""

    async def stream_response(
        self, text: str, participant: Participant | None = None
    ) -> AsyncIterator[str]:
        """Answer ``text``: yields text deltas; the reply (even a cut one) joins the history."""
        request = self._request(text)
        self.history.append(ChatMessage("user", text))
        response_id = uuid.uuid4().hex
        said: list[str] = []
        try:
            async for delta in self._generate(request):
                if not delta:
                    continue
                said.append(delta)
                self._emit(
                    RealtimeResponseEvent(text=delta, response_id=response_id, is_complete=False)
                )
                yield delta
        finally:
            reply = "".join(said).strip()
            if reply:
                self.history.append(ChatMessage("assistant", reply))
                self._emit(RealtimeResponseEvent(text=reply, response_id=response_id))
            del self.history[: -self.max_history]

    async def simple_response(self, text: str, participant: Participant | None = None) -> None:
        """Answer ``text``; the reply arrives as ``RealtimeResponseEvent``s."""
        async for _ in self.stream_response(text, participant):
            pass

    def system_prompt(self) -> str:
        prompt = self.instructions
        state = self.context() if self.context is not None else {}
        if state:
            known = json.dumps(state, default=str, ensure_ascii=False)
            prompt += f"\n\nWhat the agent's processors know right now (JSON): {known}"
        return prompt.strip()

    def _request(self, text: str) -> ChatRequest:
        image = None
        if self.attach_video and self.latest_frame is not None:
            image = encode_jpeg(self.latest_frame, max_side=self.max_image_side)
        return ChatRequest(
            system=self.system_prompt(),
            messages=[*self.history, ChatMessage("user", text)],
            image_jpeg=image,
        )
