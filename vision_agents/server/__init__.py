"""Agents as a service: `vision-agents serve MODULE:FACTORY` and its sessions API.

The server process answers HTTP (``api``), admits or refuses sessions (``sessions``) and runs
each session's agent in its own pre-warmed worker process (``pool``, ``worker``), so a session
that raises, blocks its loop or dies cannot stop the others. See docs/server.md.
"""

from vision_agents.server import tracing
from vision_agents.server.config import ServerConfig
from vision_agents.server.request import SessionRequest, load_factory
from vision_agents.server.serve import serve

__all__ = ["ServerConfig", "SessionRequest", "load_factory", "serve", "tracing"]
