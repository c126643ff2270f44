"""Audio is encoded to Opus once, in the fan-out, for every browser's slot; a copy for the
agent (a participant's microphone) still gets the frames."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiortc
import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame

from tests.browser.python_peer import SolidColourTrack
from vision_agents.core.agents.audio_output import AudioOutputTrack
from vision_agents.core.audio import PcmData
from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.plugins.webrtc.fanout import Fanout, SlotTrack


async def next_packet(track: aiortc.MediaStreamTrack) -> av.Packet[Any]:
    item = await asyncio.wait_for(track.recv(), 5)
    assert isinstance(item, av.Packet), type(item)
    return item


async def test_agent_audio_reaches_every_sink_as_one_stream_of_opus_packets() -> None:
    track = AudioOutputTrack()
    t = np.arange(48000) / 48000
    tone = (np.sin(2 * np.pi * 440 * t) * 12000).astype(np.int16)
    track.write(PcmData(tone, 48000, 1))
    owner = TaskOwner("test")
    fanout = Fanout(track, owner, "agent", encode_opus=True)
    first, second = SlotTrack("audio"), SlotTrack("audio")
    first.attach(fanout)
    second.attach(fanout)
    packets = [await next_packet(first) for _ in range(25)]
    copies = [await next_packet(second) for _ in range(25)]
    await fanout.stop()
    await owner.close()
    assert [bytes(p) for p in packets] == [bytes(p) for p in copies]  # encoded once, shared
    steps = {int(b.pts or 0) - int(a.pts or 0) for a, b in itertools.pairwise(packets)}
    assert steps == {960}  # 20 ms a packet at 48 kHz
    decoder = OpusDecoder()
    pcm = np.concatenate(
        [
            f.to_ndarray().reshape(-1, 2)[:, 0]  # type: ignore[attr-defined]
            for p in packets[5:]
            for f in decoder.decode(JitterFrame(bytes(p), int(p.pts or 0)))
        ]
    ).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(pcm))
    assert abs(np.argmax(spectrum) * 48000 / len(pcm) - 440) < 10


async def test_only_audio_is_encoded_to_opus() -> None:
    owner = TaskOwner("test")
    video = SolidColourTrack((0, 0, 0))
    with pytest.raises(ValueError, match="only audio"):
        Fanout(video, owner, "agent", encode_opus=True)
    await owner.close()


async def test_a_microphone_reaches_browsers_as_opus_and_the_agent_as_frames() -> None:
    """A participant's microphone: the other browsers' slots get one stream of Opus packets
    (no encoder, and no pure-Python level meter, per sender), the agent's copy the frames."""
    track = AudioOutputTrack()
    track.write(PcmData((np.ones(48000) * 8000).astype(np.int16), 48000, 1))
    owner = TaskOwner("test")
    fanout = Fanout(track, owner, "ann", encode_opus=True)
    slot = SlotTrack("audio")
    slot.attach(fanout)
    agent_copy = fanout.subscribe()
    packet = await next_packet(slot)
    frame = await asyncio.wait_for(agent_copy.recv(), 5)
    await fanout.stop()
    await owner.close()
    assert isinstance(frame, av.AudioFrame) and frame.samples == 960, frame
    assert len(bytes(packet)) > 0
