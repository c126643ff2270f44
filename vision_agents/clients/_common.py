"""What the client surfaces share: picking a provider, building its ``Realtime``, settings."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from vision_agents.core.llm.realtime import Realtime, UnsupportedFeature

ApiKey = str | Callable[[], str | Awaitable[str]]
"""A key, or a sync/async function returning one, called at every connect and reconnect."""

PROVIDERS = ("gemini", "openai", "xai")
_API_TYPES = {
    "gemini": "gemini",
    "google": "gemini",
    "openai": "openai",
    "openai_realtime": "openai",
    "xai": "xai",
    "grok": "xai",
}


def detect_provider(config: Mapping[str, Any]) -> str | None:
    """The provider a config names: its ``api_type`` first, then its model name or base URL."""
    api_type = str(config.get("api_type") or "").lower()
    if api_type:
        return _API_TYPES.get(api_type)
    model = str(config.get("model") or "").lower()
    url = str(config.get("base_url") or config.get("url") or "").lower()
    if model.startswith("gemini"):
        return "gemini"
    if model.startswith("grok") or "x.ai" in url:
        return "xai"
    if model.startswith("gpt") and "realtime" in model:
        return "openai"
    return None


def build_realtime(
    provider: str,
    *,
    model: str | None = None,
    api_key: ApiKey | None = None,
    url: str | None = None,
    **options: Any,
) -> Realtime:
    """The provider's own ``Realtime`` (every surface is a layer over it)."""
    if provider == "gemini":
        from google.genai import types

        from vision_agents.plugins import gemini

        if url is not None:
            if options.get("http_options") is not None:
                raise ValueError("pass url=... or http_options=..., not both")
            options["http_options"] = types.HttpOptions(base_url=url)
        if model is not None:
            options["model"] = model
        return gemini.Realtime(api_key=api_key, **options)
    if provider in ("openai", "xai"):
        from vision_agents.plugins import openai, xai

        if url is not None:
            options["base_url"] = url
        if model is not None:
            options["model"] = model
        cls = openai.Realtime if provider == "openai" else xai.Realtime
        return cls(api_key=api_key, **options)
    raise ValueError(f"unknown provider {provider!r}; accepted: {', '.join(PROVIDERS)}")


async def update_options(realtime: Realtime, **options: Any) -> None:
    """The provider's ``update_options``; a clear error when it has none or not that option."""
    method = getattr(realtime, "update_options", None)
    if method is None:
        raise UnsupportedFeature(realtime.provider_name, "update_options")
    accepted = [
        name
        for name, param in inspect.signature(method).parameters.items()
        if param.kind is param.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"{realtime.provider_name} cannot update {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted) or 'none'}"
        )
    await method(**options)


def declare_tools(realtime: Realtime, tools: list[Mapping[str, Any]]) -> None:
    """Declare tools by schema (OpenAI function shape); their calls are answered by the caller.

    Replaces what was declared before; Python tools registered on the model stay.
    """
    declared = []
    for tool in tools:
        spec = tool.get("function", tool)  # also the nested chat-completions shape
        name = spec.get("name")
        if not isinstance(name, str):
            raise ValueError(f"a tool needs a 'name'; got {dict(tool)!r}")
        declared.append((name, str(spec.get("description", "")), spec.get("parameters") or {}))
    for old in list(realtime.tools.names):
        known = realtime.tools.get(old)
        if known is not None and known.answered_by_caller:
            realtime.tools.unregister(old)
    for name, description, parameters in declared:
        realtime.tools.declare(name, description, parameters)


async def apply_settings(realtime: Realtime, settings: Mapping[str, Any]) -> None:
    """Apply ``instructions``, ``tools`` and provider options to a session, live or not yet."""
    rest = dict(settings)
    instructions = rest.pop("instructions", None)
    tools = rest.pop("tools", None)
    if instructions is not None:
        if realtime.is_connected:
            await realtime.update_instructions(str(instructions))
        else:
            realtime.set_instructions(str(instructions))
    if tools is not None:
        declare_tools(realtime, list(tools))
        if realtime.is_connected:
            await realtime.update_tools()
    if rest:
        await update_options(realtime, **rest)
