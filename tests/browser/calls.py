"""One browser test, two edges: what a page shows, asked the same way of either call page.

The embedded call server's page (``window.vaCall``) seats members and plays each seat in a
tile; the Janus page (``window.vaJanus``) keys everything by display name. ``CallPages`` hides
that: tests name the participant they mean and get the element, the track or the roster.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from tests.browser.page import READ_INDEX_OF

VIDEO_FRAMES = """(video) => video ? video.getVideoPlaybackQuality().totalVideoFrames : 0"""

CAPTURE_AUDIO = """(track) => {
  const ctx = new AudioContext({ sampleRate: 48000 });
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const node = ctx.createScriptProcessor(4096, 1, 1);
  window.captured = [];
  node.onaudioprocess = (e) => {
    const data = e.inputBuffer.getChannelData(0);
    for (let i = 0; i < data.length; i += 3) window.captured.push(data[i]);  // 16 kHz
  };
  source.connect(node);
  node.connect(ctx.destination);
  window.captureNode = node;
  return ctx.state;
}"""


class CallPages(ABC):
    """How to read one kind of call page."""

    state: str  # the page's state object, for expressions

    @abstractmethod
    async def others(self, page: Any, me: str) -> list[str]:
        """The names the page lists besides its own, sorted."""

    @abstractmethod
    def video_js(self, who: str) -> str:
        """An expression for the <video> element playing ``who`` (null when none)."""

    @abstractmethod
    def audio_track_js(self, who: str) -> str:
        """An expression for the MediaStreamTrack of ``who``'s voice."""

    async def frames_played(self, page: Any, who: str) -> int:
        video = await page.evaluate_handle(self.video_js(who))
        return int(await video.evaluate(VIDEO_FRAMES))

    async def read_index(self, page: Any, who: str) -> int:
        """The frame number drawn into the frame ``who``'s video shows now (-1: none yet)."""
        video = await page.evaluate_handle(self.video_js(who))
        return int(await video.evaluate(READ_INDEX_OF))

    async def start_audio_capture(self, page: Any, who: str) -> None:
        track = await page.evaluate_handle(self.audio_track_js(who))
        await track.evaluate(CAPTURE_AUDIO)

    async def error(self, page: Any) -> str | None:
        return await page.evaluate(f"{self.state}.error")  # type: ignore[no-any-return]

    async def log(self, page: Any) -> list[str]:
        return list(await page.evaluate(f"{self.state}.log"))

    async def left_at(self, page: Any, who: str) -> float | None:
        """Wall-clock seconds when the page learnt ``who`` had gone (None: not yet)."""
        at = await page.evaluate(f"{self.state}.left[{who!r}] ?? null")
        return None if at is None else at / 1000

    async def pressed_leave_at(self, page: Any) -> float:
        return float(await page.evaluate(f"{self.state}.leftAt")) / 1000


class EmbeddedPages(CallPages):
    state = "vaCall"

    async def others(self, page: Any, me: str) -> list[str]:
        names = await page.evaluate("vaCall.members.map((m) => m.name)")
        return sorted(n for n in names if n != me)

    def _seat(self, who: str) -> str:
        return f"(vaCall.members.find((m) => m.name === {who!r}) || {{}}).seat"

    def video_js(self, who: str) -> str:
        return f'document.querySelector(`.tile[data-seat="${{{self._seat(who)}}}"] video`)'

    def audio_track_js(self, who: str) -> str:
        return f"vaCall.slots[{self._seat(who)}].audio.receiver.track"


class JanusPages(CallPages):
    state = "vaJanus"

    async def others(self, page: Any, me: str) -> list[str]:
        return sorted(await page.evaluate("vaJanus.members"))

    def video_js(self, who: str) -> str:
        return f"vaJanus.videos[{who!r}] || null"

    def audio_track_js(self, who: str) -> str:
        return f"vaJanus.audios[{who!r}].srcObject.getAudioTracks()[0]"
