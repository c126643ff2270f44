"""Tools (function calling): JSON schemas from Python functions, and safe execution of calls.

A tool is a plain Python function, sync or async. Its JSON schema comes from the type hints
(through pydantic) and the docstring (Google ``Args:`` or reST ``:param x:``), and is
self-contained (no ``$ref``), so the same schema works for OpenAI and Gemini declarations.

``ToolRegistry.call`` never raises for a problem of the tool or of the model's arguments:
it returns a failed ``ToolResult`` that can be sent back to the model, which can then retry.
Only cancellation of ``call`` itself propagates.

Tools described by a JSON schema rather than a signature (e.g. those of an MCP server) are
added with ``ToolRegistry.register_schema``; a tool reports a failure meant for the model by
raising ``ToolError``.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Accepted by both OpenAI (^[a-zA-Z0-9_-]{1,64}$) and Gemini (starts with a letter or "_").
_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_NAME_RULE = "1-64 characters from A-Z a-z 0-9 _ -, not starting with a digit or '-'"


class ToolError(Exception):
    """Raised by a tool to report a failure to the model: the message is the error it sees.

    Unlike other exceptions it is an expected outcome (a remote tool server is down, a remote
    tool failed), so it is logged without a traceback.
    """


@dataclass(frozen=True)
class ToolSchema:
    """What the model sees of a tool: its name, what it does and a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]

    def to_openai(self) -> dict[str, Any]:
        """The flat function-tool shape of the OpenAI Realtime (GA) API."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.parameters),
        }


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call; ``value`` is the tool's raw return value when ``ok``."""

    call_id: str | None
    name: str
    ok: bool
    value: Any
    error: str | None
    duration_s: float

    def to_payload(self) -> dict[str, Any]:
        """``{"result": value}`` or ``{"error": message}``, converted to JSON-compatible data."""
        if not self.ok:
            return {"error": self.error or "unknown error"}
        return {"result": _to_jsonable(self.value)}

    def to_json(self) -> str:
        """The payload as a JSON string, as tool outputs are sent to the model."""
        return json.dumps(self.to_payload(), ensure_ascii=False)


@dataclass(frozen=True)
class Tool:
    """A registered function with its schema and the pydantic model that validates its arguments."""

    name: str
    description: str
    func: Callable[..., Any]
    schema: ToolSchema
    is_async: bool
    _arguments_model: type[BaseModel] = field(repr=False)
    _positional_only: tuple[str, ...] = field(repr=False)
    answered_by_caller: bool = False
    """Declared by schema only: the code that declared it sends each call's output
    (``Realtime.send_tool_output``); ``func`` is never run."""
    takes_json: bool = False
    """Described by a JSON schema (``register_schema``): ``func`` gets the model's arguments
    as keyword arguments, checked only to be a JSON object (the tool validates them)."""

    def bind(self, arguments: Mapping[str, Any] | str | None) -> tuple[list[Any], dict[str, Any]]:
        """Validate and coerce the model's arguments into ``(args, kwargs)`` for ``func``.

        Raises ``ValueError`` with a message naming each bad argument.
        """
        if self.takes_json:
            try:
                return [], _parse_arguments(arguments)
            except ValueError as exc:
                raise ValueError(f"invalid arguments for tool {self.name!r}: {exc}") from None
        try:
            validated = self._arguments_model.model_validate(_parse_arguments(arguments))
        except ValidationError as exc:
            problems = "; ".join(_describe_error(err) for err in exc.errors())
            raise ValueError(f"invalid arguments for tool {self.name!r}: {problems}") from None
        except ValueError as exc:
            raise ValueError(f"invalid arguments for tool {self.name!r}: {exc}") from None
        # Fields are named by position (f0, f1, ...) and aliased to the parameter names, so that
        # parameters like `json` or `_id` do not clash with pydantic's own attribute rules.
        values = {
            info.alias or key: getattr(validated, key)
            for key, info in type(validated).model_fields.items()
        }
        args = [values.pop(name) for name in self._positional_only]
        return args, values


class ToolRegistry:
    """The functions a model may call, keyed by name, in registration order."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    @overload
    def register(
        self, func: F, *, name: str | None = None, description: str | None = None
    ) -> F: ...

    @overload
    def register(
        self, func: None = None, *, name: str | None = None, description: str | None = None
    ) -> Callable[[F], F]: ...

    def register(
        self,
        func: F | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> F | Callable[[F], F]:
        """Register a function as a tool; use as ``@reg.register`` or ``@reg.register(name=...)``.

        The function is returned unchanged. Raises ``TypeError`` for a signature that cannot be
        described (``*args``, ``**kwargs``, missing annotations) and ``ValueError`` for an invalid
        or already registered name.
        """

        def decorator(fn: F) -> F:
            tool = _build_tool(fn, name=name, description=description)
            if tool.name in self._tools:
                raise ValueError(
                    f"a tool named {tool.name!r} is already registered; "
                    "pass name=... to register it under another name, or unregister the old one"
                )
            self._tools[tool.name] = tool
            return fn

        return decorator if func is None else decorator(func)

    def declare(self, name: str, description: str, parameters: Mapping[str, Any]) -> None:
        """Declare a tool by its JSON schema only; its calls are answered by the declaring code.

        Declaring a name again replaces the earlier declaration (a session update resends tools).
        """
        if not _NAME_PATTERN.fullmatch(name):
            raise ValueError(f"invalid tool name {name!r}: use {_NAME_RULE}")
        existing = self._tools.get(name)
        if existing is not None and not existing.answered_by_caller:
            raise ValueError(f"a Python tool named {name!r} is already registered")
        schema = dict(parameters) or {"type": "object", "properties": {}}
        schema.setdefault("required", [])

        def answered_elsewhere(**_: Any) -> None:
            raise RuntimeError(f"tool {name!r} is answered by the code that declared it")

        self._tools[name] = Tool(
            name=name,
            description=description,
            func=answered_elsewhere,
            schema=ToolSchema(name, description, schema),
            is_async=False,
            _arguments_model=create_model(
                f"{name}_arguments", __config__=ConfigDict(extra="allow")
            ),
            _positional_only=(),
            answered_by_caller=True,
        )

    def register_schema(
        self,
        name: str,
        description: str,
        parameters: Mapping[str, Any],
        func: Callable[..., Awaitable[Any]],
    ) -> None:
        """Register an async function whose arguments are described by a JSON schema.

        The schema is sent to the model as given, made self-contained (``$ref`` inlined,
        titles dropped) as for Python tools. ``func`` is called with the model's arguments as
        keyword arguments; it validates them itself and may raise ``ToolError``. Raises
        ``ValueError`` for an invalid or already registered name or a recursive schema.
        """
        if not _NAME_PATTERN.fullmatch(name):
            raise ValueError(f"invalid tool name {name!r}: use {_NAME_RULE}")
        if name in self._tools:
            raise ValueError(f"a tool named {name!r} is already registered")
        try:
            schema = _clean_schema(copy.deepcopy(dict(parameters)))
        except _RecursiveTypeError as exc:
            raise ValueError(
                f"tool {name!r}: recursive schema {exc.args[0]!r} cannot be described "
                "in a self-contained function declaration"
            ) from None
        except KeyError as exc:
            raise ValueError(f"tool {name!r}: the schema refers to a missing {exc}") from None
        for key in ("$schema", "$id"):  # draft markers some servers add; not for the model
            schema.pop(key, None)
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        schema.setdefault("required", [])
        self._tools[name] = Tool(
            name=name,
            description=description,
            func=func,
            schema=ToolSchema(name, description, schema),
            is_async=True,
            _arguments_model=create_model(
                f"{name}_arguments", __config__=ConfigDict(extra="allow")
            ),
            _positional_only=(),
            takes_json=True,
        )

    def unregister(self, name: str) -> None:
        """Remove a tool; raises ``KeyError`` naming the known tools if there is none by that name."""
        if name not in self._tools:
            raise KeyError(f"no tool named {name!r}; known tools: {self._known()}")
        del self._tools[name]

    def schemas(self) -> list[ToolSchema]:
        """The schemas of all tools, in registration order."""
        return [tool.schema for tool in self._tools.values()]

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        *,
        call_id: str | None = None,
        timeout: float | None = 30.0,  # noqa: ASYNC109 - part of the tool-call contract
    ) -> ToolResult:
        """Run a tool with the model's arguments (a JSON string or a mapping).

        Failures (unknown tool, bad arguments, an exception in the tool, a timeout) come back
        as ``ToolResult(ok=False, error=...)``. Async tools are cancelled at the timeout; sync
        tools run in a worker thread, which cannot be killed: on timeout the result is
        abandoned but the thread runs to completion. Cancelling ``call`` cancels an async tool
        and re-raises ``CancelledError``.
        """
        if timeout is not None and timeout <= 0:
            raise ValueError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        started = time.perf_counter()

        def failed(error: str) -> ToolResult:
            duration = time.perf_counter() - started
            return ToolResult(call_id, name, False, None, error, duration)

        tool = self._tools.get(name)
        if tool is None:
            return failed(f"unknown tool {name!r}; known tools: {self._known()}")
        try:
            args, kwargs = tool.bind(arguments)
        except ValueError as exc:
            logger.debug("tool call %s rejected: %s", call_id, exc)
            return failed(str(exc))

        try:
            async with asyncio.timeout(timeout) as deadline:
                value = await _invoke(tool, args, kwargs)
        except TimeoutError as exc:
            if deadline.expired():
                logger.warning("tool %r (call %s) timed out after %gs", name, call_id, timeout)
                return failed(f"tool {name!r} timed out after {timeout:g}s")
            return failed(_describe_exception(name, call_id, exc))
        except ToolError as exc:
            logger.info("tool %r (call %s) failed: %s", name, call_id, exc)
            return failed(str(exc) or f"tool {name!r} failed")
        except asyncio.CancelledError as exc:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # `call` itself is being cancelled
            # The tool cancelled something of its own and let the CancelledError escape.
            return failed(_describe_exception(name, call_id, exc))
        except Exception as exc:
            return failed(_describe_exception(name, call_id, exc))
        return ToolResult(call_id, name, True, value, None, time.perf_counter() - started)

    def _known(self) -> str:
        return ", ".join(self._tools) or "(none registered)"


async def _invoke(tool: Tool, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if tool.is_async:
        return await tool.func(*args, **kwargs)
    value = await asyncio.to_thread(functools.partial(tool.func, *args, **kwargs))
    if inspect.isawaitable(value):  # a sync wrapper that returned a coroutine
        value = await value
    return value


def _describe_exception(name: str, call_id: str | None, exc: BaseException) -> str:
    logger.warning("tool %r (call %s) raised", name, call_id, exc_info=exc)
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _parse_arguments(arguments: Mapping[str, Any] | str | None) -> Any:
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}  # some models send "" for a tool without parameters
        try:
            parsed = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ValueError(f"arguments are not valid JSON ({exc}): {arguments[:200]!r}") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(parsed).__name__}")
        return parsed
    if isinstance(arguments, Mapping):
        return dict(arguments)
    raise ValueError(
        f"arguments must be a JSON object string or a mapping, got {type(arguments).__name__}"
    )


def _describe_error(error: Any) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    where = f"argument {loc!r}" if loc else "arguments"
    if error["type"] in ("missing", "extra_forbidden"):
        return f"{where}: {error['msg']}"
    got = repr(error["input"])
    return f"{where}: {error['msg']} (got {got[:100]}{'...' if len(got) > 100 else ''})"


def _to_jsonable(value: Any) -> Any:
    def fallback(obj: Any) -> Any:
        tolist = getattr(obj, "tolist", None)  # NumPy arrays and scalars
        return tolist() if callable(tolist) else str(obj)

    for bytes_mode in ("utf8", "base64"):
        try:
            return pydantic_core.to_jsonable_python(
                value, fallback=fallback, inf_nan_mode="null", bytes_mode=bytes_mode
            )
        except (pydantic_core.PydanticSerializationError, ValueError):
            continue  # bytes that are not UTF-8: retry as base64
    return str(value)


# --- building a tool from a function ---------------------------------------------------------


def _build_tool(func: Callable[..., Any], *, name: str | None, description: str | None) -> Tool:
    tool_name = name if name is not None else getattr(func, "__name__", None)
    if tool_name is None:
        raise ValueError(f"{func!r} has no __name__; pass name=... to register it")
    if not _NAME_PATTERN.fullmatch(tool_name):
        raise ValueError(f"invalid tool name {tool_name!r}: use {_NAME_RULE}")

    summary, param_docs = _parse_docstring(inspect.getdoc(func))
    signature = _signature(func, tool_name)

    fields: dict[str, Any] = {}
    positional_only: list[str] = []
    for index, param in enumerate(signature.parameters.values()):
        where = f"tool {tool_name!r} ({_qualname(func)}) parameter {param.name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{where}: *args and **kwargs cannot be described to a model")
        if param.annotation is param.empty:
            raise TypeError(f"{where} needs a type annotation")
        if param.kind is param.POSITIONAL_ONLY:
            positional_only.append(param.name)
        default: Any = ... if param.default is param.empty else param.default
        doc = param_docs.get(param.name)
        # description=None would erase one given in Annotated[..., Field(description=...)]
        info = (
            Field(default, alias=param.name, description=doc)
            if doc
            else Field(default, alias=param.name)
        )
        fields[f"f{index}"] = (param.annotation, info)

    try:
        model = create_model(
            f"{tool_name}_arguments",
            __config__=ConfigDict(extra="forbid"),
            **fields,
        )
        parameters = _clean_schema(model.model_json_schema())
    except _RecursiveTypeError as exc:
        raise TypeError(
            f"tool {tool_name!r}: recursive type {exc.args[0]!r} cannot be described "
            "in a self-contained function declaration"
        ) from None
    except Exception as exc:
        raise TypeError(_unsupported_type_message(tool_name, signature, exc)) from exc

    parameters.pop("additionalProperties", None)  # enforced on validation; Gemini rejects it
    parameters.setdefault("required", [])
    tool_description = description if description is not None else summary
    return Tool(
        name=tool_name,
        description=tool_description,
        func=func,
        schema=ToolSchema(tool_name, tool_description, parameters),
        is_async=_is_async(func),
        _arguments_model=model,
        _positional_only=tuple(positional_only),
    )


def _signature(func: Callable[..., Any], tool_name: str) -> inspect.Signature:
    """The signature with string annotations (``from __future__ import annotations``) resolved."""
    try:
        return inspect.signature(func, eval_str=True)
    except NameError as exc:
        missing = exc.name or ""
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot read the signature of tool {tool_name!r}: {exc}") from exc
    # Annotations are resolved in the function's module: a class local to a function is not.
    where = f"tool {tool_name!r}"
    for param in inspect.signature(func).parameters.values():
        if isinstance(param.annotation, str) and re.search(rf"\b{missing}\b", param.annotation):
            where = f"tool {tool_name!r} parameter {param.name!r}"
            break
    raise TypeError(
        f"{where}: cannot resolve the type {missing!r} in the annotations; "
        "define it at module level of the tool's module"
    )


def _qualname(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or type(func).__qualname__


def _is_async(func: Callable[..., Any]) -> bool:
    target: Any = func
    while isinstance(target, functools.partial):
        target = target.func
    call = getattr(target, "__call__", None)  # noqa: B004 - looking for an async __call__
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(call)


def _unsupported_type_message(tool_name: str, signature: inspect.Signature, exc: Exception) -> str:
    for param in signature.parameters.values():
        try:
            TypeAdapter(param.annotation).json_schema()
        except Exception as param_exc:
            return (
                f"tool {tool_name!r} parameter {param.name!r}: type {param.annotation!r} "
                f"cannot be described as JSON schema ({type(param_exc).__name__}: {param_exc})"
            )
    return f"tool {tool_name!r}: cannot build a JSON schema ({type(exc).__name__}: {exc})"


class _RecursiveTypeError(Exception):
    """A ``$ref`` that points back at one of its own ancestors."""


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_VALUES = ("items", "additionalProperties", "not", "contains", "propertyNames")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$ref``s, drop ``title``, ``discriminator`` and ``additionalProperties: false``,
    simplify optional-with-None."""
    defs = schema.get("$defs", {})
    return _clean_node(schema, defs, frozenset())


def _clean_node(
    node: dict[str, Any], defs: dict[str, Any], active: frozenset[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = ref.rsplit("/", 1)[-1]
        if target in active:
            raise _RecursiveTypeError(target)
        out.update(_clean_node(defs[target], defs, active | {target}))
    for key, value in node.items():
        if key in ("$ref", "$defs", "definitions", "title", "discriminator"):
            continue
        if key == "additionalProperties" and value is False:
            # Closed objects are enforced when arguments are validated; providers differ on
            # accepting the keyword and pydantic versions differ on emitting it.
            continue
        if key in _SCHEMA_MAPS:
            value = {k: _clean_node(v, defs, active) for k, v in value.items()}
        elif key in _SCHEMA_VALUES and isinstance(value, dict):
            value = _clean_node(value, defs, active)
        elif key in _SCHEMA_LISTS:
            value = [_clean_node(v, defs, active) for v in value]
        out[key] = value  # siblings of a $ref (description, default) override the target's

    all_of = out.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        out = {**out.pop("allOf")[0], **out}
    any_of = out.get("anyOf")
    if (
        out.get("default", ...) is None
        and isinstance(any_of, list)
        and len(any_of) == 2
        and {"type": "null"} in any_of
    ):
        # `x: T | None = None`: describe it as an optional T; null is still accepted.
        other = next(s for s in any_of if s != {"type": "null"})
        out = {**other, **{k: v for k, v in out.items() if k not in ("anyOf", "default")}}
    if "const" in out and "enum" not in out:
        out["enum"] = [out.pop("const")]  # Gemini's schema has enum but no const
    ordered = {key: out[key] for key in ("type", "description") if key in out}
    return ordered | out


# --- docstrings --------------------------------------------------------------------------------

_GOOGLE_ARGS = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments)\s*:\s*$", re.IGNORECASE
)
_GOOGLE_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns?|Yields?|"
    r"Raises|Examples?|Notes?|Attributes|See Also|Warnings?|Todo|References)\s*:\s*$",
    re.IGNORECASE,
)
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_REST_FIELD = re.compile(r"^:(\w+)((?:\s+[^:]+?)?)\s*:\s*(.*)$")
_REST_PARAM_KINDS = ("param", "parameter", "arg", "argument", "key", "keyword")


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into its first paragraph and a description per parameter.

    Parameters are read from a Google-style ``Args:`` section or reST ``:param name:`` fields.
    Multi-line descriptions are joined into one line.
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped or _GOOGLE_SECTION.match(stripped) or stripped.startswith(":"):
            break
        summary.append(stripped)
    params = _google_params(lines)
    params.update({k: v for k, v in _rest_params(lines).items() if k not in params})
    return " ".join(summary), params


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, list[str]] = {}
    in_section = False
    header_indent = entry_indent = 0
    current: list[str] | None = None
    for line in lines:
        stripped = line.strip()
        if not in_section:
            if _GOOGLE_ARGS.match(stripped):
                in_section, header_indent, entry_indent, current = True, _indent(line), -1, None
            continue
        if not stripped:
            continue
        indent = _indent(line)
        if indent <= header_indent:  # the section ended; another Args section may follow
            in_section = bool(_GOOGLE_ARGS.match(stripped))
            header_indent, entry_indent, current = indent, -1, None
            continue
        if entry_indent < 0:
            entry_indent = indent
        match = _GOOGLE_ENTRY.match(stripped) if indent <= entry_indent else None
        if match:
            current = params.setdefault(match.group(1), [])
            if match.group(2):
                current.append(match.group(2))
        elif current is not None:
            current.append(stripped)
    return {name: " ".join(words) for name, words in params.items() if words}


def _rest_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, list[str]] = {}
    current: list[str] | None = None
    field_indent = 0
    for line in lines:
        stripped = line.strip()
        match = _REST_FIELD.match(stripped)
        if match:
            kind, spec, text = match.groups()
            current = None
            words = spec.split()
            if kind in _REST_PARAM_KINDS and words:
                current = params.setdefault(words[-1], [])  # `:param int x:` -> x
                field_indent = _indent(line)
                if text:
                    current.append(text)
        elif current is not None and stripped and _indent(line) > field_indent:
            current.append(stripped)
        else:
            current = None
    return {name: " ".join(words) for name, words in params.items() if words}
