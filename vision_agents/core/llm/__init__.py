"""LLM bases: text (`LLM`), multimodal (`OmniLLM`) and live speech-to-speech (`Realtime`)."""

from vision_agents.core.llm.llm import LLM, OmniLLM
from vision_agents.core.llm.realtime import Realtime
from vision_agents.core.llm.tools import ToolError, ToolRegistry, ToolResult, ToolSchema

__all__ = [
    "LLM",
    "OmniLLM",
    "Realtime",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSchema",
]
