"""PcmData: construction, validation, round trips and slicing, through the public API."""

from __future__ import annotations

import base64
from fractions import Fraction

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vision_agents.core.audio import AudioFormat, PcmData
from vision_agents.core.types import Participant

RATES = st.sampled_from([8000, 11025, 16000, 22050, 24000, 44100, 48000])


@st.composite
def pcm_blocks(draw: st.DrawFn, format: AudioFormat | None = None) -> PcmData:
    """Any block: s16 over the full range, or f32 in [-1, 1]."""
    fmt = format or draw(st.sampled_from(["s16", "f32"]))
    channels = draw(st.integers(1, 2))
    n = draw(st.integers(0, 2000))
    if fmt == "s16":
        samples = draw(arrays(np.int16, (channels, n)))
    else:
        floats = st.floats(-1.0, 1.0, width=32, allow_nan=False)
        samples = draw(arrays(np.float32, (channels, n), elements=floats))
    return PcmData(samples, draw(RATES), timestamp=draw(st.none() | st.floats(0, 2e9)))


def same_audio(a: PcmData, b: PcmData) -> bool:
    return (
        a.sample_rate == b.sample_rate
        and a.format == b.format
        and a.samples.shape == b.samples.shape
        and np.array_equal(a.samples, b.samples)
    )


# --- construction and validation -------------------------------------------------------


def test_mono_1d_is_stored_planar_with_derived_properties() -> None:
    who = Participant(user_id="u1")
    pcm = PcmData(np.arange(480, dtype=np.int16), 16000, participant=who, timestamp=12.5)
    assert pcm.samples.shape == (1, 480)
    assert (pcm.sample_rate, pcm.channels, pcm.format) == (16000, 1, "s16")
    assert len(pcm) == pcm.samples_per_channel == 480
    assert pcm.duration == pytest.approx(0.03)
    assert pcm.duration_ms == pytest.approx(30.0)
    assert pcm.participant is who and pcm.timestamp == 12.5
    assert repr(pcm) == "PcmData(16000 Hz, 1 ch, s16, 480 samples, 30.0 ms)"


def test_2d_planar_and_1d_interleaved_give_the_same_block() -> None:
    planar = np.array([[1, 2, 3], [-1, -2, -3]], dtype=np.float32) / 4
    interleaved = planar.T.reshape(-1)
    a = PcmData(planar, 48000)
    b = PcmData(interleaved, 48000, channels=2)
    assert a.channels == b.channels == 2 and a.format == "f32"
    assert np.array_equal(a.samples, b.samples)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint8, np.int64])
def test_other_dtypes_are_refused_naming_the_dtype(dtype: type) -> None:
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        PcmData(np.zeros(10, dtype=dtype), 16000)


def test_big_endian_input_is_accepted_as_native() -> None:
    pcm = PcmData(np.array([1, -2, 300], dtype=">i2"), 8000)
    assert pcm.format == "s16" and pcm.samples.dtype.isnative
    assert pcm.samples.tolist() == [[1, -2, 300]]


@pytest.mark.parametrize(
    ("samples", "channels", "match"),
    [
        (np.zeros((2, 10), np.int16), 1, "channels=1"),
        (np.zeros((960, 2), np.int16), None, r"\(960, 2\).*samples\.T"),
        (np.zeros((960, 2), np.int16), 2, r"channels=2.*samples\.T"),
        (np.zeros(9, np.int16), 2, "9 samples"),
        (np.zeros(10, np.int16), 0, "got 0"),
        (np.zeros(10, np.int16), 9, "got 9"),
        (np.zeros((1, 2, 3), np.int16), None, r"\(1, 2, 3\)"),
    ],
)
def test_bad_channels_are_refused_naming_the_value(
    samples: np.ndarray, channels: int | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        PcmData(samples, 16000, channels)


@pytest.mark.parametrize(("rate", "error"), [(0, ValueError), (-8000, ValueError)])
def test_non_positive_rate_is_refused_naming_it(rate: int, error: type[Exception]) -> None:
    with pytest.raises(error, match=f"sample_rate.*got {rate}"):
        PcmData(np.zeros(4, np.int16), rate)


@pytest.mark.parametrize("rate", [16000.0, "16000", True, None])
def test_non_integer_rate_is_refused_naming_it(rate: object) -> None:
    with pytest.raises(TypeError, match=f"sample_rate.*got {rate!r}"):
        PcmData(np.zeros(4, np.int16), rate)  # type: ignore[arg-type]


def test_numpy_integer_rate_is_accepted() -> None:
    assert PcmData(np.zeros(4, np.int16), np.int64(24000)).sample_rate == 24000  # type: ignore[arg-type]


def test_bad_format_name_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="'int16'"):
        PcmData.from_bytes(b"", 16000, format="int16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'pcm'"):
        PcmData.empty(16000, format="pcm")  # type: ignore[arg-type]


def test_empty_block() -> None:
    pcm = PcmData.empty(24000, 2, "f32")
    assert (len(pcm), pcm.channels, pcm.format, pcm.duration) == (0, 2, "f32", 0.0)
    assert pcm.to_bytes() == b"" and list(pcm.chunks(20)) == []


# --- round trips ------------------------------------------------------------------------


@settings(deadline=None)
@given(pcm_blocks())
def test_bytes_round_trip(pcm: PcmData) -> None:
    data = pcm.to_bytes()
    assert len(data) == len(pcm) * pcm.channels * pcm.samples.dtype.itemsize
    back = PcmData.from_bytes(data, pcm.sample_rate, pcm.channels, pcm.format)
    assert same_audio(back, pcm)


def test_bytes_are_interleaved_little_endian() -> None:
    pcm = PcmData(np.array([[1, 2], [256, -1]], dtype=np.int16), 8000)
    assert pcm.to_bytes() == bytes([1, 0, 0, 1, 2, 0, 0xFF, 0xFF])


def test_from_bytes_refuses_a_partial_frame_naming_the_length() -> None:
    with pytest.raises(ValueError, match=r"got 6 bytes.*4 bytes each"):
        PcmData.from_bytes(b"\x00" * 6, 16000, channels=2)


@settings(deadline=None)
@given(pcm_blocks(), st.booleans())
def test_base64_round_trip_standard_and_urlsafe(pcm: PcmData, urlsafe: bool) -> None:
    text = pcm.to_base64()
    assert base64.b64decode(text) == pcm.to_bytes()
    if urlsafe:
        text = base64.urlsafe_b64encode(pcm.to_bytes()).decode().rstrip("=")
    back = PcmData.from_base64(text, pcm.sample_rate, pcm.channels, pcm.format)
    assert same_audio(back, pcm)


def test_from_base64_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="base64"):
        PcmData.from_base64("not base64!!", 16000)


@settings(deadline=None)
@given(pcm_blocks())
def test_av_frame_round_trip(pcm: PcmData) -> None:
    frame = pcm.to_av_frame()
    assert (frame.samples, frame.sample_rate, frame.layout.nb_channels) == (
        len(pcm),
        pcm.sample_rate,
        pcm.channels,
    )
    assert frame.format.name == {"s16": "s16", "f32": "flt"}[pcm.format]
    assert same_audio(PcmData.from_av_frame(frame), pcm)


@settings(deadline=None)
@given(pcm_blocks(), st.integers(1, 700), st.integers(0, 10**6))
def test_av_frames_round_trip_with_sample_pts(pcm: PcmData, size: int, pts_start: int) -> None:
    frames = pcm.to_av_frames(size, pts_start=pts_start)
    assert [f.pts for f in frames] == [pts_start + i * size for i in range(len(frames))]
    assert all(f.time_base == Fraction(1, pcm.sample_rate) for f in frames)
    assert all(f.samples == size for f in frames[:-1])
    joined = PcmData.empty(pcm.sample_rate, pcm.channels, pcm.format)
    for frame in frames:
        joined.append(PcmData.from_av_frame(frame))
    assert same_audio(joined, pcm)


def test_av_frames_default_is_one_frame() -> None:
    pcm = PcmData(np.zeros((2, 960), np.int16), 48000)
    (frame,) = pcm.to_av_frames()
    assert frame.samples == 960 and frame.pts == 0


@pytest.mark.parametrize(
    "av_format", ["s16", "s16p", "flt", "fltp", "s32", "s32p", "dbl", "dblp", "u8"]
)
@pytest.mark.parametrize("layout", ["mono", "stereo"])
def test_from_av_frame_reads_every_common_format(av_format: str, layout: str) -> None:
    # Build the frame with libswresample itself, so its layout is what decoders produce.
    t = np.arange(480) / 48000
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = -0.25 * np.sin(2 * np.pi * 440 * t)
    source = PcmData(np.vstack([left, right]).astype(np.float32), 48000)
    if layout == "mono":
        source = source.to_mono()
    frame = source.to_av_frame()
    (converted,) = av.AudioResampler(format=av_format, layout=layout, rate=48000).resample(frame)
    assert converted.format.name == av_format

    pcm = PcmData.from_av_frame(converted)

    assert pcm.format == ("s16" if av_format in ("s16", "s16p", "u8") else "f32")
    assert (pcm.channels, pcm.sample_rate, len(pcm)) == (source.channels, 48000, 480)
    step = {"u8": 1 / 128, "s16": 1 / 32768, "s16p": 1 / 32768}.get(av_format, 1e-6)
    np.testing.assert_allclose(pcm.to_float32().samples, source.samples, atol=step)


def test_from_av_frame_refuses_other_formats_naming_them() -> None:
    frame = av.AudioFrame(format="s64", layout="mono", samples=4)
    with pytest.raises(TypeError, match="'s64'"):
        PcmData.from_av_frame(frame)


@settings(deadline=None)
@given(arrays(np.int16, st.integers(0, 3000)))
def test_int16_to_float32_and_back_is_exact(samples: np.ndarray) -> None:
    pcm = PcmData(samples, 16000)
    as_float = pcm.to_float32()
    assert as_float.format == "f32" and float(np.abs(as_float.samples).max(initial=0)) <= 1.0
    assert same_audio(as_float.to_int16(), pcm)


@settings(deadline=None)
@given(arrays(np.float32, st.integers(0, 3000), elements=st.floats(-1, 1, width=32)))
def test_float32_to_int16_and_back_is_within_one_step(samples: np.ndarray) -> None:
    pcm = PcmData(samples, 16000)
    back = pcm.to_int16().to_float32()
    # Rounding costs at most half a step; +1.0 clips to 32767 and costs one step.
    assert np.abs(back.samples - pcm.samples).max(initial=0) <= 1 / 32768


def test_float_beyond_full_scale_is_clipped_on_the_way_to_int16() -> None:
    pcm = PcmData(np.array([-3.0, -1.0, 0.0, 1.0, 2.5], np.float32), 8000)
    assert pcm.to_int16().samples.tolist() == [[-32768, -32768, 0, 32767, 32767]]


def test_to_mono_averages_channels() -> None:
    pcm = PcmData(np.array([[1000, 3000], [3000, -3000]], np.int16), 8000)
    assert pcm.to_mono().samples.tolist() == [[2000, 0]]
    assert pcm.to_mono().to_channels(2).samples.tolist() == [[2000, 0], [2000, 0]]


# --- chunks and append ------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(pcm_blocks(), st.floats(0.5, 100))
def test_chunks_then_append_gives_back_the_original(pcm: PcmData, ms: float) -> None:
    size = round(ms * pcm.sample_rate / 1000)
    pieces = list(pcm.chunks(ms))
    assert all(len(p) == size for p in pieces[:-1])
    assert 0 < (len(pieces[-1]) if pieces else size) <= size
    if pcm.timestamp is not None:
        for i, piece in enumerate(pieces):
            assert piece.timestamp == pytest.approx(pcm.timestamp + i * size / pcm.sample_rate)
    joined = PcmData.empty(pcm.sample_rate, pcm.channels, pcm.format)
    for piece in pieces:
        assert joined.append(piece) is joined
    assert same_audio(joined, pcm)
    assert joined.timestamp == (pcm.timestamp if pieces else None)


def test_chunks_pad_last_with_silence() -> None:
    pcm = PcmData(np.ones(25, np.int16), 1000)
    pieces = list(pcm.chunks(10, pad_last=True))
    assert [len(p) for p in pieces] == [10, 10, 10]
    assert pieces[-1].samples.tolist() == [[1] * 5 + [0] * 5]
    assert [len(p) for p in pcm.chunks(10)] == [10, 10, 5]


@pytest.mark.parametrize("ms", [0, -5, float("nan"), 0.01])
def test_chunks_refuses_a_size_below_one_sample(ms: float) -> None:
    with pytest.raises(ValueError, match="ms"):
        next(PcmData(np.ones(25, np.int16), 16000).chunks(ms))


def test_append_does_not_touch_the_callers_array_or_views() -> None:
    source = np.arange(100, dtype=np.int16)
    pcm = PcmData(source, 8000)
    first_view = pcm.samples
    pcm.append(PcmData(np.full(50, 7, np.int16), 8000))
    pcm.append(pcm)  # appending to itself doubles it
    assert np.array_equal(source, np.arange(100))
    assert np.array_equal(first_view[0], np.arange(100))
    expected = np.concatenate([np.arange(100), np.full(50, 7)] * 2)
    assert np.array_equal(pcm.samples[0], expected)


def test_append_converts_format_and_resamples_other() -> None:
    pcm = PcmData(np.zeros(160, np.int16), 16000)
    louder = PcmData(np.full((2, 480), 0.5, np.float32), 48000)
    pcm.append(louder)
    assert (pcm.format, pcm.channels, len(pcm)) == ("s16", 1, 320)
    # away from the resampler's edges, the level is kept
    assert np.allclose(pcm.samples[0, 200:280], 16384, atol=2)


def test_append_refuses_non_pcm() -> None:
    with pytest.raises(TypeError, match="bytes"):
        PcmData.empty(16000).append(b"\x00\x00")  # type: ignore[arg-type]


def test_resample_one_shot_keeps_format_and_metadata() -> None:
    who = Participant(user_id="u2")
    pcm = PcmData(np.zeros((2, 4410), np.float32), 44100, participant=who, timestamp=100.0)
    out = pcm.resample(16000)
    assert (out.sample_rate, out.channels, out.format, len(out)) == (16000, 2, "f32", 1600)
    assert out.participant is who and out.timestamp == pytest.approx(100.0)
    mono = pcm.resample(44100, 1)
    assert (mono.channels, len(mono)) == (1, 4410)
