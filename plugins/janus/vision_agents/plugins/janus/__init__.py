"""An edge for the Janus SFU: the agent joins a Janus VideoRoom as a WebRTC participant.

`JanusEdge` is the `EdgeTransport`; `JanusProcess` runs Debian's `janus` with the minimal
config shipped in this package; `signed_token` makes the HMAC-signed, expiring tokens Janus
checks. Needs the `janus` extra (aiohttp) and, to run Janus here, `apt-get install janus`.
"""

from vision_agents.plugins.janus.client import (
    JanusClosed,
    JanusError,
    JanusHandle,
    JanusSession,
    signed_token,
)
from vision_agents.plugins.janus.edge import JanusEdge, room_number, room_pin
from vision_agents.plugins.janus.page import JanusPage
from vision_agents.plugins.janus.process import JanusProcess

__all__ = [
    "JanusClosed",
    "JanusEdge",
    "JanusError",
    "JanusHandle",
    "JanusPage",
    "JanusProcess",
    "JanusSession",
    "room_number",
    "room_pin",
    "signed_token",
]
