"""The tool registry: schemas from signatures and docstrings, and safe execution of calls."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import math
import re
import threading
from typing import Annotated, Any, Literal

import numpy as np
import pytest
from pydantic import BaseModel, Field

from vision_agents.core.llm.tools import ToolError, ToolRegistry, ToolResult, ToolSchema


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Place(BaseModel):
    """A place on earth."""

    city: str
    country: str | None = None


@dataclasses.dataclass
class Window:
    start: int
    end: int = 10


class Sock:
    """Not describable as JSON."""


class TreeNode(BaseModel):
    children: list[TreeNode] = []


def _parameters(registry: ToolRegistry, name: str) -> dict[str, Any]:
    tool = registry.get(name)
    assert tool is not None
    return tool.schema.parameters


def _keys_anywhere(node: Any) -> set[str]:
    """Every schema keyword used anywhere, skipping property names (which are user data)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            if key == "properties":
                for sub in value.values():
                    found |= _keys_anywhere(sub)
            else:
                found |= _keys_anywhere(value)
    elif isinstance(node, list):
        for item in node:
            found |= _keys_anywhere(item)
    return found


# --- schemas -------------------------------------------------------------------------------------


def test_schema_of_scalars_with_google_docstring() -> None:
    registry = ToolRegistry()

    @registry.register
    def add(a: int, b: float = 1.5, label: str | None = None) -> float:
        """Add two numbers
        and label the sum.

        Longer explanation that the model does not need.

        Args:
            a: The first
                number.
            b (float): The second number.
            label: Optional label.

        Returns:
            The sum.
        """
        return a + b

    assert registry.schemas() == [
        ToolSchema(
            name="add",
            description="Add two numbers and label the sum.",
            parameters={
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "description": "The first number."},
                    "b": {"type": "number", "description": "The second number.", "default": 1.5},
                    "label": {"type": "string", "description": "Optional label."},
                },
                "required": ["a"],
            },
        )
    ]
    assert registry.schemas()[0].to_openai() == {
        "type": "function",
        "name": "add",
        "description": "Add two numbers and label the sum.",
        "parameters": registry.schemas()[0].parameters,
    }


def test_schema_with_rest_docstring_and_string_annotations() -> None:
    registry = ToolRegistry()

    @registry.register
    def lookup(city: str, limit: int = 3) -> list[str]:
        """Look up places.

        :param str city: City to search,
            in English.
        :param limit: At most this many results.
        :type limit: int
        :returns: names
        """
        return []

    assert registry.schemas()[0] == ToolSchema(
        name="lookup",
        description="Look up places.",
        parameters={
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City to search, in English."},
                "limit": {
                    "type": "integer",
                    "description": "At most this many results.",
                    "default": 3,
                },
            },
            "required": ["city"],
        },
    )


def test_schema_without_parameters_or_docstring() -> None:
    registry = ToolRegistry()

    @registry.register
    def now() -> str:
        return "12:00"

    assert registry.schemas() == [
        ToolSchema("now", "", {"type": "object", "properties": {}, "required": []})
    ]


def test_schema_of_literal_enum_list_dict_and_constraints() -> None:
    registry = ToolRegistry()

    @registry.register
    def forecast(
        unit: Unit,
        maybe: int | None,
        mode: Literal["brief", "full"] = "brief",
        only: Literal["rain"] = "rain",
        days: Annotated[int, Field(ge=1, le=7, description="Days ahead.")] = 1,
        tags: list[str] | None = None,
        weights: dict[str, float] | None = None,
        either: int | str | None = None,
    ) -> None:
        """Forecast."""

    assert _parameters(registry, "forecast") == {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "mode": {"type": "string", "enum": ["brief", "full"], "default": "brief"},
            "only": {"type": "string", "enum": ["rain"], "default": "rain"},
            "days": {
                "type": "integer",
                "description": "Days ahead.",
                "default": 1,
                "minimum": 1,
                "maximum": 7,
            },
            "tags": {"type": "array", "items": {"type": "string"}},
            "weights": {"type": "object", "additionalProperties": {"type": "number"}},
            "either": {
                "anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}],
                "default": None,
            },
        },
        "required": ["unit", "maybe"],
    }


def test_models_and_dataclasses_are_inlined_without_titles() -> None:
    registry = ToolRegistry()

    @registry.register
    def visit(place: Place, window: Window | None = None, stops: list[Place] | None = None) -> None:
        """Plan a visit.

        Args:
            window: When to go.
        """

    parameters = _parameters(registry, "visit")
    place = {
        "type": "object",
        "description": "A place on earth.",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city"],
    }
    assert parameters == {
        "type": "object",
        "properties": {
            "place": place,
            "window": {
                "type": "object",
                "description": "When to go.",
                "properties": {
                    "start": {"type": "integer"},
                    "end": {"type": "integer", "default": 10},
                },
                "required": ["start"],
            },
            "stops": {"type": "array", "items": place},
        },
        "required": ["place"],
    }
    assert not {"$ref", "$defs", "title", "allOf"} & _keys_anywhere(parameters)
    json.dumps(parameters)  # plain JSON data


def test_parameter_names_that_clash_with_schema_or_pydantic_words() -> None:
    registry = ToolRegistry()

    @registry.register
    def note(title: str, json: bool, model_config: int = 0) -> str:
        """Write a note.

        Args:
            title: The note's title.
        """
        return f"{title}:{json}:{model_config}"

    assert _parameters(registry, "note") == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "The note's title."},
            "json": {"type": "boolean"},
            "model_config": {"type": "integer", "default": 0},
        },
        "required": ["title", "json"],
    }


def test_docstring_google_section_variants() -> None:
    registry = ToolRegistry()

    @registry.register
    def move(x: int, y: int, speed: float = 1.0) -> None:
        """Arguments:
            x (int): Horizontal
              position.

            y: Vertical position.
        Raises:
            speed: not a parameter description, just text in another section.
        """

    parameters = _parameters(registry, "move")
    assert registry.schemas()[0].description == ""
    assert parameters["properties"]["x"]["description"] == "Horizontal position."
    assert parameters["properties"]["y"]["description"] == "Vertical position."
    assert "description" not in parameters["properties"]["speed"]


def test_register_overrides_and_returns_the_function() -> None:
    registry = ToolRegistry()

    def greet(who: str) -> str:
        """Say hello."""
        return f"hello {who}"

    assert registry.register(name="say_hi", description="Greets someone.")(greet) is greet
    assert registry.register(greet) is greet
    assert registry.names == ["say_hi", "greet"]
    assert "say_hi" in registry and "nope" not in registry
    assert len(registry) == 2
    assert registry.schemas()[0].description == "Greets someone."
    assert registry.schemas()[1].description == "Say hello."
    assert greet("x") == "hello x"

    registry.unregister("say_hi")
    assert registry.names == ["greet"]
    assert registry.get("say_hi") is None
    with pytest.raises(KeyError, match=r"'say_hi'.*greet"):
        registry.unregister("say_hi")


def test_registration_errors_name_the_function_and_parameter() -> None:
    registry = ToolRegistry()

    def star_args(*values: int) -> None: ...

    def star_kwargs(a: int, **options: str) -> None: ...

    def untyped(a: int, b) -> None: ...

    def opaque(handle: Sock) -> None: ...

    def recursive(tree: TreeNode) -> None: ...

    with pytest.raises(TypeError, match=r"'star_args'.*'values'.*\*args"):
        registry.register(star_args)
    with pytest.raises(TypeError, match=r"'star_kwargs'.*'options'.*\*\*kwargs"):
        registry.register(star_kwargs)
    with pytest.raises(TypeError, match=r"'untyped'.*parameter 'b' needs a type annotation"):
        registry.register(untyped)
    with pytest.raises(TypeError, match=r"'opaque' parameter 'handle'.*Sock"):
        registry.register(opaque)
    with pytest.raises(TypeError, match=r"'recursive'.*recursive type 'TreeNode'"):
        registry.register(recursive)

    class Local:
        pass

    def local_type(thing: Local) -> None: ...

    with pytest.raises(TypeError, match=r"'local_type' parameter 'thing'.*'Local'.*module level"):
        registry.register(local_type)
    with pytest.raises(ValueError, match=r"invalid tool name '<lambda>'"):
        registry.register(lambda: None)
    with pytest.raises(ValueError, match=r"invalid tool name 'has space'"):
        registry.register(name="has space")(lambda: None)

    def dup() -> None: ...

    registry.register(dup)
    with pytest.raises(ValueError, match=r"'dup' is already registered"):
        registry.register(dup)
    assert registry.names == ["dup"]


# --- calls ---------------------------------------------------------------------------------------


async def test_async_tool_with_json_string_arguments_coerced() -> None:
    registry = ToolRegistry()
    seen: list[Any] = []

    @registry.register
    async def plan(place: Place, unit: Unit, window: Window, days: int = 1) -> str:
        seen.extend([place, unit, window, days])
        return "ok"

    result = await registry.call(
        "plan",
        '{"place": {"city": "Oslo"}, "unit": "fahrenheit", "window": {"start": 2}, "days": "3"}',
        call_id="c1",
    )
    assert (result.ok, result.value, result.error, result.call_id, result.name) == (
        True,
        "ok",
        None,
        "c1",
        "plan",
    )
    assert seen == [Place(city="Oslo"), Unit.FAHRENHEIT, Window(start=2), 3]
    assert result.duration_s >= 0


async def test_sync_tool_runs_in_a_thread_without_blocking_the_loop() -> None:
    registry = ToolRegistry()
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    release = threading.Event()

    @registry.register
    def blocking(x: int, /, y: int = 2) -> tuple[int, bool]:
        loop.call_soon_threadsafe(started.set)
        released = release.wait(timeout=10)
        return threading.get_ident(), released and x + y == 3

    task = asyncio.create_task(registry.call("blocking", {"x": 1, "y": 2}))
    await started.wait()  # the loop runs while the tool blocks
    release.set()
    result = await task
    assert result.ok, result.error
    thread_id, released = result.value
    assert thread_id != threading.get_ident()
    assert released


async def test_arguments_none_or_empty_string_mean_no_arguments() -> None:
    registry = ToolRegistry()

    @registry.register
    def ping() -> str:
        return "pong"

    no_arguments: tuple[Any, ...] = (None, "", "  ", {})
    for arguments in no_arguments:
        result = await registry.call("ping", arguments)
        assert result.value == "pong", arguments


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": "x"}', r"argument 'a': Input should be a valid integer.*\(got 'x'\)"),
        ("{}", r"argument 'a': Field required"),
        ('{"a": 1, "zz": 2}', r"argument 'zz': Extra inputs are not permitted"),
        (
            '{"a": 1, "place": {"city": 5}}',
            r"argument 'place.city': Input should be a valid string",
        ),
        (
            '{"a": 1, "unit": "kelvin"}',
            r"argument 'unit': Input should be 'celsius' or 'fahrenheit'",
        ),
        ('{"a": 1', r"arguments are not valid JSON"),
        ("[1, 2]", r"arguments must be a JSON object, got list"),
        (["a"], r"arguments must be a JSON object string or a mapping, got list"),
    ],
)
async def test_bad_arguments_give_a_failed_result(arguments: Any, expected: str) -> None:
    registry = ToolRegistry()
    calls: list[int] = []

    @registry.register
    def measure(a: int, place: Place | None = None, unit: Unit = Unit.CELSIUS) -> int:
        calls.append(a)
        return a

    result = await registry.call("measure", arguments, call_id="c9")
    assert not result.ok
    assert result.value is None and result.call_id == "c9"
    assert result.error is not None
    assert result.error.startswith("invalid arguments for tool 'measure': ")
    assert re.search(expected, result.error), result.error
    assert calls == []
    assert result.to_payload() == {"error": result.error}


async def test_tool_exceptions_become_failed_results() -> None:
    registry = ToolRegistry()

    @registry.register
    async def explode() -> None:
        raise ValueError("boom")

    @registry.register
    def explode_quietly() -> None:
        raise KeyError

    @registry.register
    async def upstream_timeout() -> None:
        raise TimeoutError("upstream too slow")

    @registry.register
    async def cancels_inside() -> None:
        inner = asyncio.create_task(asyncio.Event().wait())
        inner.cancel()
        await inner

    assert (await registry.call("explode", None)).error == "ValueError: boom"
    assert (await registry.call("explode_quietly", None)).error == "KeyError"
    assert (await registry.call("upstream_timeout", None)).error == (
        "TimeoutError: upstream too slow"
    )
    result = await registry.call("cancels_inside", None)
    assert (result.ok, result.error) == (False, "CancelledError")


async def test_unknown_tool_names_the_known_ones() -> None:
    registry = ToolRegistry()
    result = await registry.call("missing", {})
    assert result.error == "unknown tool 'missing'; known tools: (none registered)"

    @registry.register
    def one() -> None: ...

    @registry.register
    def two() -> None: ...

    result = await registry.call("missing", {}, call_id="x")
    assert (result.ok, result.call_id, result.name) == (False, "x", "missing")
    assert result.error == "unknown tool 'missing'; known tools: one, two"


async def test_async_tool_is_cancelled_at_the_timeout() -> None:
    registry = ToolRegistry()
    cancelled = asyncio.Event()

    @registry.register
    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    result = await registry.call("forever", None, timeout=0.05)
    assert (result.ok, result.error) == (False, "tool 'forever' timed out after 0.05s")
    assert cancelled.is_set()
    assert result.duration_s >= 0.05


async def test_sync_tool_timeout_abandons_the_thread() -> None:
    registry = ToolRegistry()
    release = threading.Event()
    finished = threading.Event()

    @registry.register
    def stuck() -> None:
        release.wait(timeout=10)
        finished.set()

    result = await registry.call("stuck", None, timeout=0.05)
    assert result.error == "tool 'stuck' timed out after 0.05s"
    assert not finished.is_set()  # the thread cannot be stopped; it is still running
    release.set()
    assert await asyncio.to_thread(finished.wait, 10)


async def test_cancelling_call_propagates_and_cancels_the_tool() -> None:
    registry = ToolRegistry()
    started = asyncio.Event()
    tool_cancelled = asyncio.Event()

    @registry.register
    async def long_job() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            tool_cancelled.set()
            raise

    task = asyncio.create_task(registry.call("long_job", None, timeout=None))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tool_cancelled.is_set()


async def test_cancelling_call_of_a_sync_tool_propagates() -> None:
    registry = ToolRegistry()
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    release = threading.Event()
    finished = threading.Event()

    @registry.register
    def slow() -> None:
        loop.call_soon_threadsafe(started.set)
        release.wait(timeout=10)
        finished.set()

    task = asyncio.create_task(registry.call("slow", None))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert await asyncio.to_thread(finished.wait, 10)


async def test_timeout_must_be_positive() -> None:
    registry = ToolRegistry()
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        await registry.call("x", None, timeout=0)


async def test_callable_object_with_async_call_is_awaited() -> None:
    registry = ToolRegistry()

    class Counter:
        def __init__(self) -> None:
            self.count = 0

        async def __call__(self, step: int = 1) -> int:
            self.count += step
            return self.count

    counter = Counter()
    registry.register(name="count")(counter)
    tool = registry.get("count")
    assert tool is not None and tool.is_async
    assert (await registry.call("count", {"step": 2})).value == 2


# --- results -------------------------------------------------------------------------------------


def _ok(value: Any) -> ToolResult:
    return ToolResult(call_id="c", name="t", ok=True, value=value, error=None, duration_s=0.0)


def test_payload_shapes() -> None:
    assert _ok({"a": 1}).to_payload() == {"result": {"a": 1}}
    assert _ok(None).to_payload() == {"result": None}
    assert _ok(Place(city="Rome")).to_payload() == {"result": {"city": "Rome", "country": None}}
    assert _ok([Window(start=1)]).to_payload() == {"result": [{"start": 1, "end": 10}]}
    assert _ok(Unit.CELSIUS).to_payload() == {"result": "celsius"}
    assert _ok((1, 2)).to_payload() == {"result": [1, 2]}
    assert _ok(np.arange(3)).to_payload() == {"result": [0, 1, 2]}
    assert _ok({"n": np.int64(4), "nan": math.nan}).to_payload() == {
        "result": {"n": 4, "nan": None}
    }
    assert _ok(b"text").to_payload() == {"result": "text"}
    # bytes that are not UTF-8 go out as URL-safe base64
    assert _ok(b"\xff\x00").to_payload() == {"result": "_wA="}

    class Opaque:
        def __str__(self) -> str:
            return "<opaque>"

    assert _ok({"o": Opaque()}).to_payload() == {"result": {"o": "<opaque>"}}

    failed = ToolResult(call_id=None, name="t", ok=False, value=None, error="bad", duration_s=0.1)
    assert failed.to_payload() == {"error": "bad"}
    assert json.loads(failed.to_json()) == {"error": "bad"}
    assert json.loads(_ok({"text": "café", "x": math.inf}).to_json()) == {
        "result": {"text": "café", "x": None}
    }


# --- tools described by a JSON schema ------------------------------------------------------------


async def test_schema_tool_gets_the_arguments_and_reports_tool_errors() -> None:
    registry = ToolRegistry()
    seen: list[dict[str, Any]] = []

    async def remote(**arguments: Any) -> Any:
        seen.append(arguments)
        if arguments.get("city") == "nowhere":
            raise ToolError("no such city: nowhere")
        return {"temp": 3}

    registry.register_schema(
        "weather",
        "Weather in a city.",
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "title": "weatherArguments",
            "properties": {"city": {"title": "City", "$ref": "#/$defs/City"}},
            "required": ["city"],
            "$defs": {"City": {"type": "string", "description": "A city."}},
        },
        remote,
    )
    assert registry.schemas() == [
        ToolSchema(
            "weather",
            "Weather in a city.",
            {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "A city."}},
                "required": ["city"],
            },
        )
    ]
    ok = await registry.call("weather", '{"city": "Oslo", "extra-key": 1}')
    assert ok.ok and ok.value == {"temp": 3}
    assert seen == [{"city": "Oslo", "extra-key": 1}]  # passed on as given: the tool validates
    failed = await registry.call("weather", {"city": "nowhere"})
    assert not failed.ok and failed.error == "no such city: nowhere"
    not_object = await registry.call("weather", "[1]")
    assert not not_object.ok and "must be a JSON object" in (not_object.error or "")
    assert len(seen) == 2

    with pytest.raises(ValueError, match="already registered"):
        registry.register_schema("weather", "", {}, remote)
    with pytest.raises(ValueError, match="invalid tool name"):
        registry.register_schema("has space", "", {}, remote)
    with pytest.raises(ValueError, match="recursive schema"):
        registry.register_schema(
            "tree",
            "",
            {
                "properties": {"n": {"$ref": "#/$defs/N"}},
                "$defs": {"N": {"items": {"$ref": "#/$defs/N"}}},
            },
            remote,
        )
    registry.register_schema("bare", "", {}, remote)
    assert registry.get("bare") is not None
    assert _parameters(registry, "bare") == {"type": "object", "properties": {}, "required": []}
