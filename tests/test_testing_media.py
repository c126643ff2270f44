"""The media helpers that tests and users' tests measure with."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from vision_agents.testing import dominant_hz, make_test_video, tone


@pytest.mark.parametrize(("hz", "rate"), [(440, 16000), (1200, 24000), (660, 48000)])
def test_dominant_hz_finds_the_tone_in_floats_and_in_s16_bytes(hz: int, rate: int) -> None:
    pcm = tone(hz, 0.5, sample_rate=rate)
    assert abs(dominant_hz(pcm.to_float32().samples[0], rate) - hz) < 5
    assert abs(dominant_hz(pcm.to_int16().to_bytes(), rate) - hz) < 5


def test_dominant_hz_picks_the_louder_of_two_tones() -> None:
    t = np.arange(8000) / 16000
    mixed = 0.2 * np.sin(2 * np.pi * 300 * t) + 0.6 * np.sin(2 * np.pi * 2000 * t)
    assert abs(dominant_hz(mixed, 16000) - 2000) < 5


def test_dominant_hz_names_too_few_samples() -> None:
    with pytest.raises(ValueError, match="at least 2 samples"):
        dominant_hz(np.zeros(1), 16000)


def test_a_test_video_interleaves_its_audio_with_the_video(tmp_path: Path) -> None:
    """A clip with 15 s of audio: the file's first audio packet comes before its video at
    0.5 s (written after all the video, it came after 9.87 s of it, so a player heard
    nothing for 10 s)."""
    path = make_test_video(
        tmp_path / "clip.mkv", seconds=1, audio=tone(440, 15.0, sample_rate=48000)
    )
    with av.open(str(path)) as container:
        video_before_audio = 0.0
        for packet in container.demux():
            if packet.pts is None:
                continue
            if packet.stream.type == "audio":
                break
            video_before_audio = float(packet.pts * packet.time_base)
    assert video_before_audio < 0.5, video_before_audio
