"""Vision Agents: realtime multimodal agents that watch and listen to live video and talk back."""

__version__ = "0.1.0"
