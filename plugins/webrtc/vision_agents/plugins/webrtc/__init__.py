"""WebRTC call server embedded in the agent's process: browsers join with a signed link.

`WebRTCEdge` is the `EdgeTransport`; `CallServer` serves the page and signals; `JoinTokens`
mints and checks the links. Needs the `webrtc` extra (aiohttp).
"""

from vision_agents.plugins.webrtc.edge import WebRTCEdge
from vision_agents.plugins.webrtc.server import CallServer
from vision_agents.plugins.webrtc.tls import self_signed_pem, server_ssl_context
from vision_agents.plugins.webrtc.tokens import JoinClaims, JoinTokens, TokenError

__all__ = [
    "CallServer",
    "JoinClaims",
    "JoinTokens",
    "TokenError",
    "WebRTCEdge",
    "self_signed_pem",
    "server_ssl_context",
]
