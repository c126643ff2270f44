"""Helpers for the hardening tests: an aiortc participant with codec choice and per-seat frame
counters, and a capture of every log record from every logger."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import aiohttp
import aiortc
from aiortc.mediastreams import MediaStreamError

from vision_agents.plugins.webrtc.ice import gather_on


def split_join_url(join_url: str) -> tuple[str, str, str]:
    """(origin, call id, token) of a join link."""
    base, _, token = join_url.partition("#token=")
    origin, _, call_id = base.rpartition("/call/")
    return origin, call_id, token


@dataclass
class Peer:
    """A participant joined the way the page joins, counting decoded video frames per seat."""

    pc: aiortc.RTCPeerConnection
    session: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    seat: int
    frames: Counter[int] = field(default_factory=Counter)
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def join(
        cls,
        join_url: str,
        *,
        video: aiortc.MediaStreamTrack | None = None,
        receive_codec: str | None = None,
        name: str = "py",
    ) -> Peer:
        """Join; ``receive_codec`` (e.g. "video/H264") is the only video codec it accepts."""
        origin, call_id, token = split_join_url(join_url)
        session = aiohttp.ClientSession()
        try:
            async with session.post(
                f"{origin}/api/check", json={"call": call_id, "token": token}
            ) as r:
                info = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"join refused ({r.status}): {info}")
            pc = aiortc.RTCPeerConnection()
            if video is not None:
                pc.addTransceiver(video, direction="sendonly")
            seats: list[aiortc.RTCRtpTransceiver] = []
            for _ in range(int(info["slots"])):
                pc.addTransceiver("audio", direction="recvonly")
                seats.append(pc.addTransceiver("video", direction="recvonly"))
            if receive_codec is not None:
                codecs = [
                    c
                    for c in aiortc.RTCRtpSender.getCapabilities("video").codecs
                    if c.mimeType == receive_codec
                ]
                for transceiver in seats:
                    transceiver.setCodecPreferences(codecs)
            with gather_on("127.0.0.1"):
                await pc.setLocalDescription(await pc.createOffer())
            ws = await session.ws_connect(f"{origin}/api/ws?call={call_id}&token={token}")
            await ws.send_json({"type": "offer", "sdp": pc.localDescription.sdp, "name": name})
            while True:
                answer = await ws.receive_json(timeout=10)
                if answer.get("type") != "members":
                    break
            if answer.get("type") != "answer":
                raise RuntimeError(f"no answer: {answer}")
            await pc.setRemoteDescription(aiortc.RTCSessionDescription(answer["sdp"], "answer"))
        except BaseException:
            await session.close()
            raise
        peer = cls(pc, session, ws, int(answer["seat"]))
        for seat, transceiver in enumerate(seats):
            peer._readers.append(asyncio.ensure_future(peer._read(seat, transceiver)))
        return peer

    async def _read(self, seat: int, transceiver: aiortc.RTCRtpTransceiver) -> None:
        track = transceiver.receiver.track
        try:
            while True:
                frame = await track.recv()
                self.frames[seat] += 1
                self.sizes[seat] = (frame.width, frame.height)  # type: ignore[union-attr]
        except MediaStreamError:
            return

    async def leave(self) -> None:
        await self.ws.close()
        await self.session.close()
        await self.pc.close()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


class Records(logging.Handler):
    """Every record at ``level`` or above, from every logger."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at_least(self, level: int) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno >= level]

    def describe(self, level: int = logging.ERROR) -> str:
        return "\n".join(
            f"{r.levelname} {r.name}: {r.getMessage()}" + (" [traceback]" if r.exc_info else "")
            for r in self.at_least(level)
        )


@contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[Records]:
    """Records from every logger (root opened to ``level``), restored afterwards."""
    handler = Records(level)
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(min(level, old) if old else level)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def unhandled_loop_errors() -> list[dict[str, object]]:
    """Install a recording exception handler on the running loop; returns its list."""
    errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    return errors
