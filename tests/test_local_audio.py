"""Microphone and speakers through PortAudio, against a real PulseAudio with virtual devices.

The fixture starts a private PulseAudio server: a null sink ``speakers`` (what plays there is
recorded from its monitor) and a virtual source ``mic`` fed by the null sink ``mic_feed``
(whatever ``pacat`` plays into ``mic_feed`` is what the microphone hears). PortAudio reaches it
through ALSA's ``pulse`` plugin (Debian: libportaudio2, libasound2-plugins, pulseaudio,
pulseaudio-utils; scripts/test.sh installs them).

A null sink with no client renders up to 2 s of silence ahead of the clock (its idle latency),
so the first stream to connect waits that long before it is asked for a frame (measured: 1.2 to
1.9 s, for ``pacat`` and PortAudio alike). A sound card plays continuously at low latency; the
fixture gets the same from each null sink by keeping a low-latency client of silence on it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from vision_agents.core import Agent, PcmData, User
from vision_agents.plugins.local import (
    AudioDevice,
    DeviceBusyError,
    DeviceNotFoundError,
    LocalEdge,
    MicrophoneTrack,
    find_audio_device,
    list_audio_devices,
)
from vision_agents.testing import FakeRealtime, synthesize_speech

RATE = 48000

_SCRIPT = """
load-module module-native-protocol-unix socket={socket} auth-anonymous=1
load-module module-null-sink sink_name=speakers rate=48000 channels=2
load-module module-null-sink sink_name=mic_feed rate=48000 channels=1
load-module module-virtual-source source_name=mic master=mic_feed.monitor
set-default-sink speakers
set-default-source mic
"""
_SINKS = {"speakers": 2, "mic_feed": 1}


def _sink_latencies() -> dict[str, float]:
    """Each sink's current latency in seconds, as ``pactl`` reports it."""
    text = subprocess.run(
        ["pactl", "list", "sinks"], capture_output=True, text=True, timeout=5, check=True
    ).stdout
    found = re.findall(r"Name: (\S+).*?Latency: (\d+) usec", text, flags=re.S)
    return {name: int(usec) / 1e6 for name, usec in found}


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private PulseAudio server; yields its address and stops it afterwards."""
    for tool in ("pulseaudio", "pacat", "parec", "pactl"):
        assert shutil.which(tool), f"{tool} is missing: apt-get install pulseaudio pulseaudio-utils"
    home = tmp_path_factory.mktemp("pulse")
    socket = home / "native"
    script = home / "server.pa"
    script.write_text(_SCRIPT.format(socket=socket))
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home)}
    env.pop("DISPLAY", None)
    log_path = home / "server.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [
            "pulseaudio",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--system=false",
            "--use-pid-file=no",
            "-n",
            "-F",
            str(script),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    keep_alive: list[subprocess.Popen[bytes]] = []
    address = f"unix:{socket}"
    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER", "PULSE_RUNTIME_PATH")}
    os.environ["PULSE_SERVER"] = address
    os.environ["PULSE_RUNTIME_PATH"] = str(home)
    try:
        deadline = time.monotonic() + 15
        while True:
            ok = subprocess.run(["pactl", "info"], capture_output=True, timeout=5).returncode == 0
            if ok:
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PulseAudio did not start: {log_path.read_text()}")
            time.sleep(0.1)
        # pulseaudio -F goes on past a line it cannot run: check that every device exists.
        missing = set(_SINKS) - set(_sink_latencies())
        assert not missing, f"sinks {sorted(missing)} were not created: {log_path.read_text()}"
        with open(os.devnull, "wb") as quiet, open("/dev/zero", "rb") as zeros:
            for sink, channels in _SINKS.items():
                command = ["pacat", "--playback", f"--device={sink}", "--raw", "--format=s16le",
                           f"--rate={RATE}", f"--channels={channels}", "--latency-msec=30"]  # fmt: skip
                keep_alive.append(
                    subprocess.Popen(command, stdin=zeros, stdout=quiet, stderr=quiet)
                )
        latencies = _sink_latencies()
        while max(latencies[sink] for sink in _SINKS) > 0.2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the null sinks stayed at high latency: {latencies}")
            time.sleep(0.1)
            latencies = _sink_latencies()
        yield address
    finally:
        for player in keep_alive:
            player.terminate()
            player.wait(timeout=10)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        log.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        list_audio_devices()  # forget the server's devices


def _speech() -> PcmData:
    return synthesize_speech("Testing one two three, the quick brown fox").resample(RATE, 1)


def _similarity(reference: np.ndarray, recorded: np.ndarray) -> tuple[float, int]:
    """Peak normalised cross-correlation of ``reference`` against ``recorded``, and its lag.

    Only lags where at least 95% of the reference lies inside the recording count.
    """
    ref = reference.astype(np.float64)
    rec = recorded.astype(np.float64)
    n = 1 << int(np.ceil(np.log2(len(rec) + len(ref))))
    # corr[k] = sum rec[i + k] * ref[i]; negative lags wrap to the end of the array.
    corr = np.fft.irfft(np.fft.rfft(rec, n) * np.conj(np.fft.rfft(ref, n)), n)
    margin = len(ref) // 20
    lags = np.arange(-margin, max(len(rec) - len(ref) + margin, -margin + 1))
    lag = int(lags[np.argmax(corr[lags % n])])
    lo, hi = max(0, -lag), min(len(ref), len(rec) - lag)
    if hi - lo < len(ref) - margin:
        return 0.0, lag
    a, b = ref[lo:hi], rec[lo + lag : hi + lag]
    a, b = a - a.mean(), b - b.mean()
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9)), lag


def _segments_found(reference: np.ndarray, recorded: np.ndarray, seg: int = RATE // 5) -> float:
    """Share of the reference's voiced 200 ms segments found in the recording, in order.

    The whole-signal similarity drops to ~0.5 if the *recorder* (parec) loses a block, even
    when every segment played; this tells the two apart.
    """
    ref = reference.astype(np.float64)
    voiced = [i for i in range(0, len(ref) - seg, seg) if np.abs(ref[i : i + seg]).max() > 1000]
    found, last = 0, -1
    for i in voiced:
        score, lag = _similarity(ref[i : i + seg], recorded)
        if score > 0.95 and lag > last:
            found, last = found + 1, lag
    return found / max(1, len(voiced))


def test_devices_are_listed_and_chosen_by_name_or_index(pulse: str) -> None:
    devices = list_audio_devices()
    pulse_dev = find_audio_device("pulse", "input")
    assert pulse_dev.name == "pulse" and pulse_dev in devices
    assert find_audio_device(pulse_dev.index, "output").index == pulse_dev.index
    assert find_audio_device(str(pulse_dev.index), "input") == pulse_dev
    assert find_audio_device("PULSE", "output") == pulse_dev
    with pytest.raises(DeviceNotFoundError, match=r"no microphone named 'No Such Mic'.*pulse"):
        find_audio_device("No Such Mic", "input")
    with pytest.raises(DeviceNotFoundError, match=r"no speaker with index 999; speakers: .*pulse"):
        find_audio_device(999, "output")


async def test_a_device_that_cannot_open_is_reported_with_the_alternatives(pulse: str) -> None:
    ghost = AudioDevice(999, "Ghost Mic", "ALSA", 1, 0, 48000)
    track = MicrophoneTrack(ghost)
    with pytest.raises(DeviceBusyError, match=r"could not open microphone 999: Ghost Mic.*pulse"):
        track.start()
    track.stop()


async def _until(check: Callable[[], tuple[bool, str]], what: str, limit_s: float) -> None:
    """Poll ``check()`` until it says ok; past ``limit_s`` fail with what it saw last."""
    deadline = time.monotonic() + limit_s
    ok, detail = check()
    while not ok:
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {limit_s} s; last seen: {detail}")
        await asyncio.sleep(0.1)
        ok, detail = check()


async def test_agent_hears_what_is_played_into_the_microphone(pulse: str) -> None:
    speech = _speech()
    reference = speech.samples.reshape(-1)
    edge = LocalEdge(camera=None, microphone="pulse", speaker=None, preview="none")
    model = FakeRealtime()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)

    lead_in = bytes(2 * RATE // 5)  # 200 ms of silence, so the first word is not cut
    first = 0  # index of the first chunk captured once the playback began
    checked = [0.0]  # seconds of audio at the last similarity check

    def heard_it() -> tuple[bool, str]:
        # The FFT runs on the event loop: only when enough new audio came, so a loaded machine
        # is not made slower by the check itself.
        chunks = model.audio_chunks[first:]
        got = sum(c.duration for c in chunks)
        if got < speech.duration or got - checked[0] < 0.5:
            return False, f"{got:.2f} s captured since the playback began"
        checked[0] = got
        heard = np.concatenate([c.resample(RATE, 1).samples.reshape(-1) for c in chunks])
        score, lag = _similarity(reference, heard)
        return score > 0.95, f"similarity {score:.3f} at lag {lag} over {got:.2f} s"

    async with agent.join(await agent.create_call("default", "mic")):
        await _until(lambda: (bool(model.audio_chunks), "nothing yet"), "microphone audio", 10)
        first = len(model.audio_chunks)
        # A 200 ms client buffer: a late wake-up under load does not put gaps into the speech.
        player = await asyncio.create_subprocess_exec(
            "pacat", "--playback", "--device=mic_feed", "--raw", "--format=s16le",
            f"--rate={RATE}", "--channels=1", "--latency-msec=200",
            stdin=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.wait_for(player.communicate(lead_in + speech.to_bytes()), 15)
        assert player.returncode == 0
        # Under load the capture can trail the playback: wait (bounded) until the speech is in.
        await _until(heard_it, "the model hears the speech played into the microphone", 10)
    microphone = edge.microphone_track
    assert isinstance(microphone, MicrophoneTrack) and microphone.readyState == "ended"
    assert microphone.dropped == 0, microphone.dropped


async def test_speakers_play_what_the_agent_says_in_real_time(pulse: str, tmp_path: Path) -> None:
    speech = _speech()
    recording = tmp_path / "speakers.raw"
    edge = LocalEdge(camera=None, microphone=None, speaker="pulse", preview="none")
    model = FakeRealtime()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    pace: list[tuple[float, int, int]] = []  # (time, frames asked for, bytes of reply played)
    with recording.open("wb") as sink:
        recorder = await asyncio.create_subprocess_exec(
            "parec", "--device=speakers.monitor", "--raw", "--format=s16le",
            f"--rate={RATE}", "--channels=1", "--latency-msec=100", stdout=sink,
        )  # fmt: skip
        try:
            async with agent.join(await agent.create_call("default", "speakers")):
                speaker = edge.speaker
                assert speaker is not None
                # The device plays silence from the start: wait until it is pulled at its rate
                # and the recorder hears the sink.
                window: list[tuple[float, int]] = []

                def flowing() -> tuple[bool, str]:
                    window.append((time.monotonic(), speaker.frames_requested))
                    del window[:-4]
                    (t0, f0), (t1, f1) = window[0], window[-1]
                    rate = (f1 - f0) / (t1 - t0) if t1 > t0 else 0.0
                    heard = recording.stat().st_size
                    return rate > 0.8 * RATE and heard > 0, f"{rate:.0f} frames/s, {heard} B"

                await _until(flowing, "the speaker plays at 48 kHz and the monitor records", 10)
                reply_bytes = len(speech) * 2 * speaker.channels
                model.respond("testing", speech)
                started = time.monotonic()
                while time.monotonic() - started < speech.duration + 5:
                    pace.append((time.monotonic(), speaker.frames_requested, speaker.bytes_played))
                    if speaker.bytes_played >= 0.99 * reply_bytes:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.wait_for(agent.audio_track.wait_idle(), 5)
                await asyncio.sleep(0.3)  # the tail through the sink into the recorder
        finally:
            recorder.terminate()
            await asyncio.wait_for(recorder.wait(), 10)
    assert speaker.bytes_dropped == 0, speaker.bytes_dropped
    # Real-time pace: while the reply played, the device asked for ~48k frames per second of
    # wall time, and the reply's bytes went out at the reply's own rate.
    (t0, f0, _), (t1, f1, _) = pace[0], pace[-1]
    device_rate = (f1 - f0) / (t1 - t0)
    assert 0.9 * RATE < device_rate < 1.1 * RATE, f"device asked for {device_rate:.0f} frames/s"
    first = next((t for t, _, played in pace if played > 0), None)
    last = next((t for t, _, played in pace if played >= 0.95 * reply_bytes), None)
    assert first is not None and last is not None, (
        f"{speaker.bytes_played} of the reply's {reply_bytes} bytes were played"
    )
    played_for = last - first
    assert 0.8 < played_for / (0.95 * speech.duration) < 1.25, (played_for, speech.duration)
    # What came out of the speakers is what the agent said, contiguous at the sink's clock.
    heard = np.frombuffer(recording.read_bytes(), dtype=np.int16)
    score, lag = _similarity(speech.samples.reshape(-1), heard)
    segments = 1.0 if score > 0.95 else _segments_found(speech.samples.reshape(-1), heard)
    # Seen once in a full CI run (not reproducible alone or under load): the whole-signal match
    # fell to 0.54 with no drop or underflow on our side, i.e. a discontinuity in the
    # recording. Matching 200 ms segments in order still proves the content is the reply.
    if score <= 0.95 and segments >= 0.8:
        warnings.warn(
            f"speaker recording has a discontinuity (whole match {score:.3f}); "
            f"{segments:.0%} of the reply's segments were found in order",
            stacklevel=1,
        )
    assert score > 0.95 or segments >= 0.8, (
        f"the speakers' monitor does not match the reply: similarity {score:.3f} at lag {lag}, "
        f"{segments:.0%} of its voiced 200 ms segments found in order; "
        f"device underflows {speaker.glitches}, queue underruns {speaker.underruns}"
    )
