"""Any OpenAI-compatible chat completions endpoint as a streaming ``ChatLLM``.

``openai.LLM(model=..., base_url=...)`` talks to OpenAI, or to a local llama.cpp / Ollama /
vLLM server. Replies stream as text; tool calls run through the core registry, their
results go back to the model, and it answers; the latest camera still rides along with each
user turn as an image for vision models (``attach_video=False`` for text-only models).
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from openai import AsyncOpenAI
from vision_agents.core.llm.chat import ChatLLM, ChatRequest


class LLM(ChatLLM):
    """Chat completions, streamed. ``client`` is used as is when given."""

    provider_name: ClassVar[str] = "openai_chat"

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: AsyncOpenAI | None = None,
        attach_video: bool = True,
        temperature: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(attach_video=attach_video, **options)
        self.model = model
        self.temperature = temperature
        if client is None:
            key = api_key or os.environ.get("OPENAI_API_KEY")
            if key is None:
                if base_url is None:
                    raise ValueError(
                        "openai.LLM needs an API key: pass api_key= or set OPENAI_API_KEY "
                        "(or pass base_url= of a local server that needs none)"
                    )
                key = "no-key"  # local servers (llama.cpp, Ollama, vLLM) ignore it
            client = AsyncOpenAI(api_key=key, base_url=base_url)
        self.client = client

    def _messages(self, request: ChatRequest) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        for message in request.messages[:-1]:
            messages.append({"role": message.role, "content": message.text})
        last = request.messages[-1]
        if request.image_jpeg is None:
            messages.append({"role": "user", "content": last.text})
        else:
            url = "data:image/jpeg;base64," + base64.b64encode(request.image_jpeg).decode()
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": last.text},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            )
        return messages

    def _tools(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {
                    "name": schema.name,
                    "description": schema.description,
                    "parameters": schema.parameters,
                },
            }
            for schema in self.tools.schemas()
        ]

    async def _generate(self, request: ChatRequest) -> AsyncIterator[str]:
        messages = self._messages(request)
        for round_ in range(self.max_tool_rounds + 1):
            kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True}
            tools = self._tools()
            if tools and round_ < self.max_tool_rounds:
                kwargs["tools"] = tools
            if self.temperature is not None:
                kwargs["temperature"] = self.temperature
            stream = await self.client.chat.completions.create(**kwargs)
            text: list[str] = []
            calls: dict[int, dict[str, str]] = {}
            async for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    text.append(delta.content)
                    yield delta.content
                for call in delta.tool_calls or []:
                    entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    if call.id:
                        entry["id"] = call.id
                    if call.function is not None:
                        entry["name"] += call.function.name or ""
                        entry["arguments"] += call.function.arguments or ""
            if not calls:
                return
            ordered = [calls[i] for i in sorted(calls)]
            messages.append(
                {
                    "role": "assistant",
                    "content": "".join(text) or None,
                    "tool_calls": [
                        {
                            "id": c["id"],
                            "type": "function",
                            "function": {"name": c["name"], "arguments": c["arguments"]},
                        }
                        for c in ordered
                    ],
                }
            )
            for call in ordered:
                result = await self._execute_tool(call["name"], call["arguments"], call["id"])
                messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": result.to_json()}
                )
