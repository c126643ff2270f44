"""Resampler: streaming conversion through real libswresample, checked by counting and by ear (FFT)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vision_agents.core.audio import PcmData, Resampler
from vision_agents.core.types import Participant

RATES = st.sampled_from([8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]) | st.integers(
    8000, 48000
)


def noise(rate: int, channels: int, n: int, seed: int = 0) -> PcmData:
    rng = np.random.default_rng(seed)
    return PcmData((rng.standard_normal((channels, n)) * 3000).astype(np.int16), rate)


def stream(resampler: Resampler, pieces: list[PcmData]) -> tuple[PcmData, list[int]]:
    """Feed pieces, flush, and return the joined output plus each output block's length."""
    outputs = [resampler.process(p) for p in pieces]
    outputs.append(resampler.flush())
    joined = PcmData.empty(outputs[0].sample_rate, outputs[0].channels, outputs[0].format)
    for out in outputs:
        joined.append(out)
    return joined, [len(o) for o in outputs]


# --- duration invariant -----------------------------------------------------------------
# Once flushed, a stream's output is as long as its input to the nearest output sample: the
# Resampler pads libswresample's input with silence at the end and cuts the output to
# n * target / source, rounded. So the tolerance is half a sample, i.e. the total equals
# round(n * target / source) (ties, which Python rounds to even, may go either way). That
# holds for streams shorter than the filter too, which libswresample alone drops.


@settings(max_examples=150, deadline=None)
@given(
    source=RATES,
    target=RATES,
    in_channels=st.integers(1, 2),
    out_channels=st.integers(1, 2),
    sizes=st.lists(st.integers(0, 2400), min_size=1, max_size=25),
)
def test_streamed_output_length_matches_the_rate_ratio(
    source: int, target: int, in_channels: int, out_channels: int, sizes: list[int]
) -> None:
    pcm = noise(source, in_channels, sum(sizes))
    offsets = np.cumsum([0, *sizes])
    pieces = [PcmData(pcm.samples[:, a:b], source) for a, b in itertools.pairwise(offsets)]

    out, _ = stream(Resampler(target, out_channels), pieces)

    exact = sum(sizes) * target / source
    assert abs(len(out) - exact) <= 0.5, (len(out), exact)
    assert (out.sample_rate, out.channels, out.format) == (target, out_channels, "s16")


@settings(max_examples=100, deadline=None)
@given(source=RATES, target=RATES, channels=st.integers(1, 2), n=st.integers(0, 20000))
def test_one_shot_resample_length_matches_the_rate_ratio(
    source: int, target: int, channels: int, n: int
) -> None:
    out = noise(source, channels, n).resample(target)
    assert abs(len(out) - n * target / source) <= 0.5
    assert (out.sample_rate, out.channels) == (target, channels)


# --- no clicks at chunk boundaries ------------------------------------------------------

AMPLITUDE = 0.5
TONE_HZ = 1000
OUT_RATE = 16000


def tone_48k_stereo(seconds: float) -> PcmData:
    t = np.arange(round(48000 * seconds)) / 48000
    wave = AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)
    return PcmData(np.vstack([wave, wave]).astype(np.float32), 48000).to_int16()


def tone_48k_stereo_f32(seconds: float) -> PcmData:
    t = np.arange(round(48000 * seconds)) / 48000
    wave = (AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    return PcmData(np.vstack([wave, wave]), 48000)


def out_of_band_db(signal: np.ndarray) -> tuple[float, float]:
    """(peak frequency, energy outside 1 kHz +/- 10 Hz relative to inside, in dB).

    One second at 16 kHz gives 1 Hz bins; a Blackman window keeps the tone's own
    leakage within +/- 3 bins and below -58 dB beyond, so +/- 10 bins holds the tone.
    """
    spectrum = np.abs(np.fft.rfft(signal * np.blackman(len(signal)))) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / OUT_RATE)
    band = np.abs(freqs - TONE_HZ) <= 10
    ratio = spectrum[~band].sum() / spectrum[band].sum()
    return float(freqs[np.argmax(spectrum)]), float(10 * np.log10(ratio))


# A clean s16 stream sits near -90 dB (16-bit quantisation of a half-scale tone, and
# libswresample's ~-90 dB stopband); clicks every 20 ms put 50 Hz sidebands around the
# tone at about -45 dB. -60 dB leaves 15 dB or more of margin on each side.
MAX_OUT_OF_BAND_DB = -60.0
# The steepest step a sampled sine can take is 2 A sin(pi f / fs); allow 1% for the
# filter's passband ripple and 2 int16 steps of rounding.
MAX_STEP = 2 * AMPLITUDE * np.sin(np.pi * TONE_HZ / OUT_RATE) * 1.01 + 2 / 32768


def check_clean_tone(blocks: list[PcmData]) -> tuple[float, float, float]:
    """Join output blocks; return (peak Hz, out-of-band dB, worst step at block boundaries)."""
    signal = np.concatenate([b.to_float32().samples[0] for b in blocks]).astype(np.float64)
    boundaries = np.cumsum([len(b) for b in blocks])[:-1]
    # skip the first and last 50 ms: the stream's own start and end are not boundaries
    edge = OUT_RATE // 20
    inner = boundaries[(boundaries > edge) & (boundaries < len(signal) - edge)]
    assert len(inner) >= 40
    worst_step = float(np.abs(signal[inner] - signal[inner - 1]).max())
    peak, db = out_of_band_db(signal[edge : edge + OUT_RATE])
    return peak, db, worst_step


@pytest.mark.parametrize("make_tone", [tone_48k_stereo, tone_48k_stereo_f32])
def test_streamed_tone_is_clean_across_chunk_boundaries(make_tone) -> None:
    resampler = Resampler(OUT_RATE, 1)
    blocks = [resampler.process(chunk) for chunk in make_tone(1.2).chunks(20)]
    blocks.append(resampler.flush())
    assert sum(len(b) for b in blocks) == round(1.2 * OUT_RATE)

    peak, db, worst_step = check_clean_tone(blocks)

    assert peak == TONE_HZ
    assert db < MAX_OUT_OF_BAND_DB
    assert worst_step <= MAX_STEP


def test_the_tone_check_catches_clicks_from_stateless_resampling() -> None:
    # Each chunk through its own fresh resampler: same lengths, but no filter history.
    blocks = [chunk.resample(OUT_RATE, 1) for chunk in tone_48k_stereo(1.2).chunks(20)]
    assert all(len(b) == 320 for b in blocks)

    peak, db, worst_step = check_clean_tone(blocks)

    assert peak == TONE_HZ
    assert db > MAX_OUT_OF_BAND_DB
    assert worst_step > MAX_STEP


# --- behaviour --------------------------------------------------------------------------


def test_passthrough_shares_the_input_samples() -> None:
    pcm = noise(16000, 1, 320)
    out = Resampler(16000, 1).process(pcm)
    assert out is not pcm and np.shares_memory(out.samples, pcm.samples)
    assert np.array_equal(out.samples, pcm.samples)


def test_same_rate_remix_and_format_change_have_no_delay() -> None:
    pcm = PcmData(np.array([[1000, -1000], [3000, 1000]], np.int16), 24000)
    out = Resampler(24000, 1, "f32").process(pcm)
    assert out.format == "f32" and out.samples.tolist() == [[2000 / 32768, 0.0]]
    stereo = Resampler(24000, 2).process(pcm.to_mono())
    assert stereo.samples.tolist() == [[2000, 0], [2000, 0]]


def test_target_format_converts_and_none_keeps_input_format() -> None:
    pcm = noise(48000, 2, 960)
    assert Resampler(16000, 1, "f32").process(pcm).format == "f32"
    assert Resampler(16000, 1).process(pcm.to_float32()).format == "f32"
    assert Resampler(16000, 1).process(pcm).format == "s16"


def test_mono_to_stereo_copies_the_voice_to_both_channels() -> None:
    out = noise(24000, 1, 24000).resample(48000, 2)
    assert out.channels == 2 and np.array_equal(out.samples[0], out.samples[1])


def test_stereo_to_mono_keeps_the_level_of_a_centred_signal() -> None:
    pcm = PcmData(np.full((2, 4800), 0.25, np.float32), 48000)
    out = pcm.resample(16000, 1)
    assert np.allclose(out.samples[0, 100:-100], 0.25, atol=1e-3)


def test_input_change_mid_stream_starts_a_new_stream_without_losing_audio() -> None:
    resampler = Resampler(16000, 1)
    parts = [noise(48000, 2, 4800), noise(44100, 1, 4410), noise(16000, 1, 1600).to_float32()]
    parts.append(noise(8000, 2, 800).to_float32())
    out, _ = stream(resampler, parts)
    # four 100 ms pieces; each seam flushes the previous stream's tail: nothing is lost
    assert len(out) == 6400


def test_flush_ends_the_stream_and_the_resampler_is_reusable() -> None:
    resampler = Resampler(16000, 1)
    pieces = list(noise(48000, 2, 48000, seed=1).chunks(20))
    first, _ = stream(resampler, pieces)
    second, _ = stream(resampler, pieces)
    fresh, _ = stream(Resampler(16000, 1), pieces)
    assert np.array_equal(first.samples, fresh.samples)
    assert np.array_equal(second.samples, fresh.samples)


def test_reset_drops_the_held_back_tail() -> None:
    resampler = Resampler(16000, 1)
    resampler.process(noise(48000, 1, 960))
    resampler.reset()
    assert len(resampler.flush()) == 0


def test_empty_input_gives_empty_output_in_target_shape() -> None:
    resampler = Resampler(16000, 2)
    out = resampler.process(PcmData.empty(48000, 1, "f32"))
    assert (len(out), out.sample_rate, out.channels, out.format) == (0, 16000, 2, "f32")
    assert len(resampler.flush()) == 0


def test_output_keeps_participant_and_follows_timestamps() -> None:
    who = Participant(user_id="u3")
    resampler = Resampler(16000, 1)
    outputs = []
    for i, chunk in enumerate(noise(48000, 2, 4800).chunks(20)):
        chunk.participant, chunk.timestamp = who, 1000.0 + i * 0.02
        outputs.append(resampler.process(chunk))
    outputs.append(resampler.flush())
    assert all(o.participant is who for o in outputs)
    starts = np.cumsum([0] + [len(o) for o in outputs[:-1]])
    for out, start in zip(outputs, starts, strict=True):
        assert out.timestamp == pytest.approx(1000.0 + start / 16000)


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0,), ValueError, "target_rate.*got 0"),
        ((-16000,), ValueError, "target_rate.*got -16000"),
        ((16000.5,), TypeError, "target_rate.*got 16000.5"),
        ((16000, 0), ValueError, "target_channels.*got 0"),
        ((16000, 9), ValueError, "target_channels.*got 9"),
        ((16000, 1, "int16"), ValueError, "target_format.*'int16'"),
    ],
)
def test_bad_arguments_are_refused_naming_the_value(
    args: tuple[object, ...], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Resampler(*args)  # type: ignore[arg-type]


def test_unsupported_remix_is_refused_naming_both_counts() -> None:
    resampler = Resampler(16000, 2)
    with pytest.raises(ValueError, match="6 channels to 2"):
        resampler.process(noise(48000, 6, 960))


def test_process_refuses_non_pcm() -> None:
    with pytest.raises(TypeError, match="ndarray"):
        Resampler(16000).process(np.zeros(10, np.int16))  # type: ignore[arg-type]
