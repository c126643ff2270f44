"""What a session's worker process costs before its session starts: forked or from scratch.

    python -m benchmarks.worker_cost                 # 6 idle workers each way
    python -m benchmarks.worker_cost --workers 10 --app tests.server_app:create_agent

For each way (``WorkerPool(fork=True)``, the default of ``vision-agents serve``, and
``fork=False``, ``--no-fork-workers``), starts ``--workers`` idle workers one after the other
and reports, per worker: seconds until it said ready, CPU seconds it used to get there, and
its memory once ready: RSS (what ``ps`` shows, shared pages included), PSS (shared pages
divided among the processes sharing them) and USS (pages only it has). The fork server's
own process is counted once, spread over the workers in the "with the fork server" row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

import psutil

from vision_agents.server.pool import WorkerPool, WorkerProcess

DEFAULT_APP = "tests.server_app:create_agent"


def memory(pid: int) -> tuple[float, float, float]:
    """RSS, PSS and USS of ``pid`` in MB."""
    info = psutil.Process(pid).memory_full_info()
    return info.rss / 1e6, info.pss / 1e6, info.uss / 1e6


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def measure(app: str, workers: int, fork: bool) -> dict[str, list[float]]:
    pool = WorkerPool(app, "127.0.0.1", prewarm=0, ready_timeout_s=120, fork=fork)
    out: dict[str, list[float]] = {"ready_s": [], "cpu_s": [], "rss": [], "pss": [], "uss": []}
    held: list[WorkerProcess] = []
    try:
        for _ in range(workers):
            began = time.monotonic()
            worker = await pool.acquire(120)
            out["ready_s"].append(time.monotonic() - began)
            out["cpu_s"].append(cpu_s(worker.pid))
            held.append(worker)
        await asyncio.sleep(0.5)  # let the last ones settle (lazy pages, GC)
        for worker in held:
            rss, pss, uss = memory(worker.pid)
            out["rss"].append(rss)
            out["pss"].append(pss)
            out["uss"].append(uss)
        if fork and pool._forks is not None and pool._forks.process is not None:
            _rss, pss, _uss = memory(pool._forks.process.pid)
            out["server_pss"] = [pss]
    finally:
        await asyncio.gather(*(w.stop(grace_s=5) for w in held))
        await pool.close()
    return out


async def main(app: str, workers: int) -> None:
    forked = await measure(app, workers, fork=True)
    scratch = await measure(app, workers, fork=False)
    print(f"{workers} idle workers each way, app {app}, one after the other")
    print()
    print("| worker | ready p50 | CPU to ready p50 | RSS p50 | PSS p50 | USS p50 |")
    print("|---|---|---|---|---|---|")
    for name, row in (("forked", forked), ("from scratch", scratch)):
        print(
            f"| {name} | {statistics.median(row['ready_s']):.3f} s "
            f"| {statistics.median(row['cpu_s']):.3f} s "
            f"| {statistics.median(row['rss']):.0f} MB | {statistics.median(row['pss']):.0f} MB "
            f"| {statistics.median(row['uss']):.0f} MB |"
        )
    if "server_pss" in forked:
        each = statistics.median(forked["pss"]) + forked["server_pss"][0] / workers
        print(f"| forked, with the fork server's PSS spread over them | | | | {each:.0f} MB | |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--app", default=DEFAULT_APP)
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())  # the app module, from the repository root
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p
    )
    asyncio.run(main(args.app, args.workers))
