"""NaN and infinite float samples never pass silently: sanitised (NaN -> 0, inf -> +-1), counted,
and logged as a bounded warning, in PcmData, the Resampler and int16 conversion."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tests.hardening_kit import capture_logs
from vision_agents.core.audio import PcmData, Resampler
from vision_agents.core.audio.pcm import NON_FINITE, convert_format

BAD = np.array([np.nan, np.inf, -np.inf, 0.5], dtype=np.float32)


def test_pcmdata_sanitises_a_copy_and_counts() -> None:
    before = NON_FINITE.samples
    raw = BAD.copy()
    pcm = PcmData(raw, 16000)
    assert pcm.samples.tolist() == [[0.0, 1.0, -1.0, 0.5]]
    assert np.isnan(raw[0]), "the caller's array is left alone"
    assert NON_FINITE.samples == before + 3


def test_to_int16_and_convert_format_never_make_full_scale_from_nan() -> None:
    assert PcmData(BAD, 16000).to_int16().samples.tolist() == [[0, 32767, -32768, 16384]]
    assert convert_format(BAD.reshape(1, -1), "s16").tolist() == [[0, 32767, -32768, 16384]]
    assert convert_format(BAD.reshape(1, -1), "f32").tolist() == [[0.0, 1.0, -1.0, 0.5]]


def test_from_bytes_and_base64_are_sanitised() -> None:
    pcm = PcmData.from_bytes(BAD.astype("<f4").tobytes(), 24000, format="f32")
    assert np.isfinite(pcm.samples).all()


@pytest.mark.parametrize("rate", [48000, 8000, 16000])
def test_resampler_output_stays_finite_and_quiet_after_a_nan_block(rate: int) -> None:
    resampler = Resampler(16000, 1, "s16")
    t = np.arange(rate // 50) / rate
    quiet = (0.01 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    poisoned = quiet.copy()
    poisoned[::7] = np.nan
    out = [resampler.process(PcmData(quiet, rate)) for _ in range(5)]
    out.append(resampler.process(PcmData(poisoned, rate)))
    out += [resampler.process(PcmData(quiet, rate)) for _ in range(5)]
    out.append(resampler.flush())
    samples = np.concatenate([o.samples[0] for o in out])
    assert np.abs(samples.astype(np.int32)).max() < 3000, "NaN became full-scale noise"


def test_warnings_are_bounded() -> None:
    with capture_logs(logging.WARNING) as logs:
        for _ in range(1000):
            PcmData(BAD, 16000)
    warnings = [r for r in logs.records if "NaN" in r.getMessage()]
    assert 1 <= len(warnings) <= 11
