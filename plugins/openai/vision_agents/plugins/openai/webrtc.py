"""OpenAI Realtime over WebRTC: an aiortc peer, the ``oai-events`` data channel, media tracks.

A thin connection with the same ``send`` / ``recv_bytes`` / ``close`` surface as the SDK's
WebSocket connection, so ``realtime.py`` and the protocol layer (``protocol.py``) are shared:
the same client and server events travel over the data channel. Only the audio differs: ours
goes out on an audio track (paced 20 ms frames, silence in between, like a microphone) and
the model's comes back on the remote track, handed to ``on_audio`` as 24 kHz mono s16.

The SDP offer goes through the SDK's ``client.realtime.calls.create`` (multipart ``sdp`` +
``session``), answered with the SDP answer (201 ``application/sdp``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import aiortc
from aiortc.mediastreams import MediaStreamError

import openai
from vision_agents.core.agents.audio_output import AudioOutputTrack
from vision_agents.core.audio import PcmData, Resampler
from vision_agents.core.edge.sctp_backoff import unacknowledged_bytes, use_rto_backoff
from vision_agents.core.utils.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

EVENTS_CHANNEL = "oai-events"
_CLOSED = b""


class WebRTCConnection:
    """One WebRTC call with the Realtime API (or the local test server)."""

    def __init__(
        self,
        pc: aiortc.RTCPeerConnection,
        channel: aiortc.RTCDataChannel,
        audio_out: AudioOutputTrack,
        on_audio: Callable[[bytes], None],
    ) -> None:
        self._pc = pc
        self._channel = channel
        self.audio_out = audio_out
        """Our microphone: ``write`` user audio into it (any rate; played at real time)."""
        self._on_audio = on_audio
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._readers: list[asyncio.Task[None]] = []
        self._closed = False
        self.call_id: str | None = None

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            self._inbox.put_nowait(message.encode() if isinstance(message, str) else message)

        @channel.on("close")
        def on_close() -> None:
            self._inbox.put_nowait(_CLOSED)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self._inbox.put_nowait(_CLOSED)

        @pc.on("track")
        def on_track(track: aiortc.MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._readers.append(asyncio.get_running_loop().create_task(self._read(track)))

    @classmethod
    async def open(
        cls,
        client: openai.AsyncOpenAI,
        session: dict[str, Any],
        on_audio: Callable[[bytes], None],
        *,
        ice_servers: list[aiortc.RTCIceServer] | None = None,
        open_within: float = 10.0,
    ) -> WebRTCConnection:
        """Offer, POST it to ``/realtime/calls``, apply the answer, wait for the channel."""
        pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=ice_servers or []))
        try:
            channel = pc.createDataChannel(EVENTS_CHANNEL)
            use_rto_backoff(pc)
            audio_out = AudioOutputTrack(sample_rate=48000, channels=1)
            pc.addTrack(audio_out)
            conn = cls(pc, channel, audio_out, on_audio)
            opened = asyncio.Event()
            channel.on("open", opened.set)
            await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
            answer = await client.realtime.calls.create(
                sdp=pc.localDescription.sdp,
                session=session,  # type: ignore[arg-type]
            )
            location = answer.response.headers.get("location", "")
            conn.call_id = location.rsplit("/", 1)[-1] or None
            await pc.setRemoteDescription(aiortc.RTCSessionDescription(answer.text, "answer"))
            await asyncio.wait_for(opened.wait(), open_within)
            return conn
        except BaseException:
            await pc.close()
            raise

    @property
    def max_message_size(self) -> int:
        """The largest data channel message the remote peer accepts (its SDP says so)."""
        sctp = self._pc.sctp
        size = getattr(sctp, "_remote_max_message_size", 65536) if sctp else 65536
        return int(size) or 1 << 30

    @property
    def buffered_bytes(self) -> int:
        """Bytes given to the data channel that the service has not acknowledged yet: its
        ``bufferedAmount`` and what the SCTP association holds unsent or unacknowledged."""
        return int(self._channel.bufferedAmount) + unacknowledged_bytes(self._pc)

    async def send(self, event: dict[str, Any]) -> None:
        if self._closed or self._channel.readyState != "open":
            raise ConnectionError("the oai-events data channel is not open")
        self._channel.send(json.dumps(event, separators=(",", ":")))

    async def recv_bytes(self) -> bytes:
        message = await self._inbox.get()
        if message == _CLOSED:
            self._inbox.put_nowait(_CLOSED)  # every later reader sees it too
            raise ConnectionError(f"WebRTC call ended ({self._pc.connectionState})")
        return message

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.audio_out.stop()
        await cancel_and_wait(*self._readers)
        await self._pc.close()
        self._inbox.put_nowait(_CLOSED)

    async def _read(self, track: aiortc.MediaStreamTrack) -> None:
        """The model's voice: decoded 48 kHz frames to 24 kHz mono for the protocol layer."""
        resampler = Resampler(24000, 1, "s16")
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                pcm = resampler.process(PcmData.from_av_frame(frame))  # type: ignore[arg-type]
                if len(pcm):
                    try:
                        self._on_audio(pcm.to_bytes())
                    except Exception:
                        logger.exception("handling WebRTC audio failed")
