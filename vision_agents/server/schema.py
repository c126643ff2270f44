"""Request and response bodies of the sessions API, and the OpenAPI document built from them."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from vision_agents import __version__

MAX_BODY_BYTES = 16 * 1024
MAX_METADATA_BYTES = 4 * 1024
MAX_METADATA_KEYS = 32


class CreateSession(BaseModel):
    """``POST /sessions``: which call the agent joins, and data for the factory."""

    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="1-64 of A-Z a-z 0-9 - _")
    call_type: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    metadata: dict[str, JsonValue] = Field(
        default_factory=dict,
        max_length=MAX_METADATA_KEYS,
        description=f"Handed to the factory; at most {MAX_METADATA_BYTES} bytes as JSON",
    )

    @field_validator("metadata")
    @classmethod
    def _bounded(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        size = len(json.dumps(value, separators=(",", ":")).encode())
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES}")
        return value


class SessionCreated(BaseModel):
    session_id: str
    call_id: str
    join_url: str | None = None
    node: str | None = Field(
        default=None, description="with --redis: the node the session was placed on"
    )


class Usage(BaseModel):
    duration_s: float
    audio_in_s: float | None = None
    audio_out_s: float | None = None
    reconnects: float | None = None
    frames_to_model: float | None = None
    cpu_s: float | None = None
    rss_bytes: float | None = None
    tokens_input_text: int | None = None
    tokens_input_audio: int | None = None
    tokens_input_image: int | None = Field(
        default=None, description="image tokens the model reported (re-reads of a frame included)"
    )
    tokens_input_image_estimated: int | None = Field(
        default=None,
        description="our estimate: image tokens of the frames sent, each once, by the "
        "provider's published rule",
    )
    tokens_output_text: int | None = None
    tokens_output_audio: int | None = None


class SessionInfo(BaseModel):
    session_id: str
    call_id: str
    call_type: str
    state: Literal["dispatched", "starting", "running", "stopping", "ended", "failed"] = Field(
        description="dispatched: with --redis, sent to a node that has not yet started it"
    )
    reason: str | None = Field(
        description="why it ended or failed, e.g. deleted, empty, max_duration, worker_exited"
    )
    error: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    join_url: str | None
    participants: list[str]
    startup: dict[str, float] = Field(
        default_factory=dict,
        description="seconds each step of the start took: with --redis dispatch (to the node "
        "that runs it), worker (a worker from the pool), "
        "build, create_call, mcp, model, edge, publish, in_worker (their sum), total (the "
        "request to the agent in the call)",
    )
    usage: Usage
    metadata: dict[str, JsonValue]
    node: str | None = Field(
        default=None, description="with --redis: the node that runs (or was sent) the session"
    )
    epoch: int | None = Field(
        default=None,
        description="with --redis: the lease's fencing token, one more at each failover",
    )
    failovers: int | None = Field(
        default=None, description="with --redis: times the session moved to another node"
    )


class SessionList(BaseModel):
    sessions: list[SessionInfo]


class Problem(BaseModel):
    error: str
    reason: str | None = None
    field: str | None = None


class FieldProblem(Exception):
    """A body that failed validation: ``field`` names the first bad field (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_create(raw: bytes) -> CreateSession:
    """Validate a ``POST /sessions`` body; ``FieldProblem`` names the first bad field."""
    try:
        data = json.loads(raw or b"null")
    except ValueError as exc:
        raise FieldProblem("body", f"not valid JSON ({exc.args[0]})") from exc
    if not isinstance(data, dict):
        raise FieldProblem("body", 'must be a JSON object like {"call_id": "my-call"}')
    try:
        return CreateSession.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise FieldProblem(where, first["msg"]) from exc


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the sessions API."""
    models: list[type[BaseModel]] = [
        CreateSession,
        SessionCreated,
        SessionInfo,
        SessionList,
        Problem,
    ]
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema

    def ref(name: str) -> dict[str, Any]:
        return {
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
        }

    def problem(text: str) -> dict[str, Any]:
        return {"description": text, **ref("Problem")}

    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    unauthorized = problem("missing or wrong bearer token")
    session_id = {
        "name": "session_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "vision-agents serve", "version": __version__},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/sessions": {
                "post": {
                    "summary": "Start an agent in a call",
                    "security": secured,
                    "requestBody": {"required": True, **ref("CreateSession")},
                    "responses": {
                        "201": {"description": "the agent is in the call", **ref("SessionCreated")},
                        "401": unauthorized,
                        "409": problem("the call already has its maximum of agent sessions"),
                        "413": {"description": f"body over {MAX_BODY_BYTES} bytes"},
                        "422": problem("invalid body; `field` names the bad field"),
                        "500": problem("the session failed to start (factory or agent error)"),
                        "503": problem(
                            "at capacity, draining, no worker could start, or (with --redis) "
                            "the fleet's Redis is unreachable (reason redis_unavailable)"
                        ),
                    },
                },
                "get": {
                    "summary": "Sessions on this node (running and recently finished)",
                    "security": secured,
                    "responses": {
                        "200": {"description": "the sessions", **ref("SessionList")},
                        "401": unauthorized,
                    },
                },
            },
            "/sessions/{session_id}": {
                "parameters": [session_id],
                "get": {
                    "summary": "One session: state, times, participants, usage",
                    "security": secured,
                    "responses": {
                        "200": {"description": "the session", **ref("SessionInfo")},
                        "401": unauthorized,
                        "404": problem("no such session"),
                    },
                },
                "delete": {
                    "summary": "Make the agent leave; answers once it has",
                    "security": secured,
                    "responses": {
                        "204": {"description": "the agent has left the call"},
                        "202": {
                            "description": "with --redis: the owner node does not answer; it "
                            "stops the agent at its next lease renewal"
                        },
                        "401": unauthorized,
                        "404": problem("no such session"),
                        "503": problem("with --redis: the fleet's Redis is unreachable"),
                    },
                },
            },
            "/health": {
                "get": {
                    "summary": "The process is alive",
                    "responses": {"200": {"description": "alive"}},
                }
            },
            "/ready": {
                "get": {
                    "summary": "Whether this node takes new sessions",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": problem("at capacity or draining"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (vision_agents_*)",
                    "responses": {"200": {"description": "Prometheus text format"}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": secured,
                    "responses": {"200": {"description": "OpenAPI 3.1"}, "401": unauthorized},
                }
            },
        },
    }
