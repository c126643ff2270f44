"""Faults injected into the local provider servers, one name per kind, for the fault tests.

Kinds: ``close`` (a clean close frame), ``error_1011`` (a server error close), ``go_away``
(Gemini's goAway with 1 s left; OpenAI's ``session_expired``, its equivalent), ``stalled_close``
(a close frame, then the server stops reading), ``model_stall`` (the model takes nothing for
2 s while pings are answered, then 1011) and ``blackhole`` (the proxy stops forwarding).
"""

from __future__ import annotations

from google import genai
from google.genai import types as genai_types

from vision_agents.testing import GeminiLiveServer, OpenAIRealtimeServer
from vision_agents.testing.fault_proxy import FaultProxy

MODEL_STALL_S = 2.0


def gemini_client(
    server: GeminiLiveServer, proxy: FaultProxy, *, vertexai: bool = False
) -> genai.Client:
    """The SDK's client reaching ``server`` through ``proxy`` (Vertex AI express mode or the
    Developer API)."""
    http = genai_types.HttpOptions(
        base_url=f"https://127.0.0.1:{proxy.port}",
        async_client_args={"ssl": server.tls.client_context()},
    )
    return genai.Client(vertexai=vertexai, api_key="local-test-key", http_options=http)


async def inject_gemini(server: GeminiLiveServer, proxy: FaultProxy, kind: str) -> None:
    if kind == "close":
        await server.close_connection(1000)
    elif kind == "error_1011":
        await server.close_connection(1011, "internal error")
    elif kind == "go_away":
        await server.send_go_away("1s")
    elif kind == "stalled_close":
        await server.stall_close(1000)
    elif kind == "model_stall":
        await server.stall_model(MODEL_STALL_S, 1011)
    elif kind == "blackhole":
        proxy.blackhole()
    else:
        raise ValueError(f"unknown fault kind {kind!r}")


async def inject_openai(server: OpenAIRealtimeServer, proxy: FaultProxy, kind: str) -> None:
    if kind == "close":
        await server.close_connection(1000)
    elif kind == "error_1011":
        await server.close_connection(1011, "server error")
    elif kind == "go_away":
        await server.expire_session()
    elif kind == "stalled_close":
        await server.stall_close(1000)
    elif kind == "model_stall":
        await server.stall_model(MODEL_STALL_S, 1011)
    elif kind == "blackhole":
        proxy.blackhole()
    else:
        raise ValueError(f"unknown fault kind {kind!r}")
