"""Drive a peer SDK's realtime session for ``benchmarks/reconnect.py`` (run by the peer's python).

Runs in the peer's own virtualenv (``benchmarks/peers/setup.sh``), so it imports nothing from
vision_agents. Commands come as JSON lines on stdin, events go out as JSON lines on stdout
(``t`` is ``time.time()``):

- ``{"cmd": "start", "base_url": ..., "pcm": path, "rate": hz, "chunk_ms": 20}``: open a
  session at ``base_url`` and stream the s16 mono PCM in ``path`` in real time;
  emits ``started``, then ``streamed`` when the last chunk was handed to the SDK.
- ``{"cmd": "stop"}``: close the session; emits ``stopped``.

Also emits what the SDK reports about its connection (``reconnected``, ``error``), for the
record: the benchmark measures recovery at the server.

    python benchmarks/peers/driver.py --sdk livekit --provider openai
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

API_KEY = "local-test-key"
OPENAI_MODEL = "gpt-realtime"
GEMINI_MODEL = "gemini-live-test"


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")
    sys.stdout.flush()


class Session:
    """One peer session: open, take audio chunks, close."""

    def __init__(self, provider: str) -> None:
        self.provider = provider

    async def open(self, base_url: str) -> None:
        raise NotImplementedError

    async def push(self, pcm: bytes, rate: int) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class LiveKitSession(Session):
    """LiveKit Agents' ``RealtimeModel().session()``, driven without a room."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider)
        self.rtc: Any = importlib.import_module("livekit.rtc")
        if provider == "openai":
            self.plugin: Any = importlib.import_module("livekit.plugins.openai")
        else:
            self.plugin = importlib.import_module("livekit.plugins.google")
            self.genai_types: Any = importlib.import_module("google.genai.types")
        self.model: Any = None
        self.session: Any = None

    async def open(self, base_url: str) -> None:
        if self.provider == "openai":
            self.model = self.plugin.realtime.RealtimeModel(
                model=OPENAI_MODEL, base_url=base_url, api_key=API_KEY
            )
        else:
            self.model = self.plugin.realtime.RealtimeModel(
                model=GEMINI_MODEL,
                api_key=API_KEY,
                http_options=self.genai_types.HttpOptions(base_url=base_url),
            )
        self.session = self.model.session()
        self.session.on("session_reconnected", lambda _ev: emit("reconnected"))
        self.session.on(
            "error",
            lambda ev: emit(
                "error", detail=str(getattr(ev, "error", ev))[:200], recoverable=ev.recoverable
            ),
        )

    async def push(self, pcm: bytes, rate: int) -> None:
        frame = self.rtc.AudioFrame(
            data=pcm, sample_rate=rate, num_channels=1, samples_per_channel=len(pcm) // 2
        )
        self.session.push_audio(frame)

    async def close(self) -> None:
        if self.session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.aclose(), 10)
        if self.model is not None:
            with contextlib.suppress(Exception):
                await self.model.aclose()
        self.session = self.model = None


class PipecatSession(Session):
    """Pipecat's realtime service as the only processor of a pipeline, fed audio frames."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider)
        with contextlib.suppress(ImportError):  # pipecat logs through loguru: keep it quiet
            importlib.import_module("loguru").logger.remove()
        self.frames: Any = importlib.import_module("pipecat.frames.frames")
        self.pipeline: Any = importlib.import_module("pipecat.pipeline.pipeline")
        self.worker: Any = importlib.import_module("pipecat.pipeline.worker")
        self.runner: Any = importlib.import_module("pipecat.pipeline.runner")
        self.task: Any = None
        self.run: asyncio.Task[None] | None = None

    async def open(self, base_url: str) -> None:
        rate = 24000 if self.provider == "openai" else 16000
        if self.provider == "openai":
            module: Any = importlib.import_module("pipecat.services.openai.realtime.llm")
            ws_url = base_url.replace("http://", "ws://").replace("https://", "wss://")
            llm = module.OpenAIRealtimeLLMService(
                api_key=API_KEY, base_url=f"{ws_url}/realtime", model=OPENAI_MODEL
            )
        else:
            module = importlib.import_module("pipecat.services.google.gemini_live.llm")
            genai_types: Any = importlib.import_module("google.genai.types")
            llm = module.GeminiLiveLLMService(
                api_key=API_KEY,
                model=f"models/{GEMINI_MODEL}",
                http_options=genai_types.HttpOptions(base_url=base_url),
            )
        self.task = self.worker.PipelineTask(
            self.pipeline.Pipeline([llm]),
            params=self.worker.PipelineParams(audio_in_sample_rate=rate),
            enable_rtvi=False,
            enable_turn_tracking=False,
            idle_timeout_secs=None,
        )
        runner = self.runner.PipelineRunner(handle_sigint=False)
        self.run = asyncio.get_running_loop().create_task(runner.run(self.task))
        if self.provider == "gemini":
            # Pipecat's Gemini service takes realtime input only once it has a context.
            context: Any = importlib.import_module("pipecat.processors.aggregators.llm_context")
            await self.task.queue_frame(self.frames.LLMContextFrame(context.LLMContext()))

    async def push(self, pcm: bytes, rate: int) -> None:
        await self.task.queue_frame(
            self.frames.InputAudioRawFrame(audio=pcm, sample_rate=rate, num_channels=1)
        )

    async def close(self) -> None:
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task.cancel(), 10)
        if self.run is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.run, 10)
        self.task = self.run = None


SESSIONS: dict[str, type[Session]] = {"livekit": LiveKitSession, "pipecat": PipecatSession}


async def stream(session: Session, pcm: bytes, rate: int, chunk_ms: int) -> None:
    step = rate * chunk_ms // 1000 * 2
    start = time.monotonic()
    for i, offset in enumerate(range(0, len(pcm), step)):
        await asyncio.sleep(max(0.0, start + i * chunk_ms / 1000 - time.monotonic()))
        await session.push(pcm[offset : offset + step], rate)
    emit("streamed")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sdk", choices=sorted(SESSIONS), required=True)
    ap.add_argument("--provider", choices=("openai", "gemini"), required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # the SDKs log every failure loudly

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    make = SESSIONS[args.sdk]
    session: Session | None = None
    streamer: asyncio.Task[None] | None = None
    emit("ready", sdk=args.sdk, provider=args.provider)
    async for line in reader:
        cmd = json.loads(line)
        if cmd["cmd"] == "start":
            session = make(args.provider)
            await session.open(cmd["base_url"])
            emit("started")
            pcm = await asyncio.to_thread(Path(cmd["pcm"]).read_bytes)
            streamer = loop.create_task(stream(session, pcm, cmd["rate"], cmd["chunk_ms"]))
        elif cmd["cmd"] == "stop":
            if streamer is not None:
                streamer.cancel()
                await asyncio.gather(streamer, return_exceptions=True)
                streamer = None
            if session is not None:
                await session.close()
                session = None
            emit("stopped")


if __name__ == "__main__":
    asyncio.run(main())
