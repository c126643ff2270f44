"""G.711 mu-law, the phone network's 8 kHz audio coding, to and from 16-bit PCM (numpy).

Python's ``audioop`` is gone from 3.13, so the codec is written out here: a table for decoding
and the standard segment search for encoding (bias 0x84, clip at 32635).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
"""The phone network's rate (Twilio Media Streams carry mono mu-law at 8 kHz, both ways)."""

_BIAS = 0x84
_CLIP = 32635


def _decode_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


_DECODE = _decode_table()


def decode(data: bytes) -> npt.NDArray[np.int16]:
    """mu-law bytes -> int16 samples (one per byte)."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def encode(samples: npt.NDArray[np.int16]) -> bytes:
    """int16 samples -> mu-law bytes (one per sample)."""
    pcm = samples.astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    # As the reference coder, which works on 14-bit samples: a negative sample's magnitude is
    # rounded up to the 14-bit step (-1 codes as -4), a positive one's down.
    magnitude = np.where(pcm < 0, (-(pcm >> 2)) << 2, pcm)
    magnitude = np.minimum(magnitude, _CLIP) + _BIAS
    # The segment is the position of the highest set bit above bit 7 (0..7).
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    code = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return bytes(code.astype(np.uint8).tobytes())
