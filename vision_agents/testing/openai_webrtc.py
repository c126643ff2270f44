"""The WebRTC side of the local OpenAI Realtime server: an aiortc peer per ``/v1/realtime/calls``.

Events travel over the ``oai-events`` data channel (validated by the same strict validator as
the WebSocket side); scripted reply audio plays on the peer's outgoing audio track at real
time; the caller's audio track is decoded and recorded as 24 kHz mono s16.

Loopback ICE: aioice leaves 127.0.0.1 out of its host candidates, so two peers on a machine
with no other interface never connect. ``allow_loopback_ice()`` wraps aioice's interface
discovery, process-wide and once, to offer 127.0.0.1 first. It lives here, in the test kit,
and is applied when the test server starts its WebRTC side: production code never calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aioice.ice
import aiortc
from aiortc.mediastreams import MediaStreamError

from vision_agents.core.agents.audio_output import AudioOutputTrack
from vision_agents.core.audio import PcmData, Resampler
from vision_agents.core.edge.sctp_backoff import use_rto_backoff

logger = logging.getLogger(__name__)

AUDIO_RATE = 24000


def allow_loopback_ice() -> None:
    """Make aioice offer 127.0.0.1 as a host candidate (idempotent, process-wide)."""
    current = aioice.ice.get_host_addresses
    if getattr(current, "_offers_loopback", False):
        return

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = current(use_ipv4, use_ipv6)
        if use_ipv4 and "127.0.0.1" not in addresses:
            addresses = ["127.0.0.1", *addresses]
        return addresses

    with_loopback._offers_loopback = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = with_loopback


class ServerPeer:
    """The server's end of one call: data channel in/out, audio out, caller audio recorded."""

    def __init__(
        self, on_message: Callable[[str], None], on_audio: Callable[[bytes], None]
    ) -> None:
        self.pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
        self.audio_out = AudioOutputTrack()
        """The model's voice: scripted reply audio written here plays at real time."""
        self.channel: aiortc.RTCDataChannel | None = None
        self.opened = asyncio.Event()
        self.closed = False
        self._tasks: list[asyncio.Task[None]] = []

        @self.pc.on("datachannel")
        def on_channel(channel: aiortc.RTCDataChannel) -> None:
            if channel.label != "oai-events":
                return
            self.channel = channel
            channel.on("message", lambda m: on_message(m if isinstance(m, str) else m.decode()))
            channel.on("close", self._mark_closed)
            self.opened.set()

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState in ("failed", "closed"):
                self._mark_closed()

        @self.pc.on("track")
        def on_track(track: aiortc.MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._tasks.append(asyncio.get_running_loop().create_task(_record(track, on_audio)))

    def _mark_closed(self) -> None:
        self.closed = True

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(aiortc.RTCSessionDescription(offer_sdp, "offer"))
        use_rto_backoff(self.pc)  # as a real service's SCTP does
        if any(t.kind == "audio" for t in self.pc.getTransceivers()):
            self.pc.addTrack(self.audio_out)  # answers on the caller's audio transceiver
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    def send(self, text: str) -> None:
        if self.channel is None or self.channel.readyState != "open":
            raise ConnectionError("the oai-events channel is not open")
        self.channel.send(text)

    async def close(self) -> None:
        self.closed = True
        self.audio_out.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()


async def _record(track: aiortc.MediaStreamTrack, on_audio: Callable[[bytes], None]) -> None:
    resampler = Resampler(AUDIO_RATE, 1, "s16")
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            pcm = resampler.process(PcmData.from_av_frame(frame))  # type: ignore[arg-type]
            if len(pcm):
                on_audio(pcm.to_bytes())
