"""The density benchmark's participants, in a process of their own.

One Python process cannot play many participants without becoming what is measured: at 12
aiortc peers (640x480 VP8 at 30 fps and Opus each way) its own event loop was 140 ms late at
p99, and it then sent frames late and heard the agents' audio late, which the benchmark
counted against the agents. ``benchmarks.density`` starts ``--peer-processes`` of these and
deals the participants out between them.

``python -m benchmarks.density_peers SECONDS`` encodes a camera timetable of SECONDS, prints
``{"ready": true}``, then takes one command a line on stdin and answers each with one JSON
line: ``join URL SEED`` (a participant joins), ``mark`` (the measured window starts),
``report`` (frames of the agents' audio lost and stalls per participant since ``mark``, this
process's loop lag samples and CPU seconds). When stdin closes, everyone leaves.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import psutil

from benchmarks.density import SPEECH, Participant
from benchmarks.density_media import EncodedSchedule
from vision_agents.server.usage import LoopLagProbe
from vision_agents.testing import synthesize_speech


async def main(seconds: float) -> None:
    speech = synthesize_speech(SPEECH)
    schedule = await asyncio.to_thread(EncodedSchedule, seconds)
    probe = LoopLagProbe()
    lag = asyncio.ensure_future(probe.run())
    participants: list[Participant] = []
    loop = asyncio.get_running_loop()
    marked = time.monotonic()
    process = psutil.Process()

    def say(message: dict[str, object]) -> None:
        print(json.dumps(message), flush=True)

    say({"ready": True})
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            words = line.split()
            if not words:
                continue
            if words[0] == "join":
                participants.append(
                    await Participant.join(words[1], int(words[2]), speech, schedule)
                )
                say({"joined": len(participants)})
            elif words[0] == "mark":
                marked = time.monotonic()
                probe.take()
                times = process.cpu_times()
                say({"cpu_s": times.user + times.system})
            elif words[0] == "report":
                now = time.monotonic()
                heard = [p.heard.window(marked, now) for p in participants]
                times = process.cpu_times()
                say(
                    {
                        "connected": sum(p.connected for p in participants),
                        "lost": sum(h[0] for h in heard),
                        "stalls": sum(h[1] for h in heard),
                        "lag_s": probe.take(),
                        "cpu_s": times.user + times.system,
                    }
                )
    finally:
        lag.cancel()
        await asyncio.gather(lag, return_exceptions=True)
        for participant in participants:
            await participant.leave()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1])))
