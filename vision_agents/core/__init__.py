"""The core of Vision Agents: media primitives, events, LLM bases, edges, processors, Agent."""

from vision_agents.core.agents import Agent, SpeakUp
from vision_agents.core.audio import PcmData
from vision_agents.core.types import Participant, User

__all__ = ["Agent", "Participant", "PcmData", "SpeakUp", "User"]
