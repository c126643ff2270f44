"""``scripts/fuzz.py`` for a bounded time on the inputs this SDK takes from outside, plus the
regressions it found. The provider translators (``openai``, ``gemini`` targets) are run by the
script itself; their findings are reported, not asserted here."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from vision_agents.core.audio import PcmData, Resampler

ROOT = Path(__file__).resolve().parents[1]


def _fuzz_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("va_fuzz", ROOT / "scripts" / "fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["va_fuzz"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", ["pcm", "resampler", "video", "server"])
def test_fuzz_target_finds_nothing(target: str) -> None:
    fuzz = _fuzz_module()
    (report,) = fuzz.run([target], 3.0, seed=7)
    assert report.cases > 20, f"only {report.cases} cases ran"
    assert report.findings == {}, "\n".join(
        f"{sig}: {examples[0][:2000]}" for sig, examples in report.findings.items()
    )


@pytest.mark.timeout(60)
def test_fuzz_protocol_targets_run() -> None:
    """The translator harness drives both protocol objects through their public receive()."""
    fuzz = _fuzz_module()
    for name in ("openai", "gemini"):
        report = fuzz.fuzz_protocol(name, 0.5, random.Random(1))
        assert report.cases > 100


@pytest.mark.parametrize("channels", [6, 7, 8])
@pytest.mark.parametrize("fmt", ["s16", "f32"])
def test_resampling_many_channels(channels: int, fmt: str) -> None:
    """Found by the fuzzer: 8 planar channels broke PyAV (IndexError, or a crash on output)."""
    pcm = PcmData(np.zeros((channels, 4800), np.int16), 48000).to_format(fmt)  # type: ignore[arg-type]
    out = pcm.resample(16000, channels)
    assert (out.channels, len(out), out.format) == (channels, 1600, fmt)
    stream = Resampler(24000, channels)
    assert len(stream.process(pcm)) + len(stream.flush()) == 2400


def test_absurd_sample_rates_are_refused_up_front() -> None:
    """Found by the fuzzer: 2**40 Hz was accepted, then overflowed inside libswresample."""
    with pytest.raises(ValueError, match="up to 768000"):
        PcmData(np.zeros(3, np.float32), 2**40)
    with pytest.raises(ValueError, match="up to 768000"):
        Resampler(2**31)
