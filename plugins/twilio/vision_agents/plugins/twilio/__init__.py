"""Phone calls through Twilio Media Streams: ``TwilioServer`` answers the number's webhook and
hands each call to your code as a ``PhoneCallEdge``, the edge an ``Agent`` joins.

    server = TwilioServer(public_url="https://agent.example.com", port=8080)

    @server.on_call
    async def answer(edge: PhoneCallEdge) -> None:
        agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=..., ...)
        async with agent.join(await agent.create_call("phone", edge.call_sid)):
            await agent.finish()  # until the caller hangs up

See docs/phone.md.
"""

from vision_agents.plugins.twilio.edge import PhoneCallEdge
from vision_agents.plugins.twilio.server import TwilioServer

__all__ = ["PhoneCallEdge", "TwilioServer"]
