"""Voice activity detection: a model scores 16 kHz windows, a small state machine finds turns.

``VAD`` holds the model and the thresholds; ``VAD.create_stream()`` gives one ``VADStream``
per participant, which takes audio at any rate and returns what happened in it. No I/O, no
tasks: feed audio, get ``SpeechStart`` / ``SpeechEnd`` back, so every edge case is testable.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from vision_agents.core.audio import PcmData, Resampler

VAD_SAMPLE_RATE = 16000


@dataclass
class SpeechStart:
    """Speech began; ``at`` is the wall-clock time of the audio that crossed the threshold."""

    at: float


@dataclass
class SpeechEnd:
    """A turn ended after enough silence; ``audio`` is the speech with its padding (16 kHz mono)."""

    audio: PcmData
    speech_ended_at: float
    """Wall-clock time the last voiced window arrived."""
    detected_at: float = field(default_factory=time.monotonic)


VADResult = SpeechStart | SpeechEnd


class VAD(ABC):
    """Speech probability per window plus turn thresholds.

    ``threshold``: probability that starts speech; ``neg_threshold`` (default threshold - 0.15)
    ends it. ``min_speech_ms`` of voiced audio confirm a start (short clicks are ignored);
    ``min_silence_ms`` of silence end a turn; ``prefix_padding_ms`` of audio before the start
    are kept for the STT; ``max_speech_s`` forces a turn end on endless speech.
    """

    window_samples: int = 512

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        neg_threshold: float | None = None,
        min_speech_ms: float = 64.0,
        min_silence_ms: float = 400.0,
        prefix_padding_ms: float = 300.0,
        max_speech_s: float = 30.0,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold!r}")
        neg = threshold - 0.15 if neg_threshold is None else neg_threshold
        if not 0.0 <= neg <= threshold:
            raise ValueError(f"neg_threshold must be in [0, threshold={threshold}], got {neg!r}")
        for name, value in (
            ("min_speech_ms", min_speech_ms),
            ("min_silence_ms", min_silence_ms),
            ("prefix_padding_ms", prefix_padding_ms),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0 ms, got {value!r}")
        if max_speech_s <= 0:
            raise ValueError(f"max_speech_s must be positive, got {max_speech_s!r}")
        self.threshold = threshold
        self.neg_threshold = neg
        self.min_speech_ms = min_speech_ms
        self.min_silence_ms = min_silence_ms
        self.prefix_padding_ms = prefix_padding_ms
        self.max_speech_s = max_speech_s

    @abstractmethod
    def new_state(self) -> object:
        """Fresh per-stream model state (e.g. recurrent state)."""

    @abstractmethod
    def probability(self, window: NDArray[np.float32], state: object) -> tuple[float, object]:
        """Speech probability of one window of ``window_samples`` at 16 kHz, and the new state."""

    def create_stream(self, clock: Callable[[], float] = time.monotonic) -> VADStream:
        """One stream's turn detection; ``clock`` stamps when audio arrived (tests pass a
        fake one; the turn lengths themselves are counted in samples, never in wall time)."""
        return VADStream(self, clock)


class VADStream:
    """One audio stream's turn detection: ``process(pcm)`` returns the events in that audio."""

    def __init__(self, vad: VAD, clock: Callable[[], float] = time.monotonic) -> None:
        self.vad = vad
        self._clock = clock
        self._resampler = Resampler(VAD_SAMPLE_RATE, 1, "f32")
        self._state = vad.new_state()
        self._pending = np.zeros(0, dtype=np.float32)
        self._window_ms = vad.window_samples / VAD_SAMPLE_RATE * 1000
        pad = int(vad.prefix_padding_ms / self._window_ms)
        self._prefix: list[NDArray[np.float32]] = []
        self._prefix_max = max(pad, 0)
        self._speech: list[NDArray[np.float32]] = []
        self._speaking = False
        self._voiced_ms = 0.0
        self._silence_ms = 0.0
        self._last_voiced_at = 0.0
        self.last_probability = 0.0

    @property
    def speaking(self) -> bool:
        return self._speaking

    def process(self, pcm: PcmData) -> list[VADResult]:
        samples = self._resampler.process(pcm).samples.reshape(-1).astype(np.float32)
        self._pending = np.concatenate([self._pending, samples])
        n = self.vad.window_samples
        out: list[VADResult] = []
        now = self._clock()
        while len(self._pending) >= n:
            window, self._pending = self._pending[:n], self._pending[n:]
            result = self._step(window, now)
            if result is not None:
                out.append(result)
        return out

    def _step(self, window: NDArray[np.float32], now: float) -> VADResult | None:
        vad = self.vad
        prob, self._state = vad.probability(window, self._state)
        self.last_probability = prob
        if not self._speaking:
            self._prefix.append(window)
            if prob >= vad.threshold:
                self._voiced_ms += self._window_ms
                if self._voiced_ms >= vad.min_speech_ms:
                    self._speaking = True
                    self._silence_ms = 0.0
                    self._last_voiced_at = now
                    self._speech = list(self._prefix)
                    self._prefix = []
                    return SpeechStart(at=now)
            else:
                self._voiced_ms = 0.0
            keep = self._prefix_max + int(vad.min_speech_ms / self._window_ms) + 1
            del self._prefix[:-keep]
            return None
        self._speech.append(window)
        if prob >= vad.neg_threshold:
            self._silence_ms = 0.0
            self._last_voiced_at = now
        else:
            self._silence_ms += self._window_ms
        too_long = len(self._speech) * self._window_ms >= vad.max_speech_s * 1000
        if self._silence_ms >= vad.min_silence_ms or too_long:
            return self._end()
        return None

    def _end(self) -> SpeechEnd:
        audio = PcmData(np.concatenate(self._speech), VAD_SAMPLE_RATE, 1)
        self._speech = []
        self._speaking = False
        self._voiced_ms = 0.0
        self._silence_ms = 0.0
        self._prefix = []
        return SpeechEnd(
            audio=audio, speech_ended_at=self._last_voiced_at, detected_at=self._clock()
        )


class LevelVAD(VAD):
    """Speech is sound above ``level_dbfs``: no model, so any loud sound (music, a door)
    counts too. Enough to tell "someone is talking, keep quiet"; where real speech matters,
    use a model (``silero.VAD()``). Thresholds and padding as in ``VAD``.
    """

    def __init__(self, level_dbfs: float = -40.0, **thresholds: float) -> None:
        super().__init__(**thresholds)
        if not (-100.0 < level_dbfs < 0.0):
            raise ValueError(f"level_dbfs must be between -100 and 0 dBFS, got {level_dbfs!r}")
        self.level_dbfs = level_dbfs

    def new_state(self) -> object:
        return None

    def probability(self, window: NDArray[np.float32], state: object) -> tuple[float, object]:
        rms = float(np.sqrt(np.mean(np.square(window, dtype=np.float64))))
        dbfs = 20.0 * np.log10(max(rms, 1e-10))
        # A logistic step 3 dB wide around the level: ``threshold`` 0.5 is the level itself.
        return float(1.0 / (1.0 + np.exp(-(dbfs - self.level_dbfs) / 3.0))), state
