"""OpenAI plugin: ``Realtime`` (speech to speech) and ``LLM`` (any OpenAI-compatible chat endpoint)."""

from vision_agents.plugins.openai.client_secrets import ClientSecret, create_client_secret
from vision_agents.plugins.openai.llm import LLM
from vision_agents.plugins.openai.realtime import Realtime

__all__ = ["LLM", "ClientSecret", "Realtime", "create_client_secret"]
