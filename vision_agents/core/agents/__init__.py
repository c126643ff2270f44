"""The Agent and the small parts it is made of."""

from vision_agents.core.agents.agent import Agent
from vision_agents.core.agents.audio_output import AudioOutputTrack

__all__ = ["Agent", "AudioOutputTrack"]
