"""Gemini (``google-genai``): Live as ``gemini.Realtime(model=..., fps=1)``; chat as ``gemini.LLM()``."""

from vision_agents.plugins.gemini.llm import DEFAULT_CHAT_MODEL, LLM
from vision_agents.plugins.gemini.realtime import DEFAULT_MODEL, Realtime

__all__ = ["DEFAULT_CHAT_MODEL", "DEFAULT_MODEL", "LLM", "Realtime"]
