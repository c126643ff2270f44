"""The Agent and the small parts it is made of."""

from vision_agents.core.agents.agent import Agent
from vision_agents.core.agents.audio_output import AudioOutputTrack
from vision_agents.core.agents.speak_up import SpeakUp, SpeakUpPolicy, SpeakUpRequestedEvent

__all__ = ["Agent", "AudioOutputTrack", "SpeakUp", "SpeakUpPolicy", "SpeakUpRequestedEvent"]
