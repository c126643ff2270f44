"""The density benchmark's model: the local OpenAI Realtime server in its own process,
replying with speech (paced a little faster than real time) to every ``response.create``
and reading the capture time out of every video frame it receives.

``python -m benchmarks.density_model`` prints ``{"port": P}``; then each stdin line
``report T0`` prints the frame ages (ms) of frames received since wall time ``T0``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from typing import Any

from benchmarks.density_media import age_ms, now_ms, read_stamp
from vision_agents.testing import synthesize_speech
from vision_agents.testing.openai_server import Connection, OpenAIRealtimeServer, ScriptedReply

SPEECH = "I can see you and I can hear you. Let me tell you what is in the picture right now."


class StampReadingServer(OpenAIRealtimeServer):
    def __init__(self) -> None:
        super().__init__()
        self.ages: list[tuple[float, int]] = []  # (wall time received, age in ms)
        reply = synthesize_speech(SPEECH).resample(24000, 1).to_bytes()
        self.responder = lambda _event: ScriptedReply(
            transcript=SPEECH, audio=reply, chunk_ms=100, pace=0.09
        )

    async def _handle(self, conn: Connection, raw: str) -> None:
        if '"input_image"' in raw:
            at = now_ms()
            stamp = _stamp_of(json.loads(raw))
            if stamp is not None:
                self.ages.append((time.time(), age_ms(stamp, at)))
        await super()._handle(conn, raw)


def _stamp_of(event: dict[str, Any]) -> int | None:
    for part in (event.get("item") or {}).get("content") or []:
        url = part.get("image_url") if isinstance(part, dict) else None
        if isinstance(url, str) and "," in url:
            return read_stamp(base64.b64decode(url.split(",", 1)[1]))
    return None


async def main() -> None:
    server = StampReadingServer()
    await server.start()
    print(json.dumps({"port": server.port}), flush=True)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.startswith("report "):
                since = float(line.split()[1])
                ages = [a for t, a in server.ages if t >= since]
                print(json.dumps({"ages_ms": ages}), flush=True)
    finally:
        await server.close()


if __name__ == "__main__":
    asyncio.run(main())
