"""`PhoneCaller`: a phone call placed the way Twilio places one, for testing phone agents.

It posts the number's voice webhook (signed with the auth token, Twilio's way: HMAC-SHA1 over
the URL and the sorted form fields), follows the TwiML's ``<Connect><Stream>`` to the Media
Streams WebSocket, and then behaves like Twilio's side of the stream:

- the caller's speech (``say``) and silence otherwise go out as 20 ms mu-law ``media``
  messages in real time, with chunk numbers and timestamps;
- the agent's ``media`` is queued and played in real time into ``heard``, as a phone would;
- a ``mark`` is echoed once everything queued before it has played; ``clear`` drops the queue
  and echoes the pending marks (both as Twilio documents);
- ``press`` sends DTMF, ``hang_up`` sends ``stop``.

Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt

from vision_agents.core.audio import PcmData, mulaw
from vision_agents.core.utils.tasks import TaskOwner

_RATE = 8000
_CHUNK = 160  # 20 ms
_SILENCE = b"\xff" * _CHUNK


class CallRejected(Exception):
    """The webhook did not connect the call (its status and what it said are in the text)."""


@dataclass(frozen=True)
class HeardChunk:
    at: float
    """When this 20 ms played."""
    samples: npt.NDArray[np.int16]


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio sends with a webhook POST."""
    data = url + "".join(key + params[key] for key in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class PhoneCaller:
    """One simulated call to ``webhook_url``; use ``async with PhoneCaller(...) as call:``."""

    def __init__(
        self,
        webhook_url: str,
        *,
        auth_token: str | None,
        call_sid: str | None = None,
        caller: str = "+15005550006",
        called: str = "+15005550001",
        signature: str | None = None,
    ) -> None:
        self.webhook_url = webhook_url
        self.call_sid = call_sid or "CA" + uuid.uuid4().hex
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.account_sid = "AC" + "0" * 32
        self.caller, self.called = caller, called
        self.twiml = ""
        self.heard: list[HeardChunk] = []
        self.clears: list[float] = []
        """When each ``clear`` arrived."""
        self.marks_echoed: list[str] = []
        self.media_received = 0
        self.speech_onsets: list[float] = []
        """When the first loud chunk of each ``say`` went out."""
        self.closed = asyncio.Event()
        self._auth_token = auth_token
        self._signature = signature
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._outgoing: deque[bytes | None] = deque()  # None: a `say`'s speech starts here
        self._playout: deque[bytes | str] = deque()  # audio, or the name of a mark
        self._tasks = TaskOwner("phone-caller")
        self._chunk = 0
        self._tick = asyncio.Event()

    async def __aenter__(self) -> PhoneCaller:
        await self.dial()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hang_up()

    # -- placing the call ---------------------------------------------------------------------

    async def dial(self) -> None:
        """Post the webhook and open the stream; raises ``CallRejected`` if it is refused."""
        params = {
            "AccountSid": self.account_sid,
            "CallSid": self.call_sid,
            "From": self.caller,
            "To": self.called,
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        headers = {}
        if self._signature is not None:
            headers["X-Twilio-Signature"] = self._signature
        elif self._auth_token is not None:
            headers["X-Twilio-Signature"] = twilio_signature(
                self._auth_token, self.webhook_url, params
            )
        self._session = aiohttp.ClientSession()
        async with self._session.post(self.webhook_url, data=params, headers=headers) as resp:
            self.twiml = await resp.text()
            if resp.status != 200:
                raise CallRejected(f"webhook answered {resp.status}: {self.twiml.strip()}")
        url, parameters = _stream_of(self.twiml)
        self._ws = await self._session.ws_connect(url)
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": self.stream_sid,
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": parameters,
                },
            }
        )
        self._tasks.spawn(self._receive(), "receive")
        self._tasks.spawn(self._clock(), "clock")

    def say(self, pcm: PcmData) -> None:
        """Speak ``pcm`` (any rate) after whatever is still being said."""
        samples = np.ascontiguousarray(pcm.resample(_RATE, 1).to_int16().samples[0])
        coded = mulaw.encode(samples)
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)  # about -40 dBFS
        onset = int(loud[0]) // _CHUNK if len(loud) else 0
        for n, i in enumerate(range(0, len(coded), _CHUNK)):
            if n == onset:
                self._outgoing.append(None)
            self._outgoing.append(coded[i : i + _CHUNK])

    @property
    def speaking(self) -> bool:
        return bool(self._outgoing)

    async def ask(self, pcm: PcmData, timeout_s: float = 30.0) -> float:
        """``say`` and wait until the speech has started going out; returns its onset time."""
        before = len(self.speech_onsets)
        self.say(pcm)
        await self._until(lambda: len(self.speech_onsets) > before, timeout_s, "speech to go out")
        return self.speech_onsets[before]

    async def wait_for_answer(
        self, since: float, *, quiet_s: float = 1.5, timeout_s: float = 60.0
    ) -> PcmData:
        """Wait until the agent's voice was heard after ``since`` and then ``quiet_s`` of
        silence; returns what was heard from its first sound on."""
        ticks = int(quiet_s / 0.02)

        def answered() -> bool:
            first = self.first_sound_after(since)
            recent = self.heard[-ticks:]
            return (
                first is not None
                and recent[0].at > first
                and all(_rms(c.samples) < 200 for c in recent)
            )

        await self._until(answered, timeout_s, "an answer")
        return self.heard_since(self.first_sound_after(since) or since)

    async def _until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if self.closed.is_set():
                raise ConnectionError(f"the call ended while waiting for {what}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {what} within {timeout_s} s")
            self._tick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tick.wait(), remaining)

    async def press(self, digit: str) -> None:
        await self._send({"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"digit": digit}})

    async def send_raw(self, text: str) -> None:
        """Send any text on the stream (hostile-input tests)."""
        if self._ws is not None:
            await self._ws.send_str(text)

    async def hang_up(self) -> None:
        """Send ``stop`` and close the stream; safe to call twice."""
        ws = self._ws
        if ws is not None and not ws.closed:
            try:
                stop = {"accountSid": self.account_sid, "callSid": self.call_sid}
                await self._send({"event": "stop", "streamSid": self.stream_sid, "stop": stop})
            except (ConnectionError, RuntimeError):
                pass
            await ws.close()
        await self._tasks.close()
        if self._session is not None:
            await self._session.close()
        self.closed.set()

    # -- what the caller heard ----------------------------------------------------------------

    def heard_since(self, since: float) -> PcmData:
        """What played from ``since`` on, as 8 kHz PCM."""
        chunks = [c.samples for c in self.heard if c.at >= since]
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return PcmData(samples, _RATE)

    def first_sound_after(self, since: float, level: float = 500.0) -> float | None:
        for chunk in self.heard:
            if chunk.at >= since and _rms(chunk.samples) > level:
                return chunk.at
        return None

    def first_silence_after(self, since: float, level: float = 200.0) -> float | None:
        for chunk in self.heard:
            if chunk.at >= since and _rms(chunk.samples) < level:
                return chunk.at
        return None

    # -- Twilio's side of the stream ----------------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is None:
            raise RuntimeError("dial() first")
        await self._ws.send_str(json.dumps(message))

    async def _clock(self) -> None:
        # One tick per 20 ms on an absolute schedule: send a chunk, play a chunk.
        started = time.monotonic()
        tick = 0
        while True:
            tick += 1
            await asyncio.sleep(max(0.0, started + tick * 0.02 - time.monotonic()))
            now = time.monotonic()
            chunk = _SILENCE
            while self._outgoing and self._outgoing[0] is None:
                self._outgoing.popleft()
                self.speech_onsets.append(now)
            if self._outgoing:
                chunk = self._outgoing.popleft() or _SILENCE
            self._chunk += 1
            media = {
                "track": "inbound",
                "chunk": str(self._chunk),
                "timestamp": str(self._chunk * 20),
                "payload": base64.b64encode(chunk.ljust(_CHUNK, b"\xff")).decode(),
            }
            try:
                await self._send({"event": "media", "streamSid": self.stream_sid, "media": media})
            except (ConnectionError, RuntimeError):
                return
            await self._echo_marks()
            played = self._playout.popleft() if self._playout else _SILENCE
            assert isinstance(played, bytes)
            self.heard.append(HeardChunk(now, mulaw.decode(played.ljust(_CHUNK, b"\xff"))))
            self._tick.set()

    async def _echo_marks(self) -> None:
        while self._playout and isinstance(self._playout[0], str):
            name = self._playout.popleft()
            assert isinstance(name, str)
            self.marks_echoed.append(name)
            await self._send(
                {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}
            )

    async def _receive(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            event = data.get("event")
            if event == "media":
                self.media_received += 1
                payload = base64.b64decode(data["media"]["payload"])
                self._playout.extend(
                    payload[i : i + _CHUNK] for i in range(0, len(payload), _CHUNK)
                )
            elif event == "mark":
                self._playout.append(str(data["mark"]["name"]))
            elif event == "clear":
                self.clears.append(time.monotonic())
                marks = [item for item in self._playout if isinstance(item, str)]
                self._playout.clear()
                self._playout.extend(marks)
        self.closed.set()


def _stream_of(twiml: str) -> tuple[str, dict[str, str]]:
    root = ET.fromstring(twiml)
    if root.find("Reject") is not None:
        raise CallRejected(f"the webhook rejected the call: {twiml.strip()}")
    stream = root.find("Connect/Stream")
    if stream is None or not stream.get("url"):
        raise CallRejected(f"no <Connect><Stream url=...> in the TwiML: {twiml.strip()}")
    parameters = {
        p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter") if p.get("name")
    }
    return str(stream.get("url")), parameters


def _rms(samples: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0
