"""The HTTP API: routes, bearer auth, bounded bodies, and errors that say why."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from vision_agents.server.fleet import Fleet
from vision_agents.server.metrics import ServerMetrics
from vision_agents.server.schema import MAX_BODY_BYTES, FieldProblem, openapi, parse_create
from vision_agents.server.sessions import Refused, Session, SessionManager

PUBLIC_PATHS = frozenset({"/health", "/ready", "/metrics"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, error: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status)


def build_app(
    manager: SessionManager, metrics: ServerMetrics, token: str, fleet: Fleet | None = None
) -> web.Application:
    """The aiohttp application; every route but health/ready/metrics needs the bearer token.

    With a ``fleet``, sessions are placed, listed and deleted fleet-wide (any node answers)."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in PUBLIC_PATHS:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                response = problem(401, "missing or wrong 'Authorization: Bearer <token>'")
                response.headers["WWW-Authenticate"] = 'Bearer realm="vision-agents"'
                return response
        return await handler(request)

    async def create(request: web.Request) -> web.Response:
        raw = await request.read()  # over client_max_size: 413 from aiohttp
        try:
            body = parse_create(raw)
        except FieldProblem as exc:
            return problem(422, f"{exc.field}: {exc.message}", field=exc.field)
        try:
            if fleet is not None:
                record = await fleet.create(
                    body.call_id, body.call_type, body.metadata, manager.config.start_timeout_s
                )
                return _created_or_failed(record)
            session = await manager.create(body.call_id, body.call_type, body.metadata)
        except Refused as exc:
            response = problem(exc.status, exc.message, reason=exc.reason)
            if exc.status == 503:
                response.headers["Retry-After"] = "5"
            return response
        if session.state == "failed":
            status = 503 if session.reason == "no_worker" else 500
            return problem(
                status,
                f"the session failed to start: {session.reason}: {session.error}",
                reason=session.reason,
                session_id=session.session_id,
            )
        created = {
            "session_id": session.session_id,
            "call_id": session.call_id,
            "join_url": session.join_url,
        }
        return web.json_response(created, status=201)

    async def list_sessions(request: web.Request) -> web.Response:
        if fleet is not None:
            return web.json_response({"sessions": await fleet.sessions()})
        return web.json_response({"sessions": [s.to_json() for s in manager.sessions.values()]})

    def find(request: web.Request) -> Session:
        session = manager.sessions.get(request.match_info["session_id"])
        if session is None:
            raise web.HTTPNotFound(
                text='{"error": "no such session"}', content_type="application/json"
            )
        return session

    async def get_session(request: web.Request) -> web.Response:
        if fleet is not None:
            record = await fleet.get(request.match_info["session_id"])
            if record is None:
                return problem(404, "no such session")
            return web.json_response(record)
        return web.json_response(find(request).to_json())

    async def delete_session(request: web.Request) -> web.Response:
        if fleet is not None:
            status = await fleet.delete(request.match_info["session_id"])
            if status == 404:
                return problem(404, "no such session")
            if status == 503:
                return problem(503, "the fleet's Redis is unreachable", reason="redis_unavailable")
            if status == 202:  # the owner stops it at its next renewal
                return web.json_response({"status": "deleting"}, status=202)
            return web.Response(status=204 if status < 300 else status)
        await manager.stop(find(request), "deleted")
        return web.Response(status=204)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(request: web.Request) -> web.Response:
        reason = manager.not_ready_reason() or (fleet.not_ready_reason() if fleet else None)
        if reason is not None:
            return web.json_response({"ready": False, "reason": reason}, status=503)
        return web.json_response({"ready": True, "free_slots": manager.free_slots()})

    async def metrics_page(request: web.Request) -> web.Response:
        manager.metrics.workers_idle.set(len(manager.pool.idle))
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = metrics.content_type
        return response

    async def schema(request: web.Request) -> web.Response:
        return web.json_response(openapi())

    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[authorize])
    app.router.add_post("/sessions", create)
    app.router.add_get("/sessions", list_sessions)
    app.router.add_get("/sessions/{session_id}", get_session)
    app.router.add_delete("/sessions/{session_id}", delete_session)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/openapi.json", schema)
    return app


def _created_or_failed(record: dict[str, Any]) -> web.Response:
    if record["state"] == "failed":
        status = 503 if record["reason"] == "no_worker" else 500
        return problem(
            status,
            f"the session failed to start: {record['reason']}: {record['error']}",
            reason=record["reason"],
            session_id=record["session_id"],
        )
    created = {k: record[k] for k in ("session_id", "call_id", "join_url", "node")}
    return web.json_response(created, status=201)
