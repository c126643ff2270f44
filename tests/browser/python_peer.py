"""A Python (aiortc) participant that joins a call the way the page does, for tests without a browser."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from fractions import Fraction

import aiohttp
import aiortc
import av
import numpy as np


class SolidColourTrack(aiortc.MediaStreamTrack):
    """A camera that shows one colour, at ``fps``."""

    kind = "video"

    def __init__(
        self, rgb: tuple[int, int, int], fps: float = 15.0, size: tuple[int, int] = (320, 240)
    ) -> None:
        super().__init__()
        self.fps = fps
        self._image = np.empty((size[1], size[0], 3), dtype=np.uint8)
        self._image[:] = rgb
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        await asyncio.sleep(1 / self.fps)
        frame = av.VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts = round(self._count * 90000 / self.fps)
        frame.time_base = Fraction(1, 90000)
        self._count += 1
        return frame


@dataclass
class PythonPeer:
    pc: aiortc.RTCPeerConnection
    session: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    seat: int

    @classmethod
    async def join(
        cls,
        join_url: str,
        *,
        video: aiortc.MediaStreamTrack | None = None,
        audio: aiortc.MediaStreamTrack | None = None,
        screen: aiortc.MediaStreamTrack | None = None,
        name: str = "py",
    ) -> PythonPeer:
        """Join as the page does; ``screen``: a track on the page's screen sender (it reaches
        the agent once ``share_screen`` says so)."""
        base, _, fragment = join_url.partition("#token=")
        origin, _, call_id = base.rpartition("/call/")
        session = aiohttp.ClientSession()
        try:
            async with session.post(
                f"{origin}/api/check", json={"call": call_id, "token": fragment}
            ) as r:
                info = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"join refused: {info}")
            pc = aiortc.RTCPeerConnection(
                aiortc.RTCConfiguration(bundlePolicy=aiortc.RTCBundlePolicy.MAX_BUNDLE)
            )
            for track in (audio, video):
                if track is not None:
                    pc.addTransceiver(track, direction="sendonly")
            screen_sender = (
                pc.addTransceiver(screen, direction="sendonly") if screen is not None else None
            )
            for _ in range(int(info["slots"])):
                pc.addTransceiver("audio", direction="recvonly")
                pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            ws = await session.ws_connect(f"{origin}/api/ws?call={call_id}&token={fragment}")
            offer: dict[str, str | None] = {
                "type": "offer",
                "sdp": pc.localDescription.sdp,
                "name": name,
            }
            if screen_sender is not None:
                offer["screen_mid"] = screen_sender.mid
            await ws.send_json(offer)
            answer = await ws.receive_json(timeout=10)
            if answer.get("type") != "answer":
                raise RuntimeError(f"no answer: {answer}")
            await pc.setRemoteDescription(aiortc.RTCSessionDescription(answer["sdp"], "answer"))
        except BaseException:
            await session.close()
            raise
        return cls(pc, session, ws, int(answer["seat"]))

    async def share_screen(self, size: tuple[int, int] | None) -> None:
        """Say the screen is shared now (at ``size``), or no longer (None)."""
        message: dict[str, object] = {"type": "screen", "sharing": size is not None}
        if size is not None:
            message["width"], message["height"] = size
        await self.ws.send_json(message)

    async def leave(self) -> None:
        await self.ws.close()
        await self.session.close()
        await self.pc.close()
