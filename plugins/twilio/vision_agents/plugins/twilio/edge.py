"""`PhoneCallEdge`: one phone call (one Twilio Media Stream) as an `EdgeTransport`.

The caller is the call's only participant, with one audio track (8 kHz, as the phone network
carries it). The agent's voice is resampled to 8 kHz, coded as mu-law and sent in 20 ms
messages as it plays; silence is not sent. When the agent's ``AudioOutputTrack`` is cleared
(a barge-in), the edge sends ``clear`` so Twilio drops what it still has queued too, and a
``mark`` follows each stretch of speech so ``marks_played`` says what the caller really heard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from fractions import Fraction

import aiortc
import av
import numpy as np

from vision_agents.core.agents.audio_output import AudioOutputTrack
from vision_agents.core.audio import PcmData, Resampler, mulaw
from vision_agents.core.edge.events import (
    CallEndedEvent,
    DTMFReceivedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    TrackAddedEvent,
    TrackRemovedEvent,
)
from vision_agents.core.edge.transport import Call, EdgeTransport
from vision_agents.core.types import Participant, User
from vision_agents.core.utils.live_track import LiveQueueTrack, audio_frames
from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.plugins.twilio import protocol

logger = logging.getLogger(__name__)

_TIME_BASE = Fraction(1, mulaw.SAMPLE_RATE)


class PhoneCallEdge(EdgeTransport):
    """A phone call answered by ``TwilioServer``; hand it to an ``Agent`` as its edge.

    ``call_sid``, ``caller`` (the number that called), ``called`` (the number it called) and
    ``parameters`` (the stream's custom parameters) describe the call. The agent leaving hangs
    up (the stream closes, and with ``<Connect><Stream>`` Twilio ends the call); the caller
    hanging up ends the call for the agent (``CallEndedEvent``).
    """

    def __init__(
        self,
        start: protocol.Start,
        send: Callable[[str], Awaitable[None]],
        hang_up: Callable[[], Awaitable[None]],
        *,
        caller: str = "",
        called: str = "",
        inbound_keep_s: float = 5.0,
    ) -> None:
        super().__init__()
        self.call_sid = start.call_sid
        self.stream_sid = start.stream_sid
        self.caller = caller
        self.called = called
        self.parameters = {k: v for k, v in start.custom_parameters.items() if k != "va_ticket"}
        self.media_received = 0
        """20 ms messages of the caller's audio received."""
        self.media_sent = 0
        """Messages of the agent's voice sent to the caller."""
        self.clears_sent = 0
        self.marks_sent = 0
        self.marks_played: list[str] = []
        """Names of our marks that Twilio reported played (or dropped by a ``clear``)."""
        self._send, self._hang_up = send, hang_up
        self._person = Participant(user_id=f"phone:{start.call_sid}", name="caller")
        self._track: LiveQueueTrack[av.AudioFrame] = LiveQueueTrack(
            "audio", keep=max(1, int(inbound_keep_s * 50))
        )
        # Bound now: what the caller says while the agent starts up waits (up to
        # ``inbound_keep_s``) instead of being lost.
        self._track.bind_loop(asyncio.get_running_loop())
        self._tasks = TaskOwner(f"twilio-call:{start.call_sid}")
        self._joined = False
        self._ended = False
        self._clear_pending = False
        self._sent_since_clear = False

    @property
    def participants(self) -> list[Participant]:
        return [self._person] if self._joined and not self._ended else []

    @property
    def ended(self) -> bool:
        return self._ended

    async def create_call(self, call_type: str, call_id: str) -> Call:
        return Call(call_type, call_id, {"call_sid": self.call_sid})

    async def join(self, call: Call, user: User) -> Participant:
        if self._joined:
            raise RuntimeError(f"phone call {self.call_sid} already has an agent")
        self._joined = True
        if not self._ended:
            self.events.send(ParticipantJoinedEvent(participant=self._person))
            self.events.send(
                TrackAddedEvent(participant=self._person, track=self._track, kind="audio")
            )
        else:
            self.events.send(CallEndedEvent(call_id=self.call_sid, reason="the caller hung up"))
        return Participant.for_user(user)

    async def publish_audio(self, track: aiortc.MediaStreamTrack) -> None:
        if isinstance(track, AudioOutputTrack):
            track.on_clear(self._on_clear)
        self._tasks.spawn(self._send_voice(track), "voice")

    async def publish_video(self, track: aiortc.MediaStreamTrack) -> None:
        logger.info("phone call %s: a phone call carries no video; not published", self.call_sid)

    async def leave(self) -> None:
        """Hang up: stop sending, close the stream (Twilio then ends the call)."""
        await self._tasks.close()
        self._finish("the agent left")
        await self._hang_up()

    # -- from the server ---------------------------------------------------------------------

    def receive(self, message: protocol.Message) -> None:
        """A message of this call's stream (after ``start``)."""
        if isinstance(message, protocol.Media):
            if message.track not in ("inbound", "inbound_track"):
                return
            self.media_received += 1
            samples = mulaw.decode(message.payload)
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = mulaw.SAMPLE_RATE
            frame.pts = message.timestamp_ms * (mulaw.SAMPLE_RATE // 1000)
            frame.time_base = _TIME_BASE
            self._track.deliver(frame)
        elif isinstance(message, protocol.Dtmf):
            self.events.send(DTMFReceivedEvent(participant=self._person, digit=message.digit))
        elif isinstance(message, protocol.Mark):
            self.marks_played.append(message.name)
        elif isinstance(message, protocol.Stop):
            self._finish("the caller hung up")

    def stream_closed(self) -> None:
        """The WebSocket closed (with or without a ``stop``)."""
        self._finish("the call's media stream closed")

    # -- internals ---------------------------------------------------------------------------

    def _finish(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        self._track.deliver(None)
        if self._joined:
            self.events.send(
                TrackRemovedEvent(participant=self._person, track_id=self._track.id, kind="audio")
            )
            self.events.send(ParticipantLeftEvent(participant=self._person))
            self.events.send(CallEndedEvent(call_id=self.call_sid, reason=reason))
        logger.info("phone call %s ended: %s", self.call_sid, reason)

    def _on_clear(self) -> None:
        self._clear_pending = True

    async def _send_voice(self, track: aiortc.MediaStreamTrack) -> None:
        # The track plays in real time, so Twilio never holds more than a frame or two of ours:
        # a barge-in has little to clear, and the ``clear`` covers the rest.
        resampler = Resampler(mulaw.SAMPLE_RATE, 1, "s16")
        talking = False
        try:
            async for frame in audio_frames(track):
                if self._ended:
                    return
                if self._clear_pending:
                    # This frame left the track before the clear: it goes too.
                    self._clear_pending = False
                    resampler.reset()
                    if self._sent_since_clear:
                        self._sent_since_clear = False
                        talking = False
                        self.clears_sent += 1
                        await self._send(protocol.clear(self.stream_sid))
                    continue
                if not frame.to_ndarray().any():
                    if talking:
                        talking = False
                        self.marks_sent += 1
                        await self._send(protocol.mark(self.stream_sid, f"va-{self.marks_sent}"))
                    continue
                pcm = resampler.process(PcmData.from_av_frame(frame))
                if len(pcm) == 0:
                    continue
                samples = np.ascontiguousarray(pcm.samples[0], dtype=np.int16)
                await self._send(protocol.media(self.stream_sid, mulaw.encode(samples)))
                self.media_sent += 1
                talking = self._sent_since_clear = True
        except ConnectionError as exc:
            logger.info("phone call %s: the stream closed while sending (%s)", self.call_sid, exc)
