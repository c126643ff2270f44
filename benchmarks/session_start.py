"""Session start time through `vision-agents serve`: pre-warmed worker processes vs cold
ones (``--prewarm 0``: the process starts and imports on request), side by side.

Each round: ``POST /sessions`` (timed until the 201, when the agent is in the call), then
``DELETE`` (timed until the 204, when it has left), then wait for the pool to refill.

    python -m benchmarks.session_start --rounds 5   # from the repository root
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from tests.serve_kit import EXAMPLE_APP, ServeProcess


async def _idle_workers(server: ServeProcess) -> float:
    return await server.metric("vision_agents_workers_idle")


async def measure(app: str, prewarm: int, rounds: int) -> tuple[list[float], list[float]]:
    server = await ServeProcess.start(app, "--prewarm", str(prewarm))
    starts, stops = [], []
    try:
        for i in range(rounds):
            deadline = time.monotonic() + 120
            while prewarm and await _idle_workers(server) < prewarm:  # refilled after a round
                if time.monotonic() > deadline:
                    raise RuntimeError("the pool did not refill")
                await asyncio.sleep(0.2)
            began = time.monotonic()
            created = await server.call("POST", "/sessions", json={"call_id": f"start-{i}"})
            starts.append(time.monotonic() - began)
            if created.status != 201:
                raise RuntimeError(f"refused: {created.body}")
            began = time.monotonic()
            await server.call("DELETE", f"/sessions/{created.body['session_id']}")
            stops.append(time.monotonic() - began)
    finally:
        await server.close()
    return starts, stops


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--app", default=EXAMPLE_APP)
    args = parser.parse_args()
    print(f"app: {args.app}, {args.rounds} rounds each\n")
    print("| workers | start p50 (s) | start max (s) | leave p50 (s) | leave max (s) |")
    print("|---|---|---|---|---|")
    for label, prewarm in (("pre-warmed (--prewarm 1)", 1), ("cold (--prewarm 0)", 0)):
        starts, stops = await measure(args.app, prewarm, args.rounds)
        print(
            f"| {label} | {statistics.median(starts):.2f} | {max(starts):.2f} | "
            f"{statistics.median(stops):.2f} | {max(stops):.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
