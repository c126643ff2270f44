"""Run the local Gemini Live, OpenAI Realtime and xAI Grok voice protocol servers for programs
that read their endpoints from the environment (the examples, your own agent): no key, no
network.

    python -m vision_agents.testing.serve --ca-file /tmp/local-ca.pem

prints ``NAME=value`` lines to export (``GOOGLE_GEMINI_BASE_URL`` and ``SSL_CERT_FILE`` for the
google-genai SDK, ``OPENAI_BASE_URL`` for the openai SDK, ``XAI_BASE_URL`` for the xAI example,
placeholder API keys), then ``ready``, and serves until interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from vision_agents.core.audio import PcmData
from vision_agents.testing.gemini_server import GeminiLiveServer
from vision_agents.testing.media import tone
from vision_agents.testing.openai_server import OpenAIRealtimeServer, Responder, ScriptedReply
from vision_agents.testing.xai_server import XAIRealtimeServer


def _gemini_reply(text: str) -> tuple[str, PcmData | None]:
    return f"Local Gemini Live server here; you said: {text}", tone(660, 0.4, sample_rate=24000)


def _spoken_reply(text: str) -> Responder:
    audio = tone(660, 0.4, sample_rate=24000).to_int16().to_bytes()
    return lambda _event: ScriptedReply(transcript=text, audio=audio)


async def serve(ca_file: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with (
        GeminiLiveServer(responder=_gemini_reply) as gemini,
        OpenAIRealtimeServer() as openai,
        XAIRealtimeServer() as xai,
    ):
        openai.responder = _spoken_reply("Local OpenAI Realtime server here.")
        xai.responder = _spoken_reply("Local xAI Grok voice server here.")
        await asyncio.to_thread(ca_file.write_bytes, gemini.tls.ca_pem())
        for name, value in (
            ("GOOGLE_GEMINI_BASE_URL", gemini.base_url),
            ("SSL_CERT_FILE", str(ca_file)),
            ("GOOGLE_API_KEY", "local-test-key"),
            ("OPENAI_BASE_URL", openai.base_url),
            ("OPENAI_API_KEY", "local-test-key"),
            ("XAI_BASE_URL", xai.base_url),
            ("XAI_API_KEY", "local-test-key"),
        ):
            print(f"{name}={value}")
        print("ready", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vision_agents.testing.serve")
    parser.add_argument(
        "--ca-file",
        type=Path,
        required=True,
        help="where to write the throwaway CA that the Gemini server's certificate chains to",
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(args.ca_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
