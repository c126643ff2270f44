"""Plays a media file as live aiortc tracks, the way a participant's camera and microphone send."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import av

from vision_agents.core.utils.live_track import LiveQueueTrack

logger = logging.getLogger(__name__)

_QUEUE_FRAMES = 30


class LiveFileTrack(LiveQueueTrack[av.AudioFrame | av.VideoFrame]):
    """One stream of a ``MediaFilePlayer``. Like a live device, it never waits for the reader:
    if frames are not pulled, the oldest are dropped (``dropped`` counts them)."""

    def __init__(self, kind: str, player: MediaFilePlayer) -> None:
        super().__init__(kind, keep=_QUEUE_FRAMES)
        self._player = player
        self.capture_times: dict[int, float] = {}
        """pts -> time.time() when the frame was produced (bounded to the newest 1000)."""

    @property
    def sent(self) -> int:
        """Frames produced by the source so far."""
        return self.produced

    def _on_frame(self, frame: av.AudioFrame | av.VideoFrame) -> None:
        if frame.pts is not None:
            self.capture_times[frame.pts] = time.time()
            if len(self.capture_times) > 1000:
                del self.capture_times[next(iter(self.capture_times))]

    async def _before_recv(self) -> None:
        self._player._ensure_started()


class MediaFilePlayer:
    """Decodes a file in a thread and releases its frames at their real time.

    ``audio`` is 48 kHz stereo s16 in 20 ms frames (what WebRTC delivers); ``video`` keeps the
    file's frames and timestamps. Either is None when the file has no such stream. Decoding
    starts at the first ``recv`` on either track; ``stop()`` ends both tracks and the thread.
    """

    def __init__(self, path: str | Path, *, loop: bool = False) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"media file not found: {self.path}")
        with av.open(str(self.path)) as probe:
            has_audio = bool(probe.streams.audio)
            has_video = bool(probe.streams.video)
        self.audio = LiveFileTrack("audio", self) if has_audio else None
        self.video = LiveFileTrack("video", self) if has_video else None
        self._loop_file = loop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def tracks(self) -> list[LiveFileTrack]:
        return [t for t in (self.audio, self.video) if t is not None]

    def _ensure_started(self) -> None:
        if self._thread is not None or self._stop.is_set():
            return
        loop = asyncio.get_running_loop()
        for track in self.tracks:
            track.bind_loop(loop)
        self._thread = threading.Thread(
            target=self._run, name=f"player:{self.path.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """End both tracks now and stop the decoding thread."""
        self._stop.set()
        for track in self.tracks:
            track.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _deliver(
        self, track: LiveFileTrack | None, frame: av.AudioFrame | av.VideoFrame | None
    ) -> None:
        if track is not None and not track.deliver(frame):
            self._stop.set()  # nobody is listening any more

    def _run(self) -> None:
        try:
            start = time.monotonic()
            offset = 0.0
            while not self._stop.is_set():
                offset = self._play_once(start, offset)
                if not self._loop_file:
                    break
        except Exception:
            logger.exception("playing %s failed", self.path)
        finally:
            self._deliver(self.audio, None)
            self._deliver(self.video, None)

    def _play_once(self, start: float, offset: float) -> float:
        """Play the file once; returns the media time at which a following loop starts."""
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=48000, frame_size=960)
        end = offset
        with av.open(str(self.path)) as container:
            streams = [s for s in (*container.streams.video[:1], *container.streams.audio[:1])]
            for frame in container.decode(*streams):
                if self._stop.is_set():
                    break
                outs: list[av.AudioFrame | av.VideoFrame]
                if isinstance(frame, av.AudioFrame):
                    outs, track = list(resampler.resample(frame)), self.audio
                elif isinstance(frame, av.VideoFrame):
                    outs, track = [frame], self.video
                else:
                    continue
                t = offset + (frame.time or 0.0)
                for out in outs:
                    out_t = (
                        t
                        if isinstance(out, av.VideoFrame)
                        else offset + float(out.pts or 0) / 48000
                    )
                    end = max(end, out_t)
                    if self._loop_file and out.pts is not None and offset:
                        out.pts += round(offset / float(out.time_base or 1))
                    delay = start + out_t - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return end
                    self._deliver(track, out)
            for out in resampler.resample(None):
                self._deliver(self.audio, out)
        return end + 0.04
