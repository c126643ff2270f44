"""What a session factory receives, and how `MODULE:FACTORY` is found."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vision_agents.core.agents.agent import Agent
from vision_agents.plugins.webrtc import CallServer, WebRTCEdge

Factory = Callable[["SessionRequest"], Agent | Awaitable[Agent]]


@dataclass(frozen=True)
class SessionRequest:
    """One ``POST /sessions``, as the factory sees it in its worker process.

    ``call_server`` is the worker's embedded call server, already started; ``edge()`` gives
    an edge on it, so the join link the API returns reaches the agent's call.
    """

    session_id: str
    call_id: str
    call_type: str
    metadata: dict[str, Any] = field(default_factory=dict)
    call_server: CallServer | None = None

    def edge(self, *, stats_interval_s: float | None = None) -> WebRTCEdge:
        """A ``WebRTCEdge`` on this worker's call server (a fresh server if there is none).

        ``stats_interval_s``: how often the edge reports each camera as received (its
        ``VideoReceiveStatsEvent``, which serve's ``/metrics`` shows); None: never."""
        if self.call_server is None:
            return WebRTCEdge(host="127.0.0.1", port=0, stats_interval_s=stats_interval_s)
        return WebRTCEdge(server=self.call_server, stats_interval_s=stats_interval_s)


def load_factory(spec: str) -> Factory:
    """Import ``MODULE:FUNCTION`` and return the function; errors name what is missing."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"factory must look like MODULE:FUNCTION, got {spec!r}")
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise TypeError(f"{spec} is not callable (a {type(target).__name__})")
    factory: Factory = target
    return factory


async def prewarm(spec: str) -> None:
    """Run the factory module's ``prewarm()`` if it has one (sync or async): a worker does
    this before it says it is ready, so slow set-up (models) is not paid by a request."""
    module = importlib.import_module(spec.partition(":")[0])
    hook = getattr(module, "prewarm", None)
    if hook is None:
        return
    if not callable(hook):
        raise TypeError(f"{module.__name__}.prewarm must be a function")
    done = hook()
    if inspect.isawaitable(done):
        await done


async def build_agent(factory: Factory, request: SessionRequest) -> Agent:
    """Call ``factory`` (sync or async) and check that it made an ``Agent``."""
    made = factory(request)
    agent = await made if inspect.isawaitable(made) else made
    if not isinstance(agent, Agent):
        raise TypeError(f"the session factory must return an Agent, got {type(agent).__name__}")
    return agent
