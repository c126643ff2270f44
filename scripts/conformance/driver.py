"""Drive another project's OpenAI Realtime client against a server, step by step.

Runs inside the peer's own virtualenv (``scripts/conformance/setup.sh``) and imports nothing
from vision_agents. The harness (``tests/test_conformance.py``) plays the server side; this
process plays the client with the peer's public API. Commands come as JSON lines on stdin,
results go out as JSON lines on stdout:

- ``{"step": "text", "prompt": ..., "expect": ...}``: a typed user turn; the reply's transcript
  must be ``expect`` (and carry audio).
- ``{"step": "audio", "expect": ...}``: 1 s of tone then silence, in real time; the server's
  VAD ends the turn and the reply must be ``expect``.
- ``{"step": "tool", "prompt": ..., "expect": ...}``: the model calls ``get_weather``; the
  driver answers it the peer's way and the follow-up reply must be ``expect``.
- ``{"step": "bargein", "prompt": ...}``: a long reply; once audio flows the driver says
  ``{"event": "playing"}`` and the harness starts user speech; the peer must see the
  interruption and the reply's audio must stop.
- ``{"step": "drop"}``: the driver says ``{"event": "armed"}``, the harness cuts the
  connection; the driver reports what the peer said about it (a reconnect, or an error at
  once or at its next send). The harness sees whether a new session came and, if so, checks
  a typed turn on it; otherwise the peer must have reported the failure.

Each step ends with ``{"step": name, "ok": bool, "detail": ...}``.

    python scripts/conformance/driver.py --peer openai-agents --base-url http://127.0.0.1:PORT/v1
    python scripts/conformance/driver.py --peer livekit --provider gemini \
        --base-url https://127.0.0.1:PORT  # trust the server's CA with SSL_CERT_FILE
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import math
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

API_KEY = "local-test-key"
MODEL = "gpt-realtime"
RATE = 24000
GEMINI_RATE = 16000
GEMINI_MODEL = "gemini-live-test"
STEP_TIMEOUT = 15.0
WEATHER = {"city": "Paris", "temp_c": 21}
TOOL_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields, default=str) + "\n")
    sys.stdout.flush()


def tone(seconds: float, rate: int = RATE, hz: float = 220.0) -> bytes:
    n = int(seconds * rate)
    return struct.pack(
        f"<{n}h", *(int(8000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n))
    )


@dataclass
class Observed:
    """What the peer reported, in the terms every step checks."""

    transcript: str = ""
    audio_bytes: int = 0
    replies: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)
    interrupted: int = 0
    reconnected: int = 0
    disconnected: int = 0
    errors: list[str] = field(default_factory=list)
    audio_at: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self) -> None:
        self.changed.set()

    async def until(self, predicate: Any, within: float = STEP_TIMEOUT) -> bool:
        deadline = time.monotonic() + within
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.2))
        return True


class Peer:
    """One peer SDK's realtime client, reduced to what the steps need."""

    name = ""
    providers: tuple[str, ...] = ("openai",)

    def __init__(self, provider: str = "openai") -> None:
        self.seen = Observed()
        self.provider = provider
        self.rate = GEMINI_RATE if provider == "gemini" else RATE
        """The sample rate of the audio this client sends."""

    async def open(self, base_url: str) -> None:
        raise NotImplementedError

    async def send_text(self, text: str) -> None:
        raise NotImplementedError

    async def push_audio(self, pcm: bytes) -> None:
        raise NotImplementedError

    async def answer_tool(self, handle: Any, output: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # -- SDK events, normalized --------------------------------------------------------

    def on_transcript(self, delta: str) -> None:
        self.seen.transcript += delta
        self.seen.note()

    def on_audio(self, nbytes: int) -> None:
        self.seen.audio_bytes += nbytes
        self.seen.audio_at = time.monotonic()
        self.seen.note()

    def on_reply_done(self, transcript: str | None = None) -> None:
        self.seen.replies.append(self.seen.transcript if transcript is None else transcript)
        self.seen.transcript = ""
        self.seen.note()

    def on_tool_call(self, name: str, args: dict[str, Any], handle: Any) -> None:
        self.seen.tool_calls.append((name, args, handle))
        self.seen.note()

    def on_interrupted(self) -> None:
        self.seen.interrupted += 1
        self.seen.note()

    def on_error(self, message: str) -> None:
        self.seen.errors.append(message[:300])
        self.seen.note()


# -- OpenAI Agents SDK -------------------------------------------------------------------


class AgentsPeer(Peer):
    """``agents.realtime.OpenAIRealtimeWebSocketModel`` with a listener (no RealtimeRunner:
    the model layer is the client that talks to the server)."""

    name = "openai-agents"

    async def open(self, base_url: str) -> None:
        realtime: Any = importlib.import_module("agents.realtime.openai_realtime")
        agents: Any = importlib.import_module("agents")
        self.inputs: Any = importlib.import_module("agents.realtime.model_inputs")
        model_mod: Any = importlib.import_module("agents.realtime.model")
        peer = self

        class Listener(model_mod.RealtimeModelListener):  # type: ignore[misc]
            async def on_event(self, event: Any) -> None:
                peer._on_event(event)

        async def get_weather(city: str) -> str:
            """Weather for a city."""
            return json.dumps(WEATHER)

        self.model = realtime.OpenAIRealtimeWebSocketModel()
        self.model.add_listener(Listener())
        ws = base_url.replace("http://", "ws://").replace("https://", "wss://")
        await self.model.connect(
            {
                "url": f"{ws}/realtime?model={MODEL}",
                "api_key": API_KEY,
                "initial_model_settings": {
                    "model_name": MODEL,
                    "voice": "marin",
                    "tools": [agents.function_tool(get_weather)],
                },
            }
        )

    def _on_event(self, event: Any) -> None:
        kind = event.type
        if kind == "audio":
            self.on_audio(len(event.data))
        elif kind == "transcript_delta":
            self.on_transcript(event.delta)
        elif kind == "turn_ended":
            self.on_reply_done()
        elif kind == "function_call":
            self.on_tool_call(event.name, json.loads(event.arguments or "{}"), event)
        elif kind == "audio_interrupted":
            self.on_interrupted()
        elif kind == "error":
            self.on_error(str(event.error))
        elif kind == "exception":
            self.on_error(f"{event.context}: {event.exception!r}")
            if "closed" in str(event.context):
                self.seen.disconnected += 1
        elif kind == "connection_status" and event.status == "disconnected":
            self.seen.disconnected += 1
            self.seen.note()

    async def send_text(self, text: str) -> None:
        await self.model.send_event(self.inputs.RealtimeModelSendUserInput(user_input=text))

    async def push_audio(self, pcm: bytes) -> None:
        await self.model.send_event(self.inputs.RealtimeModelSendAudio(audio=pcm, commit=False))

    async def answer_tool(self, handle: Any, output: str) -> None:
        await self.model.send_event(
            self.inputs.RealtimeModelSendToolOutput(
                tool_call=handle, output=output, start_response=True
            )
        )

    async def close(self) -> None:
        await self.model.close()


# -- LiveKit Agents ------------------------------------------------------------------------


class LiveKitPeer(Peer):
    """``livekit.plugins.openai.realtime.RealtimeModel().session()``, driven without a room:
    the driver does what ``AgentActivity`` would (read the generation streams, answer tool
    calls through the chat context, ask for the next reply)."""

    name = "livekit"
    providers = ("openai", "gemini")

    async def open(self, base_url: str) -> None:
        self.rtc: Any = importlib.import_module("livekit.rtc")
        self.llm: Any = importlib.import_module("livekit.agents.llm")
        agents: Any = importlib.import_module("livekit.agents")
        self.tasks: set[asyncio.Task[None]] = set()

        async def get_weather(city: str) -> str:
            """Weather for a city."""
            return json.dumps(WEATHER)

        if self.provider == "gemini":
            google: Any = importlib.import_module("livekit.plugins.google")
            genai_types: Any = importlib.import_module("google.genai.types")
            self.model = google.realtime.RealtimeModel(
                model=GEMINI_MODEL,
                api_key=API_KEY,
                http_options=genai_types.HttpOptions(base_url=base_url),
            )
        else:
            plugin: Any = importlib.import_module("livekit.plugins.openai")
            self.model = plugin.realtime.RealtimeModel(
                model=MODEL, base_url=base_url, api_key=API_KEY
            )
        self.session = self.model.session()
        self.session.on("generation_created", self._on_generation)
        self.session.on("input_speech_started", lambda _e: self.on_interrupted())
        self.session.on("session_reconnected", lambda _e: self._reconnected())
        self.session.on("error", lambda e: self.on_error(str(getattr(e, "error", e))))
        await self.session.update_tools([agents.function_tool(get_weather)])

    def _reconnected(self) -> None:
        self.seen.reconnected += 1
        self.seen.note()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _on_generation(self, gen: Any) -> None:
        self._spawn(self._read_generation(gen))

    async def _read_generation(self, gen: Any) -> None:
        async def message(msg: Any) -> None:
            async def text() -> None:
                async for delta in msg.text_stream:
                    self.on_transcript(delta)

            async def audio() -> None:
                async for frame in msg.audio_stream:
                    self.on_audio(len(frame.data) * 2)

            await asyncio.gather(text(), audio())
            self.on_reply_done()

        async def messages() -> None:
            async for msg in gen.message_stream:
                await message(msg)

        async def calls() -> None:
            async for call in gen.function_stream:
                self.on_tool_call(call.name, json.loads(call.arguments or "{}"), call)

        await asyncio.gather(messages(), calls())

    async def send_text(self, text: str) -> None:
        ctx = self.session.chat_ctx.copy()
        ctx.add_message(role="user", content=text)
        await self.session.update_chat_ctx(ctx)
        await self.session.generate_reply()

    async def push_audio(self, pcm: bytes) -> None:
        self.session.push_audio(
            self.rtc.AudioFrame(
                data=pcm, sample_rate=self.rate, num_channels=1, samples_per_channel=len(pcm) // 2
            )
        )

    async def answer_tool(self, handle: Any, output: str) -> None:
        ctx = self.session.chat_ctx.copy()
        ctx.items.append(
            self.llm.FunctionCallOutput(
                call_id=handle.call_id, name=handle.name, output=output, is_error=False
            )
        )
        await self.session.update_chat_ctx(ctx)
        await self.session.generate_reply()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.session.aclose(), 10)
        with contextlib.suppress(Exception):
            await self.model.aclose()


# -- Pipecat -------------------------------------------------------------------------------


class PipecatPeer(Peer):
    """Pipecat's ``OpenAIRealtimeLLMService`` in a pipeline with the context aggregators, as
    Pipecat's own realtime examples wire it; a sink processor records what comes out."""

    name = "pipecat"
    providers = ("openai", "gemini")

    async def open(self, base_url: str) -> None:
        with contextlib.suppress(ImportError):  # pipecat logs through loguru: keep it quiet
            importlib.import_module("loguru").logger.remove()
        f: Any = importlib.import_module("pipecat.frames.frames")
        self.frames = f
        pipeline: Any = importlib.import_module("pipecat.pipeline.pipeline")
        worker: Any = importlib.import_module("pipecat.pipeline.worker")
        runner: Any = importlib.import_module("pipecat.pipeline.runner")
        processor: Any = importlib.import_module("pipecat.processors.frame_processor")
        llm_mod: Any = importlib.import_module("pipecat.services.openai.realtime.llm")
        context_mod: Any = importlib.import_module("pipecat.processors.aggregators.llm_context")
        response: Any = importlib.import_module(
            "pipecat.processors.aggregators.llm_response_universal"
        )
        schema: Any = importlib.import_module("pipecat.adapters.schemas.function_schema")
        tools_schema: Any = importlib.import_module("pipecat.adapters.schemas.tools_schema")
        peer = self

        class Sink(processor.FrameProcessor):  # type: ignore[misc]
            async def process_frame(self, frame: Any, direction: Any) -> None:
                await super().process_frame(frame, direction)
                if isinstance(frame, f.TTSAudioRawFrame):
                    peer.on_audio(len(frame.audio))
                elif isinstance(frame, f.TTSTextFrame):
                    peer.on_transcript(frame.text)
                elif isinstance(frame, f.LLMFullResponseEndFrame):
                    if peer.seen.transcript:
                        peer.on_reply_done()
                elif isinstance(frame, f.InterruptionFrame):
                    peer.on_interrupted()
                elif isinstance(frame, f.ErrorFrame):
                    peer.on_error(str(frame.error))
                await self.push_frame(frame, direction)

        if self.provider == "gemini":
            gemini: Any = importlib.import_module("pipecat.services.google.gemini_live.llm")
            genai_types: Any = importlib.import_module("google.genai.types")
            self.llm = gemini.GeminiLiveLLMService(
                api_key=API_KEY,
                model=f"models/{GEMINI_MODEL}",
                http_options=genai_types.HttpOptions(base_url=base_url),
            )
        else:
            ws = base_url.replace("http://", "ws://").replace("https://", "wss://")
            self.llm = llm_mod.OpenAIRealtimeLLMService(
                api_key=API_KEY, base_url=f"{ws}/realtime", model=MODEL
            )

        async def get_weather(params: Any) -> None:
            peer.on_tool_call(params.function_name, dict(params.arguments), params)
            await params.result_callback(WEATHER)

        self.llm.register_function("get_weather", get_weather)
        weather = schema.FunctionSchema(
            name="get_weather",
            description="Weather for a city.",
            properties=TOOL_SCHEMA["properties"],
            required=["city"],
        )
        self.context = context_mod.LLMContext(tools=tools_schema.ToolsSchema([weather]))
        pair = response.LLMContextAggregatorPair(self.context)
        self.task = worker.PipelineTask(
            pipeline.Pipeline([pair.user(), self.llm, Sink(), pair.assistant()]),
            params=worker.PipelineParams(
                audio_in_sample_rate=self.rate, audio_out_sample_rate=RATE
            ),
            enable_rtvi=False,
            enable_turn_tracking=False,
            idle_timeout_secs=None,
        )

        async def on_error(_task: Any, frame: Any) -> None:  # errors travel upstream
            peer.on_error(str(frame.error))

        self.task.event_handler("on_pipeline_error")(on_error)

        self.run = asyncio.get_running_loop().create_task(
            runner.PipelineRunner(handle_sigint=False).run(self.task)
        )
        self.started = False

    async def send_text(self, text: str) -> None:
        message = {"role": "user", "content": text}
        if not self.started:  # the first context sets the conversation up and answers it
            self.started = True
            self.context.add_message(message)
            await self.task.queue_frame(self.frames.LLMContextFrame(self.context))
        else:
            # Later typed turns: the user aggregator would only fold the message into a context
            # frame that the realtime service does not answer (it creates responses for the
            # first context and for contexts coming back upstream). Pipecat's own route for an
            # append is the service itself: it sends the item, and the assistant aggregator
            # asks for the response.
            await self.llm.queue_frame(
                self.frames.LLMMessagesAppendFrame(messages=[message], run_llm=True)
            )

    async def push_audio(self, pcm: bytes) -> None:
        if not self.started:
            self.started = True
            await self.task.queue_frame(self.frames.LLMContextFrame(self.context))
        await self.task.queue_frame(
            self.frames.InputAudioRawFrame(audio=pcm, sample_rate=self.rate, num_channels=1)
        )

    async def answer_tool(self, handle: Any, output: str) -> None:
        pass  # the registered handler already answered through result_callback

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task.cancel(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.run, 10)


PEERS: dict[str, type[Peer]] = {p.name: p for p in (AgentsPeer, LiveKitPeer, PipecatPeer)}


# -- steps -----------------------------------------------------------------------------------


async def reply_to(peer: Peer, expect: str, before: int) -> tuple[bool, str]:
    seen = peer.seen
    got = await seen.until(lambda: len(seen.replies) > before and expect in seen.replies[before:])
    return got, f"replies={seen.replies[before:]!r} audio_bytes={seen.audio_bytes}"


async def step_text(peer: Peer, cmd: dict[str, Any]) -> tuple[bool, str]:
    before, audio = len(peer.seen.replies), peer.seen.audio_bytes
    await peer.send_text(cmd["prompt"])
    ok, detail = await reply_to(peer, cmd["expect"], before)
    return ok and peer.seen.audio_bytes > audio, detail


async def step_audio(peer: Peer, cmd: dict[str, Any]) -> tuple[bool, str]:
    before, audio = len(peer.seen.replies), peer.seen.audio_bytes
    rate = peer.rate
    pcm = tone(1.0, rate) + bytes(int(0.6 * rate) * 2)
    chunk = rate // 50 * 2  # 20 ms
    start = time.monotonic()
    for i, offset in enumerate(range(0, len(pcm), chunk)):
        await asyncio.sleep(max(0.0, start + i * 0.02 - time.monotonic()))
        await peer.push_audio(pcm[offset : offset + chunk])
    ok, detail = await reply_to(peer, cmd["expect"], before)
    return ok and peer.seen.audio_bytes > audio, detail


async def step_tool(peer: Peer, cmd: dict[str, Any]) -> tuple[bool, str]:
    seen = peer.seen
    before, calls = len(seen.replies), len(seen.tool_calls)
    await peer.send_text(cmd["prompt"])
    if not await seen.until(lambda: len(seen.tool_calls) > calls):
        return False, f"no tool call reached the client; errors={seen.errors}"
    name, args, handle = seen.tool_calls[calls]
    if name != "get_weather" or args != {"city": "Paris"}:
        return False, f"wrong call {name}({args})"
    await peer.answer_tool(handle, json.dumps(WEATHER))
    return await reply_to(peer, cmd["expect"], before)


async def step_bargein(peer: Peer, cmd: dict[str, Any]) -> tuple[bool, str]:
    seen = peer.seen
    interrupted, audio = seen.interrupted, seen.audio_bytes
    await peer.send_text(cmd["prompt"])
    if not await seen.until(lambda: seen.audio_bytes > audio):
        return False, "no reply audio"
    emit(event="playing")
    if not await seen.until(lambda: seen.interrupted > interrupted):
        return False, f"the peer never saw the interruption; errors={seen.errors}"
    at = seen.audio_bytes
    await asyncio.sleep(0.6)  # the reply was paced for seconds more: nothing may follow
    after = seen.audio_bytes - at
    return after == 0, f"audio bytes after the interruption: {after}"


async def step_drop(peer: Peer, cmd: dict[str, Any]) -> tuple[bool, str]:
    """What the peer reports about a dropped connection. Whether it really reconnected is
    the harness's call (it sees the new socket) and it then checks a turn on it."""
    seen = peer.seen
    reconnected, disconnected, errors = seen.reconnected, seen.disconnected, len(seen.errors)
    emit(event="armed")
    # A client that reconnects may first report the failure: give it time to come back.
    await seen.until(lambda: seen.reconnected > reconnected, within=8)
    reported = seen.errors[errors:][:2]
    if seen.reconnected > reconnected:
        return True, f"reported a reconnect; errors={reported}"
    if seen.disconnected > disconnected or reported:
        return True, f"reported the failure: {reported}"
    # Nothing reported yet: a live call streams audio all the time, so the next send is
    # where a client that does not watch its socket finds out.
    await peer.push_audio(bytes(peer.rate // 10 * 2))
    if await seen.until(
        lambda: seen.disconnected > disconnected or len(seen.errors) > errors, within=3
    ):
        return True, f"reported the failure at its next send: {seen.errors[errors:][:2]}"
    return False, "reported nothing, not even at its next send"


STEPS = {
    "text": step_text,
    "audio": step_audio,
    "tool": step_tool,
    "bargein": step_bargein,
    "drop": step_drop,
}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", choices=sorted(PEERS), required=True)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--provider", choices=("openai", "gemini"), default="openai")
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the SDKs log every failure loudly

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    if args.provider not in PEERS[args.peer].providers:
        ap.error(f"{args.peer} is driven here for {PEERS[args.peer].providers} only")
    peer = PEERS[args.peer](args.provider)
    await peer.open(args.base_url)
    emit(event="ready", peer=peer.name)
    try:
        async for line in reader:
            cmd = json.loads(line)
            if cmd["step"] == "reopen":  # after a clean failure: a fresh client
                with contextlib.suppress(Exception):
                    await peer.close()
                peer = PEERS[args.peer](args.provider)
                await peer.open(args.base_url)
                emit(step="reopen", ok=True, detail="")
                continue
            started = time.monotonic()
            try:
                ok, detail = await STEPS[cmd["step"]](peer, cmd)
            except Exception as exc:  # a peer that raises fails the step, with the reason
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            emit(step=cmd["step"], ok=ok, detail=detail, s=round(time.monotonic() - started, 2))
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(peer.close(), 15)


if __name__ == "__main__":
    asyncio.run(main())
