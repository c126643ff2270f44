"""The text LLM base (`LLM`) and the base for models that also take audio and video (`OmniLLM`)."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar, overload

from vision_agents.core.events.manager import EventManager
from vision_agents.core.llm.events import ToolCallCompletedEvent, ToolCallStartedEvent
from vision_agents.core.llm.tools import ToolRegistry, ToolResult
from vision_agents.core.types import Participant
from vision_agents.core.utils.tasks import TaskOwner

F = TypeVar("F", bound=Callable[..., Any])


class LLM(ABC):
    """A language model with instructions, tools and typed events.

    Subclasses set ``provider_name`` and implement ``simple_response``.
    """

    provider_name: ClassVar[str] = "llm"

    def __init__(self, *, tool_timeout: float | None = 30.0) -> None:
        self.session_id: str = str(uuid.uuid4())
        self.events = EventManager(name=f"{self.provider_name}.events")
        self.tools = ToolRegistry()
        self.instructions: str = ""
        self.tool_timeout = tool_timeout
        self._tasks = TaskOwner(self.provider_name)

    @abstractmethod
    async def simple_response(self, text: str, participant: Participant | None = None) -> None:
        """Send one user text turn to the model; replies arrive as events."""

    def set_instructions(self, instructions: str) -> None:
        """Set the system instructions used from the next session or turn on."""
        self.instructions = instructions

    @overload
    def register_function(self, func: F) -> F: ...

    @overload
    def register_function(
        self, func: None = None, *, name: str | None = None, description: str | None = None
    ) -> Callable[[F], F]: ...

    def register_function(
        self, func: F | None = None, *, name: str | None = None, description: str | None = None
    ) -> F | Callable[[F], F]:
        """Register a tool the model may call; its JSON schema comes from type hints and docstring."""
        if func is not None:
            return self.tools.register(func, name=name, description=description)
        return self.tools.register(name=name, description=description)

    async def _execute_tool(
        self, name: str, arguments: Mapping[str, Any] | str | None, call_id: str | None = None
    ) -> ToolResult:
        """Run one tool the model asked for, publishing start and completion events.

        Never raises for a failing tool: the error goes back to the model in the result.
        """
        self._emit(
            ToolCallStartedEvent(
                call_id=call_id,
                name=name,
                arguments=dict(arguments) if isinstance(arguments, Mapping) else arguments,
            )
        )
        result = await self.tools.call(name, arguments, call_id=call_id, timeout=self.tool_timeout)
        self._emit(ToolCallCompletedEvent.for_result(result))
        return result

    def _emit(self, event: Any) -> None:
        event.session_id = self.session_id
        event.plugin_name = self.provider_name
        self.events.send(event)


class OmniLLM(LLM, ABC):
    """An LLM that also accepts audio and video input."""

    provider_name: ClassVar[str] = "omni_llm"
