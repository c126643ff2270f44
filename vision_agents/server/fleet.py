"""`Fleet`: several `vision-agents serve` nodes that act as one, coordinated through Redis.

Redis holds everything shared; the nodes hold no state another node needs:

- ``{p}:node:{id}``: each node's heartbeat (its URL, capacity, draining), a key with a TTL.
- ``{p}:session:{sid}``: a hash per session (call, state, owner, epoch, usage).
- ``{p}:lease:{sid}``: ``"{node}:{epoch}"`` with a TTL, renewed by the owner. The epoch is the
  fencing token: taking a session increments it, and an owner whose renewal finds another
  epoch stops its agent at once.
- ``{p}:dispatch:{node}``: a stream per node with a consumer group (at-least-once delivery:
  an entry is acknowledged once the session is taken or refused).
- ``{p}:load``: a sorted set of sessions placed on each node (placement reads it, so placing
  nine sessions in a row spreads them even between heartbeats).

Placement: ``POST /sessions`` on any node picks the live, not draining node with the lowest
share of its capacity in use and sends it the session. Failover: every node looks for
sessions whose lease has lapsed while their owner's heartbeat is gone, claims the right to
move each (``SET NX``), and dispatches it to a live node, which takes it with a new epoch.
While Redis is unreachable a node keeps its sessions running, refuses new ones (503) and
retries with backoff; after it reconnects no node moves anything until owners have had
time to renew.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, WatchError

from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.server.sessions import Refused, Session, SessionManager, _iso

logger = logging.getLogger(__name__)

FINAL_STATES = ("ended", "failed")
GROUP = "nodes"

# Renew a lease if this owner's epoch is still the session's: 1 renewed, 0 taken over (stop),
# 2 being deleted (stop), -1 the session's record is gone (Redis lost it: write it again).
_RENEW = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return -1 end
if epoch ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[1], 'state') == 'deleting' then return 2 end
local current = redis.call('GET', KEYS[2])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return 1
"""

# Admit a session into a call if the call has room, fleet-wide: 1 admitted, 0 full.
_ADMIT = """
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
"""

# Record the end of a session, only if the caller's epoch still owns it (a session taken over
# is the new owner's to record) and only once; the node it was placed on gets its slot back.
# ARGV: epoch, lease value, sid, json fields, history ttl.
_FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'ended' or state == 'failed' then return 0 end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch and epoch ~= ARGV[1] then return 0 end
local holder = redis.call('HGET', KEYS[1], 'owner')
if state == 'dispatched' or not holder then holder = redis.call('HGET', KEYS[1], 'target') end
if holder then redis.call('ZINCRBY', KEYS[6], -1, holder) end
local fields = cjson.decode(ARGV[4])
for k, v in pairs(fields) do redis.call('HSET', KEYS[1], k, v) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('SREM', KEYS[3], ARGV[3])
redis.call('SREM', KEYS[4], ARGV[3])
redis.call('LREM', KEYS[5], 0, ARGV[3])
redis.call('LPUSH', KEYS[5], ARGV[3])
redis.call('LTRIM', KEYS[5], 0, 99)
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""


@dataclass
class _Owned:
    epoch: int
    session: Session | None = None


def redacted(url: str) -> str:
    """A Redis URL without its password, for logs and errors."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class Fleet:
    """This node's part in a fleet: heartbeats, placement, taking sessions, failover."""

    def __init__(
        self,
        manager: SessionManager,
        *,
        redis_url: str,
        node_id: str,
        url: str,
        token: str,
        prefix: str = "va",
        heartbeat_s: float = 1.0,
        node_ttl_s: float = 3.0,
        lease_ttl_s: float = 3.0,
    ) -> None:
        self.manager = manager
        self.node_id = node_id
        self.url = url
        self.redis_url = redis_url
        self.prefix = prefix
        self.heartbeat_s = heartbeat_s
        self.node_ttl_s = node_ttl_s
        self.lease_ttl_s = lease_ttl_s
        self.available = False
        """Whether the last exchange with Redis worked."""
        self.failovers = 0
        self._token = token
        # redis-py's annotations mix sync and async return types; its replies are typed here
        # where they are read.
        self._socket_timeout_s = 2 * heartbeat_s + 1.0  # above the dispatch read's block
        self._redis: Any = aioredis.Redis.from_url(
            redis_url,
            decode_responses=True,
            socket_timeout=self._socket_timeout_s,
            socket_connect_timeout=1.0,
            # A pooled connection goes stale when Redis restarts, and a restarted Redis answers
            # LOADING while it reads its file: up to 3 more tries, 0.05-0.4 s apart. Not on a
            # timeout: a path gone dark is reported after one socket timeout, not four.
            retry=Retry(
                ExponentialBackoff(cap=0.4, base=0.05), 3, supported_errors=(RedisConnectionError,)
            ),
        )
        self._renew = self._redis.register_script(_RENEW)
        self._admit = self._redis.register_script(_ADMIT)
        self._finish = self._redis.register_script(_FINISH)
        self._owned: dict[str, _Owned] = {}
        self._taking: set[str] = set()
        self._runs: set[asyncio.Task[Any]] = set()
        self._reread = False
        self._unrecorded: dict[str, tuple[int, dict[str, str]]] = {}
        self._connected_since: float | None = None
        self._tasks = TaskOwner("fleet")
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None

    # -- keys ---------------------------------------------------------------------------------

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # -- life ---------------------------------------------------------------------------------

    async def start(self) -> None:
        # A forwarded DELETE waits for the owner's agent to leave (its stop timeout, then a
        # kill): bounded, so a node that hangs cannot hang the API of another.
        limit = self.manager.config.stop_timeout_s + 10.0
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit))
        await self._beat_once()  # fails soft: the loop retries
        self._loops = [
            self._tasks.spawn(self._heartbeat(), "heartbeat"),
            self._tasks.spawn(self._consume(), "dispatch"),
            self._tasks.spawn(self._watch(), "failover"),
        ]

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop; sessions that have just ended (a drain) first get ``grace_s`` to record it."""
        if self._runs:
            await asyncio.wait(list(self._runs), timeout=grace_s)
        # The loops are asked to stop between two commands, not cancelled in one: redis-py
        # (8.2) can hang for good when a task is cancelled while its command waits for the
        # reply (1 in 35-105 cancels of a blocked XREADGROUP on loopback; a drained node then
        # never exited). Each loop is back within one read, bounded by the socket timeout.
        self._stopping.set()
        running = [t for t in self._loops if not t.done()]
        if running:
            await asyncio.wait(running, timeout=self._socket_timeout_s + 1.0)
        await self._tasks.close()
        try:
            await self._redis.delete(self._k("node", self.node_id))
            await self._redis.srem(self._k("nodes"), self.node_id)
        except RedisError:
            pass
        await self._redis.aclose()
        if self._http is not None:
            await self._http.close()

    def not_ready_reason(self) -> str | None:
        if not self.available:
            return f"the fleet's Redis ({redacted(self.redis_url)}) is unreachable"
        return None

    # -- the API's side -------------------------------------------------------------------------

    async def create(
        self, call_id: str, call_type: str, metadata: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        """Place a session on the least loaded live node; returns its record once it runs."""
        if not self.available:
            raise Refused(
                503,
                "redis_unavailable",
                f"the fleet's Redis ({redacted(self.redis_url)}) is unreachable: no new "
                "sessions until it is back (running ones go on)",
            )
        if self.manager.draining:
            raise Refused(503, "draining", "this node is draining and takes no new sessions")
        sid = uuid.uuid4().hex
        admitted = False
        try:
            target = await self._pick(exclude=set())
            if target is None:
                raise Refused(503, "fleet_full", "no live node has room for another session")
            limit = str(self.manager.config.max_sessions_per_call)
            if not await self._admit(keys=[self._k("call", call_id)], args=[sid, limit]):
                raise Refused(
                    409,
                    "call_full",
                    f"call {call_id!r} already has {limit} agent session(s) in the fleet",
                )
            admitted = True
            now = time.time()
            record = {
                "session_id": sid,
                "call_id": call_id,
                "call_type": call_type,
                "metadata": json.dumps(metadata),
                "created_at": str(now),
                "state": "dispatched",
                "target": target,
                "dispatched_at": str(now),
                "epoch": "0",
                "failovers": "0",
            }
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(self._k("session", sid), mapping=record)
            pipe.sadd(self._k("sessions"), sid)
            pipe.zincrby(self._k("load"), 1, target)
            pipe.xadd(self._k("dispatch", target), {"session_id": sid})
            await pipe.execute()
        except RedisError as exc:
            self._lost(exc)
            if admitted:  # the session was never written (one transaction): free its place
                with contextlib.suppress(RedisError):
                    await self._redis.srem(self._k("call", call_id), sid)
            raise Refused(
                503, "redis_unavailable", "the fleet's Redis failed mid-request"
            ) from None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = await self._record(sid)
            if found is not None and found["state"] not in ("dispatched", "starting"):
                return found
            await asyncio.sleep(0.05)
        raise Refused(503, "start_timeout", f"session {sid} did not start in {timeout_s:.0f} s")

    async def sessions(self) -> list[dict[str, Any]]:
        """Every session of the fleet: those running and the last 100 finished."""
        try:
            active = sorted(await self._redis.smembers(self._k("sessions")))
            ended = await self._redis.lrange(self._k("ended"), 0, 99)
            pipe = self._redis.pipeline(transaction=False)
            for sid in [*active, *ended]:
                pipe.hgetall(self._k("session", sid))
            rows = await pipe.execute()
        except RedisError as exc:
            self._lost(exc)
            return [self._local_json(s) for s in self.manager.sessions.values()]
        return [self._json(row) for row in rows if row]

    async def get(self, sid: str) -> dict[str, Any] | None:
        local = self.manager.sessions.get(sid)
        if local is not None and (local.active or not self.available):
            return self._local_json(local)
        try:
            return await self._record(sid)
        except RedisError as exc:
            self._lost(exc)
            return self._local_json(local) if local is not None else None

    async def delete(self, sid: str) -> int:
        """Stop a session wherever it runs; the HTTP status to answer (204, 404, 503)."""
        local = self.manager.sessions.get(sid)
        if local is not None and local.active:
            owned = self._owned.get(sid)
            await self.manager.stop(local, "deleted")
            if owned is not None:  # recorded before the answer: the call is free again now
                await self._record_end(
                    sid, owned.epoch, local.state, local.reason or "", local.error or "", local
                )
            return 204
        try:
            row = await self._redis.hgetall(self._k("session", sid))
            if not row:
                return 404 if local is None else 204
            if row["state"] in FINAL_STATES:
                return 204
            await self._redis.hset(self._k("session", sid), "state", "deleting")
            owner = row.get("owner", "")
            node = await self._redis.get(self._k("node", owner)) if owner else None
        except RedisError as exc:
            self._lost(exc)
            return 503
        if node is not None and owner != self.node_id and self._http is not None:
            url = json.loads(node)["url"]
            headers = {"Authorization": f"Bearer {self._token}"}
            try:
                async with self._http.delete(f"{url}/sessions/{sid}", headers=headers) as resp:
                    return resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                # Alive (it heartbeats) but not answering: it stops the agent itself when its
                # next renewal finds the session marked for deletion.
                logger.warning("node %s did not answer the delete of %s: %r", owner, sid, exc)
                return 202
        # Nobody runs it (dispatched, or its owner is gone): record it ended here.
        await self._record_end(sid, int(row.get("epoch", "0")), "ended", "deleted", "")
        return 204

    # -- placement ----------------------------------------------------------------------------

    async def _live_nodes(self) -> dict[str, dict[str, Any]]:
        ids = sorted(await self._redis.smembers(self._k("nodes")))
        if not ids:
            return {}
        values = await self._redis.mget([self._k("node", n) for n in ids])
        live = {n: json.loads(v) for n, v in zip(ids, values, strict=True) if v}
        gone = [n for n in ids if n not in live]
        if gone:
            pipe = self._redis.pipeline(transaction=False)
            pipe.srem(self._k("nodes"), *gone)
            pipe.zrem(self._k("load"), *gone)
            await pipe.execute()
        return live

    async def _pick(self, exclude: set[str], sent: dict[str, int] | None = None) -> str | None:
        """The node for a new session: the lowest share of its capacity placed; between
        equals, one with a pre-warmed worker left (the start is then immediate); then the
        name. ``sent``: sessions this caller has just dispatched (they will use workers)."""
        live = await self._live_nodes()
        sent = sent or {}
        best: tuple[float, int, float, str] | None = None
        for node, info in live.items():
            if node in exclude or info.get("draining") or not info.get("accepting", True):
                continue
            load = await self._redis.zscore(self._k("load"), node) or 0.0
            capacity = float(info.get("max_sessions", 1))
            if load >= capacity:
                continue
            cold = 0 if int(info.get("idle_workers", 0)) > sent.get(node, 0) else 1
            key = (load / capacity, cold, load, node)
            if best is None or key < best:
                best = key
        if best is not None:
            sent[best[3]] = sent.get(best[3], 0) + 1
        return best[3] if best else None

    # -- taking a session ---------------------------------------------------------------------

    async def _take(self, sid: str, message_id: str) -> None:
        """Become the owner of ``sid`` with a new epoch (or drop it), acknowledge its dispatch,
        then run it here. If Redis fails first, the dispatch stays unacknowledged and is read
        again (at-least-once); taking twice is safe, the epoch check lets one win."""
        if sid in self._taking:
            return
        self._taking.add(sid)
        try:
            acquired = await self._acquire(sid)
        except RedisError as exc:
            self._lost(exc)
            self._reread = True
            return
        finally:
            self._taking.discard(sid)
        with contextlib.suppress(RedisError):
            await self._redis.xack(self._k("dispatch", self.node_id), GROUP, message_id)
        if acquired is not None:
            run = asyncio.current_task()
            assert run is not None
            self._runs.add(run)
            try:
                await self._run(sid, *acquired)
            finally:
                self._runs.discard(run)

    async def _acquire(self, sid: str) -> tuple[int, dict[str, str]] | None:
        key, lease = self._k("session", sid), self._k("lease", sid)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key, lease)
                row = await pipe.hgetall(key)
                taken = await pipe.exists(lease)
                if not row or row.get("state") != "dispatched" or row.get("target") != self.node_id:
                    await pipe.reset()
                    return None  # finished, deleted, or sent elsewhere since
                if taken:
                    await pipe.reset()
                    await self._redis.zincrby(self._k("load"), -1, self.node_id)
                    return None
                epoch = int(row.get("epoch", "0")) + 1
                pipe.multi()
                pipe.hset(
                    key,
                    mapping={
                        "epoch": str(epoch),
                        "owner": self.node_id,
                        "owner_url": self.url,
                        "state": "starting",
                    },
                )
                # Usage starts at zero per epoch: the last owner's figures are its agent's, and
                # shown under the new epoch they read as the new agent already hearing.
                pipe.hdel(key, "usage", "participants")
                pipe.set(lease, f"{self.node_id}:{epoch}", px=int(self.lease_ttl_s * 1000))
                await pipe.execute()
        except WatchError:
            return None  # changed meanwhile (taken, deleted): the change decides
        return epoch, row

    async def _run(self, sid: str, epoch: int, row: dict[str, str]) -> None:
        key = self._k("session", sid)
        owned = self._owned[sid] = _Owned(epoch)
        try:
            session = await self.manager.create(
                row["call_id"], row["call_type"], json.loads(row["metadata"]), session_id=sid
            )
        except Refused as exc:
            self._owned.pop(sid, None)
            await self._record_end(sid, epoch, "failed", exc.reason, exc.message)
            return
        owned.session = session
        waited = time.time() - float(row.get("dispatched_at") or time.time())
        logger.info(
            "fleet: session %s (epoch %d) %s %.2f s after its dispatch",
            sid,
            epoch,
            session.state,
            waited,
        )
        if session.state == "running":
            dispatched = float(row.get("dispatched_at") or session.created_at)
            # the first start counts from the request; a failover's from its new dispatch
            requested = float(row.get("created_at") or dispatched) if epoch == 1 else dispatched
            startup = {
                "dispatch": round(session.created_at - dispatched, 4),
                **session.startup,
                "total": round((session.started_at or time.time()) - requested, 4),
            }
            await self._redis.hset(
                key,
                mapping={
                    "state": "running",
                    "started_at": str(session.started_at or time.time()),
                    "join_url": session.join_url or "",
                    "startup": json.dumps(startup),
                },
            )
        await session.done.wait()
        self._owned.pop(sid, None)
        await self._record_end(
            sid, epoch, session.state, session.reason or "", session.error or "", session
        )

    async def _record_end(
        self,
        sid: str,
        epoch: int,
        state: str,
        reason: str,
        error: str,
        session: Session | None = None,
    ) -> None:
        fields = {"state": state, "reason": reason, "error": error, "ended_at": str(time.time())}
        if session is not None:
            fields["usage"] = json.dumps(session.to_json()["usage"])
        try:
            await self._finish_script(sid, epoch, fields)
        except RedisError as exc:
            self._lost(exc)
            self._unrecorded[sid] = (epoch, fields)  # written when Redis is back

    async def _finish_script(self, sid: str, epoch: int, fields: dict[str, str]) -> None:
        row = await self._redis.hget(self._k("session", sid), "call_id")
        await self._finish(
            keys=[
                self._k("session", sid),
                self._k("lease", sid),
                self._k("sessions"),
                self._k("call", row or ""),
                self._k("ended"),
                self._k("load"),
            ],
            args=[str(epoch), f"{self.node_id}:{epoch}", sid, json.dumps(fields), 3600],
        )

    # -- loops --------------------------------------------------------------------------------

    async def _pause(self, seconds: float) -> bool:
        """Sleep; True when the fleet is closing (then the caller's loop ends)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()

    async def _heartbeat(self) -> None:
        delay = self.heartbeat_s
        while not await self._pause(delay):
            if await self._beat_once():
                delay = self.heartbeat_s
            else:  # retry after 0.25 s, doubling up to the heartbeat interval
                delay = 0.25 if delay >= self.heartbeat_s else min(delay * 2, self.heartbeat_s)

    async def _beat_once(self) -> bool:
        info = {
            "url": self.url,
            "max_sessions": self.manager.config.max_sessions,
            "active": len(self.manager.active),
            "idle_workers": len(self.manager.pool.idle),
            "draining": self.manager.draining,
            "accepting": self.manager.overload() is None,
            "at": time.time(),
        }
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(
                self._k("node", self.node_id), json.dumps(info), px=int(self.node_ttl_s * 1000)
            )
            pipe.sadd(self._k("nodes"), self.node_id)
            await pipe.execute()
            for sid, owned in list(self._owned.items()):
                await self._renew_one(sid, owned)
            for sid, (epoch, fields) in list(self._unrecorded.items()):
                await self._finish_script(sid, epoch, fields)
                self._unrecorded.pop(sid, None)
        except RedisError as exc:
            self._lost(exc)
            self.manager.metrics.fleet_redis_up.set(0)
            self.available = False  # the heartbeat alone decides: one failed read elsewhere
            self._connected_since = None  # (a stale pooled connection) is not an outage
            return False
        self.manager.metrics.fleet_redis_up.set(1)
        if not self.available:
            self.available = True
            self._connected_since = time.monotonic()
            logger.info("fleet: node %s connected to %s", self.node_id, redacted(self.redis_url))
        return True

    async def _renew_one(self, sid: str, owned: _Owned) -> None:
        key, lease = self._k("session", sid), self._k("lease", sid)
        value = f"{self.node_id}:{owned.epoch}"
        result = await self._renew(
            keys=[key, lease], args=[value, str(owned.epoch), int(self.lease_ttl_s * 1000)]
        )
        session = owned.session
        if result == 1 and session is not None:
            usage = session.to_json()
            await self._redis.hset(
                key,
                mapping={
                    "usage": json.dumps(usage["usage"]),
                    "participants": json.dumps(usage["participants"]),
                },
            )
        elif result in (0, 2) and session is not None and session.active:
            reason = "deleted" if result == 2 else "lease_lost"
            if result == 0:
                logger.warning("fleet: session %s is owned elsewhere now: stopping it", sid)
            self._tasks.spawn(self.manager.stop(session, reason), f"stop:{sid}")
        elif result == -1 and session is not None:
            # Redis came back without the record (no persistence): write it again.
            row = session.to_json()
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(
                key,
                mapping={
                    "session_id": sid,
                    "call_id": session.call_id,
                    "call_type": session.call_type,
                    "metadata": json.dumps(session.metadata),
                    "created_at": str(session.created_at),
                    "state": "running" if session.state == "running" else "starting",
                    "owner": self.node_id,
                    "owner_url": self.url,
                    "epoch": str(owned.epoch),
                    "failovers": "0",
                    "join_url": row["join_url"] or "",
                },
            )
            pipe.set(lease, value, px=int(self.lease_ttl_s * 1000))
            pipe.sadd(self._k("sessions"), sid)
            pipe.sadd(self._k("call", session.call_id), sid)
            pipe.zincrby(self._k("load"), 1, self.node_id)
            await pipe.execute()

    async def _consume(self) -> None:
        stream = self._k("dispatch", self.node_id)
        grouped = False
        backlog = True  # first read what was delivered to this node before but not acked
        while not self._stopping.is_set():
            try:
                if not grouped:
                    try:
                        await self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
                    except RedisError as exc:
                        if "BUSYGROUP" not in str(exc):
                            raise
                    grouped = True
                entries = await self._redis.xreadgroup(
                    GROUP,
                    self.node_id,
                    {stream: "0" if backlog else ">"},
                    count=16,
                    block=None if backlog else int(self.heartbeat_s * 500),
                )
            except RedisError as exc:
                self._lost(exc)
                grouped, backlog = False, True
                await self._pause(min(self.heartbeat_s, 1.0))
                continue
            messages = [m for _, batch in entries for m in batch] if entries else []
            if backlog and not messages:
                backlog = False
            if self._reread:
                self._reread, backlog = False, True
            for message_id, fields in messages:
                sid = fields.get("session_id")
                if self._stopping.is_set():
                    break  # left unacknowledged: failover moves it once this node is gone
                if sid:
                    self._tasks.spawn(self._take(sid, message_id), f"take:{sid}")
                else:
                    with contextlib.suppress(RedisError):
                        await self._redis.xack(stream, GROUP, message_id)

    async def _watch(self) -> None:
        while not await self._pause(self.heartbeat_s):
            settled = self.node_ttl_s + self.lease_ttl_s
            if not self.available or self._connected_since is None:
                continue
            if time.monotonic() - self._connected_since < settled:
                continue  # owners renew first after Redis comes back
            try:
                await self._fail_over()
            except RedisError as exc:
                self._lost(exc)

    async def _fail_over(self) -> None:
        sids = sorted(await self._redis.smembers(self._k("sessions")))
        if not sids:
            return
        pipe = self._redis.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(self._k("session", sid))
            pipe.exists(self._k("lease", sid))
        replies = await pipe.execute()
        live = await self._live_nodes()
        now = time.time()
        sent: dict[str, int] = {}
        for i, sid in enumerate(sids):
            row, leased = replies[2 * i], replies[2 * i + 1]
            if not row or leased:
                continue
            state = row.get("state", "")
            holder = row.get("target" if state == "dispatched" else "owner", "")
            if state == "deleting":
                await self._record_end(sid, int(row.get("epoch", "0")), "ended", "deleted", "")
                continue
            waited = now - float(row.get("dispatched_at", "0") or 0)
            if holder in live and (
                state != "dispatched" or waited < self.manager.config.start_timeout_s
            ):
                continue
            if state != "dispatched" and await self._answers(row.get("owner_url", "")):
                # Alive but cut off from Redis: its agents go on, and moving them would make
                # two. (A node cut off from both Redis and us is taken for dead.)
                continue
            claim = self._k("claim", sid, row.get("epoch", "0"), row.get("failovers", "0"))
            if not await self._redis.set(claim, self.node_id, nx=True, px=10_000):
                continue
            target = await self._pick(exclude={holder}, sent=sent)
            if target is None:
                await self._redis.delete(claim)
                continue
            self.failovers += 1
            self.manager.metrics.fleet_failovers.inc()
            logger.warning(
                "fleet: session %s lost its owner %s: moving it to %s", sid, holder or "-", target
            )
            move = self._redis.pipeline(transaction=True)
            move.hset(
                self._k("session", sid),
                mapping={"state": "dispatched", "target": target, "dispatched_at": str(now)},
            )
            move.hincrby(self._k("session", sid), "failovers", 1)
            move.zincrby(self._k("load"), 1, target)
            if holder in live:  # placed on a live node that never took it: its slot back
                move.zincrby(self._k("load"), -1, holder)
            move.xadd(self._k("dispatch", target), {"session_id": sid})
            await move.execute()

    # -- helpers ------------------------------------------------------------------------------

    async def _answers(self, url: str) -> bool:
        """Whether the node at ``url`` answers ``/health`` (within half a second)."""
        if not url or self._http is None or url == self.url:
            return False
        try:
            timeout = aiohttp.ClientTimeout(total=0.5)
            async with self._http.get(f"{url}/health", timeout=timeout) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    def _lost(self, exc: BaseException) -> None:
        if self.available:
            logger.warning(
                "fleet: Redis (%s) failed: %s; running sessions go on",
                redacted(self.redis_url),
                type(exc).__name__,
            )

    async def _record(self, sid: str) -> dict[str, Any] | None:
        row = await self._redis.hgetall(self._k("session", sid))
        return self._json(row) if row else None

    def _json(self, row: dict[str, str]) -> dict[str, Any]:
        def when(key: str) -> float | None:
            value = row.get(key)
            return float(value) if value else None

        started, ended = when("started_at"), when("ended_at")
        usage = json.loads(row["usage"]) if row.get("usage") else {}
        if started and "duration_s" not in usage:
            usage["duration_s"] = round((ended or time.time()) - started, 3)
        return {
            "session_id": row.get("session_id"),
            "call_id": row.get("call_id"),
            "call_type": row.get("call_type"),
            "state": row.get("state"),
            "reason": row.get("reason") or None,
            "error": row.get("error") or None,
            "created_at": _iso(when("created_at")),
            "started_at": _iso(started),
            "ended_at": _iso(ended),
            "join_url": row.get("join_url") or None,
            "participants": json.loads(row["participants"]) if row.get("participants") else [],
            "startup": json.loads(row["startup"]) if row.get("startup") else {},
            "usage": usage,
            "metadata": json.loads(row.get("metadata") or "{}"),
            "node": row.get("owner") or row.get("target"),
            "epoch": int(row.get("epoch", "0")),
            "failovers": int(row.get("failovers", "0")),
        }

    def _local_json(self, session: Session) -> dict[str, Any]:
        owned = self._owned.get(session.session_id)
        return {**session.to_json(), "node": self.node_id, "epoch": owned.epoch if owned else 0}
