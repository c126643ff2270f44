"""OpenAI Realtime plugin: ``vision_agents.plugins.openai.Realtime``."""

from vision_agents.plugins.openai.client_secrets import ClientSecret, create_client_secret
from vision_agents.plugins.openai.realtime import Realtime

__all__ = ["ClientSecret", "Realtime", "create_client_secret"]
