"""The Gemini Live service's session limits, modelled for the local server and scalable in time.

From the Live API docs ("Session management" / "Live API capabilities"):

- The context window of a session is 128k tokens. Without context window compression an
  audio-only session therefore ends after about 15 minutes and an audio+video session after
  about 2 minutes. The token rates below are the ones those figures imply (128k over 15 min
  of audio; the rest of 128k over 2 min taken by video at 1 frame a second), so the local
  server cuts a session exactly where the docs say the service does.
- With ``contextWindowCompression`` (``slidingWindow``) the service drops the oldest turns
  once the context passes ``triggerTokens`` (default: 80% of the window), down to
  ``targetTokens`` (default: half the trigger), and the session goes on.
- A connection lasts about 10 minutes; ``goAway`` (with ``timeLeft``) comes about 60 s
  before the server closes it.
- Resumption handles are issued at idle points only: while the model generates or a tool
  call waits for its result the update says ``resumable: false`` with no handle.

``time_scale`` makes tests fast: with 60, one real second stands for one minute of service
time (media counts 60x, the connection lives 10 s, goAway comes 1 s before the end).
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONTEXT_WINDOW_TOKENS = 128_000
AUDIO_TOKENS_PER_S = CONTEXT_WINDOW_TOKENS / (15 * 60)
VIDEO_TOKENS_PER_FRAME = CONTEXT_WINDOW_TOKENS / (2 * 60) - AUDIO_TOKENS_PER_S
"""Per frame at the service's 1 frame a second, so that audio+video fills the window in 2 min."""
TEXT_CHARS_PER_TOKEN = 4
OUTPUT_AUDIO_TOKENS_PER_S = AUDIO_TOKENS_PER_S


@dataclass(frozen=True)
class LiveLimits:
    """Which of the service's limits the local server enforces, and how fast time runs."""

    time_scale: float = 1.0
    context_window_tokens: int = CONTEXT_WINDOW_TOKENS
    connection_lifetime_s: float | None = 600.0
    """Service seconds a connection lives (None: forever)."""
    go_away_before_s: float = 60.0
    enforce_context: bool = True

    def real(self, service_seconds: float) -> float:
        return service_seconds / self.time_scale


@dataclass
class Ledger:
    """Token accounting of one session (carried across resumptions with its handle)."""

    context: float = 0.0
    """Tokens in the context window now."""
    input_audio: float = 0.0
    input_image: float = 0.0
    input_text: float = 0.0
    output_audio: float = 0.0
    output_text: float = 0.0
    reported: dict[str, int] = field(default_factory=dict)
    """What usage reports already counted, per modality (whole tokens)."""
    compressions: int = 0

    def add_input_audio(self, seconds: float, limits: LiveLimits) -> None:
        tokens = seconds * limits.time_scale * AUDIO_TOKENS_PER_S
        self.input_audio += tokens
        self.context += tokens

    def add_frame(self, limits: LiveLimits) -> None:
        tokens = limits.time_scale * VIDEO_TOKENS_PER_FRAME
        self.input_image += tokens
        self.context += tokens

    def add_input_text(self, text: str) -> None:
        tokens = len(text) / TEXT_CHARS_PER_TOKEN
        self.input_text += tokens
        self.context += tokens

    def add_output(self, audio_seconds: float, text: str, limits: LiveLimits) -> None:
        audio = audio_seconds * limits.time_scale * OUTPUT_AUDIO_TOKENS_PER_S
        self.output_audio += audio
        self.output_text += len(text) / TEXT_CHARS_PER_TOKEN
        self.context += audio + len(text) / TEXT_CHARS_PER_TOKEN

    def compress(self, trigger: int | None, target: int | None, limits: LiveLimits) -> bool:
        """Sliding window: past the trigger, drop the oldest turns down to the target."""
        trigger = trigger or int(0.8 * limits.context_window_tokens)
        target = target or trigger // 2
        if self.context <= trigger:
            return False
        self.context = float(target)
        self.compressions += 1
        return True

    def usage_delta(self) -> dict[str, int]:
        """Whole tokens per modality not reported yet; marks them reported."""
        now = {
            "AUDIO": int(self.input_audio),
            "IMAGE": int(self.input_image),
            "TEXT": int(self.input_text),
            "OUT_AUDIO": int(self.output_audio),
            "OUT_TEXT": int(self.output_text),
        }
        delta = {k: v - self.reported.get(k, 0) for k, v in now.items()}
        self.reported = now
        return delta

    def copy(self) -> Ledger:
        return Ledger(
            self.context,
            self.input_audio,
            self.input_image,
            self.input_text,
            self.output_audio,
            self.output_text,
            dict(self.reported),
            self.compressions,
        )


def usage_metadata(delta: dict[str, int]) -> dict[str, object]:
    """A ``usageMetadata`` message body for one report."""
    prompt = [
        {"modality": m, "tokenCount": delta[m]} for m in ("TEXT", "AUDIO", "IMAGE") if delta[m]
    ]
    response = [
        {"modality": m, "tokenCount": delta[k]}
        for m, k in (("TEXT", "OUT_TEXT"), ("AUDIO", "OUT_AUDIO"))
        if delta[k]
    ]
    prompt_total = delta["TEXT"] + delta["AUDIO"] + delta["IMAGE"]
    response_total = delta["OUT_TEXT"] + delta["OUT_AUDIO"]
    return {
        "promptTokenCount": prompt_total,
        "responseTokenCount": response_total,
        "totalTokenCount": prompt_total + response_total,
        "promptTokensDetails": prompt,
        "responseTokensDetails": response,
    }
