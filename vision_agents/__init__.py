"""Vision Agents: realtime multimodal agents that watch and listen to live video and talk back."""

from vision_agents.core.errors import VisionAgentsError

__version__ = "0.1.0"

__all__ = ["VisionAgentsError", "__version__"]
