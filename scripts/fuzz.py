"""Throw generated bad input at the parts that take input from outside, for a bounded time.

Targets: ``pcm`` (PcmData constructors and conversions), ``resampler`` (streams of mixed
blocks), ``video`` (frame helpers and the JPEG / VP8 / H.264 frame encoders), ``server`` (the
call server's HTTP and WebSocket endpoints on 127.0.0.1), and the provider protocol
translators ``openai`` and ``gemini`` (their public ``receive`` entry points, fed mutated
provider messages). Each target runs ``--seconds`` with a seeded generator; an input counts
as handled when it is accepted or refused with the documented exception types (and the
results keep their invariants); anything else is a finding, printed with the input's repr.

    python scripts/fuzz.py --seconds 10 --seed 1            # every target
    python scripts/fuzz.py --targets server,openai --seconds 30

Exit status 1 when anything was found. To point a translator target at another entry point,
edit ``PROTOCOL_TARGETS`` (a factory, a decoder from JSON to what ``receive`` takes, and the
exceptions that count as a clean refusal).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import logging
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vision_agents.core.audio import PcmData, Resampler  # noqa: E402
from vision_agents.core.errors import VisionAgentsError  # noqa: E402
from vision_agents.core.utils import video  # noqa: E402


@dataclass
class Report:
    """Cases run, clean refusals, and findings grouped by where and how they failed."""

    target: str
    cases: int = 0
    refused: int = 0
    failed: int = 0
    findings: dict[str, list[str]] = field(default_factory=dict)  # signature -> examples

    def finding(self, what: str, signature: str | None = None) -> None:
        self.failed += 1
        examples = self.findings.setdefault(signature or what, [])
        examples.append(what)
        del examples[3:]  # a few examples of each kind are enough


def _signature(exc: BaseException) -> str:
    """Exception type and the innermost frame: one finding kind however often it recurs."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} chars)"


def _check(report: Report, label: str, case: Callable[..., None], *args: Any) -> None:
    """Run ``case(*args)``: a refusal (ValueError, TypeError, ours) is fine, anything else not."""
    report.cases += 1
    try:
        case(*args)
    except (ValueError, TypeError, VisionAgentsError):
        report.refused += 1
    except Exception as exc:
        described = ", ".join(_short(a) for a in args)
        report.finding(f"{label}({described})\n{traceback.format_exc(limit=4)}", _signature(exc))


def _timed(seconds: float) -> Iterator[int]:
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        yield i
        i += 1


# -- audio ---------------------------------------------------------------------------------------

_SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 1e30, -1e30, 32767.0, -32768.0]


def _random_array(rng: random.Random) -> Any:
    dtype = rng.choice(
        ["float32", "int16", "float64", "int32", "uint8", "bool", "float16", ">f4", ">i2"]
    )
    ndim = rng.choice([0, 1, 1, 2, 2, 3])
    shape = tuple(rng.choice([0, 1, 2, 3, 7, 160, 961]) for _ in range(ndim))
    if ndim == 2 and rng.random() < 0.6:
        shape = (rng.choice([1, 2, 6, 8, 9]), shape[1])
    if ndim == 3:
        shape = (*shape[:2], rng.choice([0, 1, 2]))
    size = int(np.prod(shape)) if shape else 1
    if dtype in ("float32", "float64", "float16", ">f4"):
        values = np.array(
            [
                rng.choice(_SPECIAL) if rng.random() < 0.1 else rng.uniform(-2, 2)
                for _ in range(size)
            ]
        )
    else:
        values = np.array([rng.randint(-40000, 40000) for _ in range(size)])
    with np.errstate(all="ignore"):
        return values.astype(dtype).reshape(shape)


def _random_rate(rng: random.Random) -> Any:
    return rng.choice(
        [
            8000,
            16000,
            22050,
            24000,
            44100,
            48000,
            96000,
            1,
            7,
            0,
            -16000,
            16000.0,
            True,
            "16000",
            None,
            2**40,
        ]
    )


def _assert_finite(pcm: PcmData) -> None:
    if pcm.format == "f32" and not np.isfinite(pcm.samples).all():
        raise AssertionError(f"non-finite samples came out of {pcm!r}")


def _pcm_case(arr: Any, rate: Any, channels: Any, rng: random.Random) -> None:
    pcm = PcmData(arr, rate, channels)
    _assert_finite(pcm)
    as16 = pcm.to_int16()
    assert as16.samples.dtype == np.int16 and len(as16) == len(pcm)
    _assert_finite(pcm.to_float32())
    target = rng.choice([8000, 16000, 24000, 48000])
    out = pcm.resample(target, rng.choice([1, pcm.channels]))
    _assert_finite(out)
    expected = len(pcm) * target / pcm.sample_rate
    assert abs(len(out) - expected) <= 1, (len(out), expected)
    for piece in pcm.chunks(rng.choice([10, 20, 0.5, 100])):
        _assert_finite(piece)


def _from_bytes_case(raw: bytes, rate: Any, channels: Any, fmt: Any) -> None:
    pcm = PcmData.from_bytes(raw, rate, channels, fmt)
    _assert_finite(pcm)
    assert pcm.to_bytes() == raw or pcm.format == "f32"


def _from_base64_case(text: str, channels: int, fmt: Any) -> None:
    _assert_finite(PcmData.from_base64(text, 16000, channels, fmt))


def _append_case(a: Any, b: Any, rate: int) -> None:
    first = PcmData(a, 16000)
    first.append(PcmData(b, rate))
    _assert_finite(first)


def fuzz_pcm(seconds: float, rng: random.Random) -> Report:
    report = Report("pcm")
    for _ in _timed(seconds):
        kind = rng.randrange(4)
        if kind == 0:
            channels = rng.choice([None, None, 1, 2, 0, 9, -1, 2.0])
            args = (_random_array(rng), _random_rate(rng), channels, rng)
            _check(report, "PcmData", _pcm_case, *args)
        elif kind == 1:
            raw = rng.randbytes(rng.choice([0, 1, 2, 3, 4, 6, 8, 960, 1001]))
            channels, fmt = rng.choice([1, 2, 3, 0]), rng.choice(["s16", "f32", "s32", ""])
            _check(report, "from_bytes", _from_bytes_case, raw, _random_rate(rng), channels, fmt)
        elif kind == 2:
            text = rng.choice(
                [
                    base64.b64encode(rng.randbytes(rng.randrange(0, 50))).decode(),
                    base64.urlsafe_b64encode(rng.randbytes(rng.randrange(0, 50)))
                    .decode()
                    .rstrip("="),
                    "".join(rng.choice("AZaz09+/-_= \n\x00é") for _ in range(rng.randrange(40))),
                ]
            )
            fmt = rng.choice(["s16", "f32"])
            _check(report, "from_base64", _from_base64_case, text, rng.choice([1, 2]), fmt)
        else:
            a, b = _random_array(rng), _random_array(rng)
            _check(report, "append", _append_case, a, b, rng.choice([16000, 48000]))
    return report


def _resampler_case(args: tuple[int, int, Any], blocks: list[tuple[Any, int]]) -> None:
    resampler = Resampler(*args)
    fed = 0.0
    got = 0
    for data, rate in blocks:
        out = resampler.process(PcmData(data, rate))
        _assert_finite(out)
        assert out.sample_rate == args[0]
        fed += data.shape[1] / rate
        got += len(out)
    got += len(resampler.flush())
    # one seam per rate change: a few samples each way at most
    assert abs(got - fed * args[0]) <= 2 * len(blocks) + 1, (got, fed * args[0])


def fuzz_resampler(seconds: float, rng: random.Random) -> Report:
    report = Report("resampler")
    for _ in _timed(seconds):
        target = rng.choice([8000, 16000, 24000, 48000])
        args = (target, rng.choice([1, 2]), rng.choice([None, "s16", "f32"]))
        blocks = []
        for _ in range(rng.randrange(1, 8)):
            rate = rng.choice([8000, 16000, 22050, 24000, 44100, 48000, 11025])
            channels = rng.choice([1, 1, 2])
            n = rng.choice([0, 1, 2, 31, 160, 480, 960, 4801])
            if rng.random() < 0.5:
                data = np.array(
                    [
                        rng.choice(_SPECIAL) if rng.random() < 0.05 else rng.uniform(-1.5, 1.5)
                        for _ in range(n * channels)
                    ],
                    np.float32,
                )
            else:
                data = np.array([rng.randint(-32768, 32767) for _ in range(n * channels)], np.int16)
            blocks.append((data.reshape(channels, n), rate))
        _check(report, "Resampler", _resampler_case, args, blocks)
    return report


# -- video ---------------------------------------------------------------------------------------

_PIXEL_FORMATS = ["yuv420p", "rgb24", "bgr24", "gray", "rgba", "nv12", "yuv444p", "yuvj420p"]


def _random_frame(rng: random.Random) -> av.VideoFrame:
    width, height = rng.choice([1, 2, 3, 15, 16, 641, 720]), rng.choice([1, 2, 3, 9, 479, 480])
    frame = av.VideoFrame(width, height, rng.choice(_PIXEL_FORMATS))
    for plane in frame.planes:
        plane.update(rng.randbytes(plane.buffer_size))
    frame.pts = rng.choice([None, 0, 3000, 2**40])
    return frame


def _jpeg_case(frame: av.VideoFrame, quality: Any, max_side: Any, side: int) -> None:
    assert video.encode_jpeg(frame, quality=quality, max_side=max_side)[:2] == b"\xff\xd8"
    small = video.resize_keep_aspect(frame, side)
    assert small.width >= 1 and small.height >= 1
    assert video.frame_to_ndarray(frame).shape == (frame.height, frame.width, 3)


def _jpeg_array_case(arr: Any) -> None:
    assert video.encode_jpeg(arr)[:2] == b"\xff\xd8"


def _encoder_case(encoder: Any, frame: av.VideoFrame, keyframe: bool) -> None:
    from vision_agents.plugins.webrtc.encoders import ResilientEncoder

    fixed = video.even_yuv420p(frame)
    assert fixed.width % 2 == 0 and fixed.height % 2 == 0 and fixed.format.name == "yuv420p"
    before = ResilientEncoder.failures
    encoder.encode(frame, keyframe)
    if ResilientEncoder.failures != before:
        raise AssertionError("the encoder failed even on the normalised frame")


def fuzz_video(seconds: float, rng: random.Random) -> Report:
    from aiortc.codecs import get_encoder
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    from vision_agents.plugins.webrtc.encoders import ResilientEncoder

    report = Report("video")
    encoders = [
        ResilientEncoder(
            RTCRtpCodecParameters(mimeType=mime, clockRate=90000, payloadType=96), get_encoder
        )
        for mime in ("video/VP8", "video/H264")
    ]
    for _ in _timed(seconds):
        kind = rng.randrange(3)
        if kind == 0:
            quality = rng.choice([1, 80, 100, 0, 101, True])
            max_side = rng.choice([None, 1, 64, 640, 0, -5])
            side = rng.choice([1, 32, 4000])
            _check(report, "jpeg", _jpeg_case, _random_frame(rng), quality, max_side, side)
        elif kind == 1:
            arr = _random_array(rng)
            if rng.random() < 0.5:
                arr = np.frombuffer(rng.randbytes(48 * 64 * 3), np.uint8).reshape(48, 64, 3)
            _check(report, "encode_jpeg", _jpeg_array_case, arr)
        else:
            frame = _random_frame(rng)
            frame.pts = rng.randrange(0, 2**31)
            frame.time_base = Fraction(1, 90000)
            encoder = rng.choice(encoders)
            _check(report, "encode", _encoder_case, encoder, frame, rng.random() < 0.1)
    return report


# -- provider protocol translators --------------------------------------------------------------


def _openai_seeds() -> list[dict[str, Any]]:
    audio = base64.b64encode(b"\x01\x00" * 480).decode()
    return [
        {"type": "session.created", "event_id": "e1", "session": {"id": "s1", "type": "realtime"}},
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 10, "item_id": "i1"},
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "i1",
            "transcript": "hi",
        },
        {
            "type": "conversation.item.input_audio_transcription.failed",
            "error": {"code": "x", "message": "m"},
        },
        {"type": "response.created", "response": {"id": "r1", "metadata": {"va_reply": "t1"}}},
        {
            "type": "response.output_item.added",
            "response_id": "r1",
            "item": {"id": "i2", "type": "message"},
        },
        {
            "type": "response.output_audio.delta",
            "response_id": "r1",
            "item_id": "i2",
            "delta": audio,
        },
        {
            "type": "response.output_audio_transcript.done",
            "response_id": "r1",
            "transcript": "hello",
        },
        {"type": "response.output_text.delta", "response_id": "r1", "delta": "he"},
        {
            "type": "response.function_call_arguments.done",
            "response_id": "r1",
            "call_id": "c1",
            "name": "f",
            "arguments": '{"a": 1}',
        },
        {"type": "response.done", "response": {"id": "r1", "status": "completed", "output": []}},
        {"type": "output_audio_buffer.started", "response_id": "r1"},
        {"type": "error", "error": {"type": "invalid_request_error", "code": "c", "message": "m"}},
    ]


def _gemini_seeds() -> list[dict[str, Any]]:
    audio = base64.b64encode(b"\x01\x00" * 480).decode()
    return [
        {"setupComplete": {}},
        {
            "serverContent": {
                "modelTurn": {
                    "parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": audio}}]
                }
            }
        },
        {"serverContent": {"modelTurn": {"parts": [{"text": "hello"}]}}},
        {
            "serverContent": {
                "inputTranscription": {"text": "hi"},
                "outputTranscription": {"text": "yo"},
            }
        },
        {"serverContent": {"turnComplete": True}, "usageMetadata": {"totalTokenCount": 3}},
        {"serverContent": {"interrupted": True}},
        {"toolCall": {"functionCalls": [{"id": "c1", "name": "f", "args": {"a": 1}}]}},
        {"toolCallCancellation": {"ids": ["c1"]}},
        {"goAway": {"timeLeft": "1s"}},
        {"sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}},
    ]


_WEIRD: list[Any] = [
    None,
    0,
    -1,
    2**63,
    1.5,
    float("nan"),
    "",
    "x" * 5000,
    [],
    {},
    [1, "a"],
    {"a": {"b": None}},
    True,
    "audio/pcm;rate=0",
    "audio/pcm;rate=-5",
    "audio/pcm;rate=1",
    "audio/pcm;rate=99999999999",
    "audio/pcm",
    "image/png",
    "%%%",
    "AAA",
]


def _mutate(value: Any, rng: random.Random, depth: int = 0) -> Any:
    if isinstance(value, dict) and value and depth < 6:
        out = dict(value)
        key = rng.choice(list(out))
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.25:
            out[rng.choice(["extra", "type", "response_id", "id", key + "X"])] = rng.choice(_WEIRD)
        elif roll < 0.6:
            out[key] = _mutate(out[key], rng, depth + 1)
        else:
            out[key] = rng.choice(_WEIRD)
        return out
    if isinstance(value, list) and value and depth < 6:
        out_list = list(value)
        i = rng.randrange(len(out_list))
        roll = rng.random()
        if roll < 0.3:
            out_list[i] = _mutate(out_list[i], rng, depth + 1)
        elif roll < 0.5:
            out_list.extend(copy.deepcopy(out_list) * rng.randrange(1, 3))
        else:
            out_list[i] = rng.choice(_WEIRD)
        return out_list
    if isinstance(value, str) and rng.random() < 0.5:
        return value[: rng.randrange(len(value) + 1)] + rng.choice(
            ["", "=", "\x00", "é", "==", "A"]
        )
    return rng.choice(_WEIRD)


@dataclass
class ProtocolTarget:
    """A translator's public entry: ``make()`` a protocol object, ``decode`` a provider JSON
    object into what its ``receive`` takes, and the exceptions that are a clean refusal."""

    make: Callable[[], Any]
    decode: Callable[[dict[str, Any]], Any]
    refusals: tuple[type[BaseException], ...]
    seeds: Callable[[], list[dict[str, Any]]]


def _openai_target() -> ProtocolTarget:
    from vision_agents.plugins.openai.protocol import OpenAIProtocol

    return ProtocolTarget(OpenAIProtocol, lambda m: m, (VisionAgentsError,), _openai_seeds)


def _gemini_target() -> ProtocolTarget:
    import pydantic
    from google.genai import types

    from vision_agents.plugins.gemini.protocol import GeminiProtocol

    return ProtocolTarget(
        GeminiProtocol,
        types.LiveServerMessage.model_validate,
        (VisionAgentsError, pydantic.ValidationError),
        _gemini_seeds,
    )


PROTOCOL_TARGETS: dict[str, Callable[[], ProtocolTarget]] = {
    "openai": _openai_target,
    "gemini": _gemini_target,
}


def fuzz_protocol(name: str, seconds: float, rng: random.Random) -> Report:
    report = Report(name)
    target = PROTOCOL_TARGETS[name]()
    seeds = target.seeds()
    proto = target.make()
    proto.connection_made()
    for i in _timed(seconds):
        if i % 200 == 0:  # a fresh session now and then; a lost link in between
            proto = target.make()
            proto.connection_made()
        message = copy.deepcopy(rng.choice(seeds))
        for _ in range(rng.randrange(0, 4)):
            message = _mutate(message, rng)
        report.cases += 1
        try:
            proto.receive(target.decode(message))
            proto.data_to_send()
            proto.events_received()
            if rng.random() < 0.02:
                proto.connection_lost(delivered=rng.random() < 0.5)
                proto.connection_made()
        except target.refusals:
            report.refused += 1
        except Exception as exc:
            report.finding(
                f"{name}.receive({_short(message, 300)}): {type(exc).__name__}: {exc}",
                _signature(exc),
            )
    return report


# -- the call server -----------------------------------------------------------------------------


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        where = ""
        if record.exc_info and record.exc_info[1] is not None:
            where = f" ({_signature(record.exc_info[1])}: {record.exc_info[1]!r:.200})"
        self.records.append(f"{record.name}: {record.getMessage()[:300]}{where}")


async def _fuzz_server(seconds: float, rng: random.Random) -> Report:
    import aiohttp

    from vision_agents.plugins.webrtc import CallServer
    from vision_agents.plugins.webrtc.server import MAX_BODY_BYTES

    report = Report("server")
    server = CallServer(max_participants=2, join_burst=10**9, join_per_s=10**9)
    server.room("c1")
    await server.start()
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    loop_errors: list[str] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda _l, ctx: loop_errors.append(str(ctx.get("message")))
    )
    base = server.base_url
    good = server.tokens.mint("c1")
    paths = [
        "/",
        "/call/c1",
        "/call/../../etc/passwd",
        "/static/app.js",
        "/static/..%2f..%2fserver.py",
        "/api/check",
        "/api/ws",
        "/api/ws?call=c1&token=" + good,
        "/%00",
        "/call/" + "a" * 5000,
        "/static/",
    ]
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for _ in _timed(seconds):
                kind = rng.randrange(4)
                report.cases += 1
                try:
                    if kind == 0:
                        method = rng.choice(
                            ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]
                        )
                        path = rng.choice(paths)
                        async with session.request(
                            method,
                            base + path,
                            data=rng.randbytes(rng.choice([0, 10, MAX_BODY_BYTES + 1])),
                        ) as r:
                            await r.read()
                            if r.status >= 500:
                                report.finding(f"{method} {path[:80]} -> {r.status}")
                    elif kind == 1:
                        body = (
                            _mutate({"call": "c1", "token": good}, rng)
                            if rng.random() < 0.8
                            else rng.choice(_WEIRD)
                        )
                        async with session.post(
                            base + "/api/check",
                            data=json.dumps(body) if rng.random() < 0.9 else rng.randbytes(20),
                        ) as r:
                            await r.read()
                            if r.status >= 500:
                                report.finding(f"/api/check {_short(body)} -> {r.status}")
                    elif kind == 2:
                        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                        writer.write(
                            rng.choice(
                                [
                                    rng.randbytes(rng.randrange(1, 300)),
                                    b"GET / HTTP/1.1\r\n" + rng.randbytes(50) + b"\r\n\r\n",
                                    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
                                    b"\r\n\r\n",
                                ]
                            )
                        )
                        await writer.drain()
                        try:
                            reply = await asyncio.wait_for(reader.read(200), 0.3)
                        except TimeoutError:
                            reply = b""  # still waiting for the rest of a request: fine
                        if b" 500 " in reply[:20]:
                            report.finding(f"raw request -> {reply[:60]!r}")
                        writer.close()
                    else:
                        token = (
                            server.tokens.mint("c1")
                            if rng.random() < 0.8
                            else rng.choice(["", "x.y", good + "="])
                        )
                        try:
                            async with session.ws_connect(
                                f"{base}/api/ws?call=c1&token={token}"
                            ) as ws:
                                for _ in range(rng.randrange(1, 3)):
                                    message = _mutate(
                                        {
                                            "type": "offer",
                                            "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
                                            "name": "n",
                                        },
                                        rng,
                                    )
                                    if rng.random() < 0.2:
                                        await ws.send_bytes(rng.randbytes(30))
                                    else:
                                        await ws.send_str(json.dumps(message))
                                    answer = await ws.receive(timeout=2)
                                    if answer.type != aiohttp.WSMsgType.TEXT:
                                        break
                        except aiohttp.WSServerHandshakeError as exc:
                            if exc.status >= 500:
                                report.finding(f"ws handshake -> {exc.status}")
                except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                    report.refused += 1
                    if (
                        isinstance(exc, aiohttp.ServerDisconnectedError | TimeoutError)
                        and kind != 2
                    ):
                        report.finding(f"case kind {kind}: {type(exc).__name__}")
        room = server.rooms["c1"]
        for _ in range(100):
            if room.occupied == 0:
                break
            await asyncio.sleep(0.05)
        if room.occupied or room.members:
            report.finding(f"left behind: {room.occupied} seats taken after the run")
    finally:
        await server.stop()
        logging.getLogger().removeHandler(errors)
    for record in errors.records[:10]:
        report.finding(f"ERROR log: {record}")
    for message in loop_errors[:10]:
        report.finding(f"unhandled in the loop: {message}")
    return report


def fuzz_server(seconds: float, rng: random.Random) -> Report:
    return asyncio.run(_fuzz_server(seconds, rng))


TARGETS: dict[str, Callable[[float, random.Random], Report]] = {
    "pcm": fuzz_pcm,
    "resampler": fuzz_resampler,
    "video": fuzz_video,
    "server": fuzz_server,
    "openai": lambda s, r: fuzz_protocol("openai", s, r),
    "gemini": lambda s, r: fuzz_protocol("gemini", s, r),
}


def run(targets: list[str], seconds: float, seed: int) -> list[Report]:
    reports = []
    for name in targets:
        reports.append(TARGETS[name](seconds, random.Random(f"{seed}:{name}")))
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help=f"comma-separated: {', '.join(TARGETS)}"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per target")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; choose from {list(TARGETS)}")
    logging.basicConfig(level=logging.CRITICAL)  # findings come from our own capture
    reports = run(names, args.seconds, args.seed)
    print(f"{'target':<10} {'cases':>8} {'refused':>8} {'failed':>8} {'kinds':>6}")
    for r in reports:
        print(f"{r.target:<10} {r.cases:>8} {r.refused:>8} {r.failed:>8} {len(r.findings):>6}")
    for r in reports:
        for signature, examples in r.findings.items():
            print(f"\n[{r.target}] {signature}")
            for example in examples:
                print("   e.g. " + example.replace("\n", "\n        "))
    return 1 if any(r.findings for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
