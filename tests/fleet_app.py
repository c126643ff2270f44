"""A session factory for the fleet tests: an agent on a Janus edge (calls outlive nodes), named
after its session so the call's participant list shows which session each agent serves.

The Janus server comes from the environment: VA_JANUS_URL, VA_JANUS_SECRET, VA_JANUS_ADMIN_KEY.
"""

from __future__ import annotations

import os

from vision_agents.core import Agent, User
from vision_agents.plugins.janus import JanusEdge
from vision_agents.server import SessionRequest
from vision_agents.testing import FakeRealtime


def create_agent(request: SessionRequest) -> Agent:
    edge = JanusEdge(
        os.environ["VA_JANUS_URL"],
        token_secret=os.environ["VA_JANUS_SECRET"],
        admin_key=os.environ["VA_JANUS_ADMIN_KEY"],
    )
    return Agent(
        edge=edge,
        agent_user=User(name=f"fleet agent {request.session_id}"),
        llm=FakeRealtime(fps=1),
    )
