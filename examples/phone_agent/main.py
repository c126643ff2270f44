"""An agent that answers phone calls to a Twilio number (Twilio Media Streams).

Offline voice (Silero VAD, Whisper, a local TTS and the rule-based responder): no model key.
With ``--simulate`` it also places a call itself, the way Twilio would, asks a question and
prints what the caller heard, so it runs with no Twilio account either:

    python examples/phone_agent/main.py --simulate

For a real number: run it where Twilio can reach it (``--public-url https://...``, e.g. behind
a reverse proxy or a tunnel), set TWILIO_AUTH_TOKEN, and set the number's "A call comes in"
webhook to the printed URL (HTTP POST). See docs/phone.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from vision_agents.core import Agent, User
from vision_agents.core.voice import OfflineResponder
from vision_agents.demo import offline_voice
from vision_agents.plugins.twilio import PhoneCallEdge, TwilioServer

SIMULATED_TOKEN = "simulated-auth-token"


def make_server(*, port: int, public_url: str | None, auth_token: str | None) -> TwilioServer:
    voice = offline_voice()
    server = TwilioServer(auth_token=auth_token, public_url=public_url, port=port)

    @server.on_call
    async def answer(edge: PhoneCallEdge) -> None:
        agent = Agent(
            edge=edge,
            agent_user=User(name="Phone agent"),
            instructions="Answer briefly.",
            llm=OfflineResponder(),
            vad=voice.vad,
            stt=voice.stt,
            tts=voice.tts,
        )
        async with agent.join(await agent.create_call("phone", edge.call_sid)):
            await agent.finish()  # until the caller hangs up

    return server


async def simulate(server: TwilioServer, question: str) -> str:
    """Call the server like Twilio, ask ``question``, return what the caller heard."""
    from vision_agents.testing import synthesize_speech
    from vision_agents.testing.phone import PhoneCaller

    voice = offline_voice()
    async with PhoneCaller(server.voice_url, auth_token=SIMULATED_TOKEN) as call:
        asked_at = await call.ask(synthesize_speech(question))
        # What a caller hears is only the agent (a phone plays no sidetone here).
        answer = await call.wait_for_answer(asked_at)
        await voice.stt.start()
        try:
            return await voice.stt.transcribe(answer)
        finally:
            await voice.stt.close()


async def main(
    *,
    port: int = 8080,
    public_url: str | None = None,
    simulated_question: str | None = None,
) -> str | None:
    token = SIMULATED_TOKEN if simulated_question else os.environ.get("TWILIO_AUTH_TOKEN")
    server = make_server(port=port, public_url=public_url, auth_token=token)
    async with server:
        print(f"Voice webhook (HTTP POST): {server.voice_url}")
        if simulated_question is not None:
            heard = await simulate(server, simulated_question)
            print(f"caller heard: {heard}")
            return heard
        await asyncio.Event().wait()  # until Ctrl-C
    return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--public-url", help="the https:// address Twilio reaches this server at")
    parser.add_argument("--simulate", action="store_true", help="place a simulated call")
    args = parser.parse_args()
    question = "What can you do?" if args.simulate else None
    try:
        asyncio.run(main(port=args.port, public_url=args.public_url, simulated_question=question))
    except KeyboardInterrupt:
        pass
