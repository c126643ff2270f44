"""Short-lived client secrets, so a web page can talk to OpenAI directly with the agent's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vision_agents.plugins.openai.realtime import Realtime


@dataclass(frozen=True)
class ClientSecret:
    value: str
    expires_at: int
    session: dict[str, Any]


async def create_client_secret(llm: Realtime, *, expires_in: int = 600) -> ClientSecret:
    """Mint an ephemeral key carrying ``llm``'s session (model, instructions, voice, tools).

    Give ``value`` to the browser; it connects with it as its bearer key. The real API key
    never leaves the server.
    """
    client = await llm._client_for_connect()
    session = llm.settings().to_session()
    response = await client.realtime.client_secrets.create(
        session=session,  # type: ignore[arg-type]
        expires_after={"anchor": "created_at", "seconds": expires_in},
    )
    data = response.model_dump(mode="json", exclude_none=True)
    return ClientSecret(
        value=response.value, expires_at=response.expires_at, session=data["session"]
    )
