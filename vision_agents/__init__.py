"""Vision Agents: realtime multimodal agents that watch and listen to live video and talk back.

Importing the package installs log redaction (``vision_agents.core.redaction``): API keys and
secret headers never reach a log record, from our code or from the libraries we drive.

Plugins are ``vision_agents.plugins.<name>``, a namespace package (PEP 420) whose portions are
separate source roots (``plugins/<name>/`` in the repository, one distribution each). Installed
from wheels they all land in this folder; from a checkout they stay in their own folders, so the
package's path is extended over every ``vision_agents`` folder on ``sys.path``.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

from vision_agents.core.errors import VisionAgentsError
from vision_agents.core.redaction import install as _install_redaction

__version__ = "0.1.0"

__all__ = ["VisionAgentsError", "__version__"]

_install_redaction()
