"""Client surfaces that users of other realtime SDKs know, each a thin layer over our providers.

- ``protocol``: ``RealtimeClient`` (``connect()``, ``read_events()``, ``send_*``) and ``get_factory``.
- ``listener``: ``RealtimeModel`` with ``add_listener`` and typed ``send_event``.
- ``session``: ``RealtimeSession`` with retry policy, session control and ``generate_reply``.
"""

from vision_agents.clients.listener import RealtimeModel, RealtimeModelConfig, RealtimeModelListener
from vision_agents.clients.protocol import RealtimeClient, get_factory
from vision_agents.clients.session import ConnectOptions, RealtimeSession
from vision_agents.core.llm.realtime import UnsupportedFeature

__all__ = [
    "ConnectOptions",
    "RealtimeClient",
    "RealtimeModel",
    "RealtimeModelConfig",
    "RealtimeModelListener",
    "RealtimeSession",
    "UnsupportedFeature",
    "get_factory",
]
