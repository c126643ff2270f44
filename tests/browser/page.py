"""JavaScript run in the call page to inspect what the browser receives."""

from __future__ import annotations

from typing import Any

FRAMES_DECODED = """async (seat) => {
  if (!vaCall.slots[seat]) return 0;
  const stats = await vaCall.slots[seat].video.receiver.getStats();
  for (const r of stats.values()) if (r.type === "inbound-rtp") return r.framesDecoded || 0;
  return 0;
}"""

# Draws a <video> element's frame at 320x240 and reads the 16 index bits pattern_frame drew.
READ_INDEX_OF = """(video) => {
  if (!video || video.videoWidth === 0) return -1;
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 240;
  const g = canvas.getContext("2d");
  g.drawImage(video, 0, 0, 320, 240);
  const px = g.getImageData(0, 0, 128, 8).data;
  let value = 0;
  for (let bit = 0; bit < 16; bit++) {
    let sum = 0, n = 0;
    for (let y = 2; y < 6; y++) for (let x = bit * 8 + 2; x < bit * 8 + 6; x++) {
      const i = (y * 128 + x) * 4; sum += (px[i] + px[i + 1] + px[i + 2]) / 3; n++;
    }
    if (sum / n > 127) value |= 1 << bit;
  }
  return value;
}"""

START_AUDIO_CAPTURE = """(seat) => {
  const ctx = new AudioContext({ sampleRate: 48000 });
  const track = vaCall.slots[seat].audio.receiver.track;
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const node = ctx.createScriptProcessor(4096, 1, 1);
  window.captured = [];
  node.onaudioprocess = (e) => {
    const data = e.inputBuffer.getChannelData(0);
    for (let i = 0; i < data.length; i += 3) window.captured.push(data[i]);  // 16 kHz
  };
  source.connect(node);
  node.connect(ctx.destination);
  window.captureNode = node;
  return ctx.state;
}"""

TAKE_AUDIO = "() => { const out = window.captured; window.captured = []; return out; }"


async def frames_decoded(page: Any, seat: int) -> int:
    return int(await page.evaluate(FRAMES_DECODED, seat))


# The receive statistics of a seat's video on the embedded call page (null: no receiver).
INBOUND_STATS = """async (seat) => {
  if (!vaCall.slots[seat]) return null;
  const stats = await vaCall.slots[seat].video.receiver.getStats();
  for (const r of stats.values()) if (r.type === "inbound-rtp") {
    const { packetsReceived, framesReceived, framesDecoded, keyFramesDecoded, pliCount,
            nackCount, firCount, packetsLost } = r;
    return { packetsReceived, framesReceived, framesDecoded, keyFramesDecoded, pliCount,
             nackCount, firCount, packetsLost };
  }
  return null;
}"""
