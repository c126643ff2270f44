"""Processors: video and audio consumers and publishers the agent runs beside the LLM."""

from vision_agents.core.processors.base import (
    AudioProcessor,
    AudioPublisher,
    Processor,
    VideoProcessor,
    VideoProcessorPublisher,
    VideoPublisher,
)

__all__ = [
    "AudioProcessor",
    "AudioPublisher",
    "Processor",
    "VideoProcessor",
    "VideoProcessorPublisher",
    "VideoPublisher",
]
