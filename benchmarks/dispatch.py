"""Fleet dispatch and failover: three `vision-agents serve` nodes on a real Redis, calls on Janus.

    python -m benchmarks.dispatch                      # 100 sessions, 10 kills
    python -m benchmarks.dispatch --sessions 30 --kills 3
    python -m benchmarks.dispatch --no-fork-workers    # each worker started from scratch

- Dispatch: ``POST /sessions`` to the nodes in turn, then ``DELETE`` once its agent is seen in
  the call (Janus's participant list, polled every 0.1 s), with at most ``--concurrent``
  sessions running. Two times per session: until the 201 (the API answers once the agent is in
  the call) and until the agent shows in the call's participant list.
- Where the start's time goes: each session's ``startup`` record (``GET /sessions/{id}``):
  dispatch to the node that runs it, a worker from its pool, building the agent, creating the
  call, connecting the model, joining the call on Janus, publishing.
- Failover: ``--kills`` times, ``kill -9`` the node holding the most sessions; for each of its
  sessions, the time until its agent (a new one, on another node) is in the call again. The
  node is then started again under the same name for the next round.

Needs root (a network namespace: Janus gathers no candidates on loopback), Debian's janus and
redis-server. Runs on loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from tests.browser.netns import LoopbackOnlyNamespace, add_inside_veth
from tests.fleet_kit import Caller, RedisProcess, RoomWatcher
from tests.serve_kit import ServeProcess
from vision_agents.plugins.janus import JanusProcess

APP = "tests.fleet_app:create_agent"
VETH = "va-dispatch0"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


FORK_OPTIONS: list[str] = []


async def start_node(name: str, redis: RedisProcess, janus: JanusProcess) -> ServeProcess:
    os.environ.update(
        VA_JANUS_URL=janus.url,
        VA_JANUS_SECRET=janus.token_secret,
        VA_JANUS_ADMIN_KEY=janus.admin_key,
    )
    return await ServeProcess.start(
        APP,
        "--redis", redis.url, "--node-id", name, "--empty-timeout", "600",
        "--max-sessions", "6", "--prewarm", "2", *FORK_OPTIONS,
    )  # fmt: skip


async def until(check: object, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {limit_s} s")
        await asyncio.sleep(0.05)


async def in_call(watcher: RoomWatcher, sid: str, call_id: str, since: float) -> float:
    """When ``sid``'s agent was first seen in ``call_id`` after ``since``."""

    async def there() -> bool:
        return sid in watcher.agents_in(call_id) and watcher.seen.get(sid, 0.0) > since

    await until(there, 60, f"agent {sid} in {call_id}")
    return watcher.seen[sid]


async def measure_dispatch(
    nodes: list[ServeProcess],
    watcher: RoomWatcher,
    calls: list[str],
    sessions: int,
    concurrent: int,
) -> tuple[list[float], list[float], list[dict[str, float]]]:
    answered: list[float] = []
    seen: list[float] = []
    phases: list[dict[str, float]] = []
    slots = asyncio.Semaphore(concurrent)
    free_calls = list(calls)

    async def one(i: int) -> None:
        async with slots:
            call_id = free_calls.pop()
            node = nodes[i % len(nodes)]
            asked = time.monotonic()
            reply = await node.call("POST", "/sessions", json={"call_id": call_id})
            if reply.status != 201:
                raise RuntimeError(f"POST /sessions: {reply.status} {reply.body}")
            answered.append(time.monotonic() - asked)
            sid = reply.body["session_id"]
            seen.append(await in_call(watcher, sid, call_id, asked) - asked)
            record = await node.call("GET", f"/sessions/{sid}")
            phases.append(dict(record.body.get("startup") or {}))
            await node.call("DELETE", f"/sessions/{sid}")

            async def gone() -> bool:
                return sid not in watcher.agents_in(call_id)

            await until(gone, 10, f"agent {sid} to leave")
            free_calls.append(call_id)
            if (i + 1) % 10 == 0:
                print(f"  {i + 1}/{sessions} sessions", flush=True)

    await asyncio.gather(*(one(i) for i in range(sessions)))
    return answered, seen, phases


async def measure_failover(
    nodes: dict[str, ServeProcess],
    redis: RedisProcess,
    janus: JanusProcess,
    watcher: RoomWatcher,
    calls: list[str],
    kills: int,
) -> list[float]:
    times: list[float] = []
    entry = next(iter(nodes))
    running: dict[str, tuple[str, str]] = {}  # sid -> (call, node)
    for call_id in calls[:6]:
        reply = await nodes[entry].call("POST", "/sessions", json={"call_id": call_id})
        assert reply.status == 201, reply.body
        running[reply.body["session_id"]] = (call_id, reply.body["node"])
    for round_ in range(kills):
        for name, node in nodes.items():  # survivors ready: pre-warmed workers in place

            async def warm(node: ServeProcess = node) -> bool:
                return await node.metric("vision_agents_workers_idle") >= 2

            await until(warm, 90, f"node {name}'s pre-warmed workers")
        counts = {n: sum(1 for _, owner in running.values() if owner == n) for n in nodes}
        victim = max(counts, key=lambda n: counts[n])
        moved = [sid for sid, (_, owner) in running.items() if owner == victim]
        killed_at = time.monotonic()
        nodes[victim].process.send_signal(signal.SIGKILL)
        for sid in moved:  # the old agent leaves (its worker sees the pipe close), a new one comes

            async def returned(sid: str = sid, killed_at: float = killed_at) -> bool:
                return watcher.back.get(sid, 0.0) > killed_at

            await until(returned, 60, f"session {sid}'s agent back")
            times.append(watcher.back[sid] - killed_at)
        survivor = next(n for n in nodes if n != victim)
        listing = await nodes[survivor].call("GET", "/sessions")
        for s in listing.body["sessions"]:
            if s["session_id"] in running:
                running[s["session_id"]] = (s["call_id"], s["node"])
        await nodes[victim].close()
        nodes[victim] = await start_node(victim, redis, janus)
        print(
            f"  kill {round_ + 1}/{kills}: {victim} held {len(moved)}, back in "
            + ", ".join(f"{t:.2f}" for t in times[-len(moved) :])
            + " s",
            flush=True,
        )
    return times


async def main(sessions: int, kills: int, concurrent: int) -> None:
    ns = LoopbackOnlyNamespace()
    if not ns.enter():
        raise SystemExit("this benchmark needs a network namespace (run as root)")
    add_inside_veth(VETH, "10.254.2.1/24")
    calls = [f"bench-{i}" for i in range(max(concurrent, 6))]
    janus = JanusProcess(interfaces=VETH)
    await janus.start()
    with tempfile.TemporaryDirectory() as folder:
        redis = RedisProcess(Path(folder))
        await redis.start()
        nodes = {name: await start_node(name, redis, janus) for name in ("n1", "n2", "n3")}
        callers = [Caller(janus, call_id) for call_id in calls]
        watcher = RoomWatcher(janus, calls)
        try:
            for caller in callers:
                await caller.join()
            await watcher.start()
            print(f"dispatch: {sessions} sessions, at most {concurrent} at once, 3 nodes")
            answered, seen, phases = await measure_dispatch(
                list(nodes.values()), watcher, calls, sessions, concurrent
            )
            print(f"failover: {kills} kills of the busiest node")
            failovers = await measure_failover(nodes, redis, janus, watcher, calls, kills)
        finally:
            await watcher.close()
            for caller in callers:
                await caller.close()
            for node in nodes.values():
                await node.close()
            await redis.close()
            await janus.close()
            ns.exit()
    print()
    print("| measure | n | p50 | p99 | max |")
    print("|---|---|---|---|---|")
    for name, values in (
        ("request -> 201 (agent in the call, by the API)", answered),
        ("request -> agent in the call's participant list", seen),
        ("kill -9 -> agent back in the call", failovers),
    ):
        if not values:
            continue
        print(
            f"| {name} | {len(values)} | {statistics.median(values):.2f} s "
            f"| {percentile(values, 0.99):.2f} s | {max(values):.2f} s |"
        )
    print()
    print("Where the start's time goes (per session, from its startup record):")
    print()
    print("| step | p50 | p99 | max | share of the slowest 5% |")
    print("|---|---|---|---|---|")
    order = ["dispatch", "worker", "build", "create_call", "mcp", "model", "edge", "publish"]
    present = dict.fromkeys(name for p in phases for name in p)
    names = [n for n in order if n in present] + [n for n in present if n not in order]
    slow = sorted(phases, key=lambda p: p.get("total", 0.0))[-max(1, len(phases) // 20) :]
    slow_total = sum(p.get("total", 0.0) for p in slow) or 1.0
    for name in names:
        values = [p[name] for p in phases if name in p]
        share = sum(p.get(name, 0.0) for p in slow) / slow_total
        print(
            f"| {name} | {statistics.median(values):.2f} s | {percentile(values, 0.99):.2f} s "
            f"| {max(values):.2f} s | {100 * share:.0f}% |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=3, help="sessions running at once")
    parser.add_argument(
        "--no-fork-workers", action="store_true", help="nodes start each worker from scratch"
    )
    args = parser.parse_args()
    if args.no_fork_workers:
        FORK_OPTIONS.append("--no-fork-workers")
    asyncio.run(main(args.sessions, args.kills, args.concurrent))
