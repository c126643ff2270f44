"""Vision Agents: realtime multimodal agents that watch and listen to live video and talk back.

Importing the package installs log redaction (``vision_agents.core.redaction``): API keys and
secret headers never reach a log record, from our code or from the libraries we drive.
"""

from vision_agents.core.errors import VisionAgentsError
from vision_agents.core.redaction import install as _install_redaction

__version__ = "0.1.0"

__all__ = ["VisionAgentsError", "__version__"]

_install_redaction()
