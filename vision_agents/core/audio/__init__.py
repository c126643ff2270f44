"""Audio primitives: PcmData blocks and the streaming Resampler."""

from vision_agents.core.audio.pcm import AudioFormat, PcmData
from vision_agents.core.audio.resampler import Resampler

__all__ = ["AudioFormat", "PcmData", "Resampler"]
