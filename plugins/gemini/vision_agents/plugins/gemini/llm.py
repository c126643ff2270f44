"""Gemini as a streaming chat ``ChatLLM`` (``generate_content_stream``), for the voice pipeline.

``gemini.LLM(model=...)``: text streams out; function calls run through the core registry and
their results go back until the model answers; the latest camera still rides along with each
user turn as inline JPEG.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from google import genai
from google.genai import types

from vision_agents.core.llm.chat import ChatLLM, ChatRequest
from vision_agents.plugins.gemini.protocol import function_declaration, function_response

DEFAULT_CHAT_MODEL = "gemini-2.5-flash"


class LLM(ChatLLM):
    """Gemini chat, streamed. ``client`` is used as is when given."""

    provider_name: ClassVar[str] = "gemini_chat"

    def __init__(
        self,
        model: str = DEFAULT_CHAT_MODEL,
        *,
        api_key: str | None = None,
        client: genai.Client | None = None,
        http_options: types.HttpOptions | None = None,
        attach_video: bool = True,
        temperature: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(attach_video=attach_video, **options)
        if client is None:
            key = api_key or os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")
            if not key:
                raise ValueError(
                    "gemini.LLM needs an API key: pass api_key=..., or set GOOGLE_API_KEY or "
                    "GEMINI_API_KEY, or pass client=genai.Client(...)"
                )
            client = genai.Client(api_key=key, http_options=http_options)
        self.client = client
        self.model = model
        self.temperature = temperature

    def _contents(self, request: ChatRequest) -> list[types.Content]:
        contents = [
            types.Content(
                role="model" if m.role == "assistant" else "user", parts=[types.Part(text=m.text)]
            )
            for m in request.messages
        ]
        if request.image_jpeg is not None:
            image = types.Blob(data=request.image_jpeg, mime_type="image/jpeg")
            contents[-1].parts = [*(contents[-1].parts or []), types.Part(inline_data=image)]
        return contents

    def _config(self, with_tools: bool, system: str) -> types.GenerateContentConfig:
        config = types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=self.temperature,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        schemas = self.tools.schemas()
        if with_tools and schemas:
            config.tools = [
                types.Tool(function_declarations=[function_declaration(s) for s in schemas])
            ]
        return config

    async def _generate(self, request: ChatRequest) -> AsyncIterator[str]:
        contents = self._contents(request)
        for round_ in range(self.max_tool_rounds + 1):
            config = self._config(round_ < self.max_tool_rounds, request.system)
            stream = await self.client.aio.models.generate_content_stream(
                model=self.model, contents=contents, config=config
            )
            calls: list[types.FunctionCall] = []
            model_parts: list[types.Part] = []
            async for chunk in stream:
                content = chunk.candidates[0].content if chunk.candidates else None
                for part in (content.parts if content else None) or []:
                    if part.function_call is not None:
                        calls.append(part.function_call)
                        model_parts.append(part)
                    elif part.text and not part.thought:
                        model_parts.append(types.Part(text=part.text))
                        yield part.text
            if not calls:
                return
            contents.append(types.Content(role="model", parts=model_parts))
            responses: list[types.Part] = []
            for call in calls:
                call_id = call.id or uuid.uuid4().hex
                result = await self._execute_tool(call.name or "", call.args or {}, call_id)
                responses.append(types.Part(function_response=function_response(result)))
            contents.append(types.Content(role="user", parts=responses))
