"""CPU cost of streaming resampling, in the two paths an agent runs all call long.

Streams N seconds of 20 ms s16 chunks through one Resampler and prints CPU time, per-chunk
cost and the share of one core that real time would take. Target: under 2% of one core.

    python -m benchmarks.resample --seconds 60   # from the repository root
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from vision_agents.core.audio import PcmData, Resampler

CHUNK_MS = 20


@dataclass(frozen=True)
class Case:
    name: str
    source_rate: int
    source_channels: int
    target_rate: int
    target_channels: int
    stateless: bool = False  # each chunk through its own fresh resampler (clicks; reference)


CASES = [
    Case("mic: 48k stereo -> 16k mono", 48000, 2, 16000, 1),
    Case("playback: 24k mono -> 48k stereo", 24000, 1, 48000, 2),
    Case("playback: 24k stereo -> 48k stereo", 24000, 2, 48000, 2),
    Case("passthrough: 48k stereo", 48000, 2, 48000, 2),
    Case("mic, stateless one-shot per chunk", 48000, 2, 16000, 1, stateless=True),
]


def chunks_for(case: Case, seconds: float) -> list[PcmData]:
    """Speech-level noise, cut into 20 ms chunks ahead of time so only resampling is timed."""
    rng = np.random.default_rng(0)
    n = round(case.source_rate * seconds)
    samples = (rng.standard_normal((case.source_channels, n)) * 3000).astype(np.int16)
    return list(PcmData(samples, case.source_rate).chunks(CHUNK_MS))


def run(case: Case, seconds: float) -> tuple[float, int, int]:
    """Stream the case once; returns (CPU seconds, chunk count, output samples)."""
    chunks = chunks_for(case, seconds)
    resampler = Resampler(case.target_rate, case.target_channels)
    produced = 0
    start = time.process_time()
    if case.stateless:
        for chunk in chunks:
            produced += len(chunk.resample(case.target_rate, case.target_channels))
    else:
        for chunk in chunks:
            produced += len(resampler.process(chunk))
        produced += len(resampler.flush())
    return time.process_time() - start, len(chunks), produced


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU cost of streaming resampling.")
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per case (s)")
    args = parser.parse_args()
    seconds: float = args.seconds

    print(f"{seconds:g} s of audio per case in {CHUNK_MS} ms s16 chunks\n")
    header = f"{'case':<36} {'chunks':>7} {'cpu s':>8} {'us/chunk':>9} {'% core':>7} {'out ok':>6}"
    print(header)
    print("-" * len(header))
    for case in CASES:
        cpu, count, produced = run(case, seconds)
        expected = round(seconds * case.target_rate)
        percent = cpu / seconds * 100
        print(
            f"{case.name:<36} {count:>7} {cpu:>8.3f} {cpu / count * 1e6:>9.1f} "
            f"{percent:>6.2f}% {'yes' if produced == expected else 'NO':>6}"
        )
    print("\n% core = CPU seconds / audio seconds * 100; target < 2% of one core.")


if __name__ == "__main__":
    main()
