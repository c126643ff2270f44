"""Gemini Live (``google-genai``) as a ``Realtime`` model: ``gemini.Realtime(model=..., fps=1)``."""

from vision_agents.plugins.gemini.realtime import DEFAULT_MODEL, Realtime

__all__ = ["DEFAULT_MODEL", "Realtime"]
