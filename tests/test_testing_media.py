"""The media helpers that tests and users' tests measure with."""

from __future__ import annotations

import numpy as np
import pytest

from vision_agents.testing import dominant_hz, tone


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
