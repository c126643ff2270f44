// The call page: join with the signed link, send camera and microphone, show everyone.
// One offer holds our own media, a sender for a shared screen (silent until Share screen is
// pressed), plus a receive slot (audio + video) per seat; seat 0 is the agent. The server
// tells us who sits where over the WebSocket and re-points slots itself.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { pc: null, ws: null, seat: null, members: [], slots: [], local: null, log: [], error: null, left: {}, leftAt: null, videoLimit: null, videoScale: null, keepSize: false, videoLimitAt: null, recording: false, stats: null, sending: null, screen: null, screenSender: null, screenLimit: null, screenScale: null, screenLimitAt: null };
// For tests and debugging. left: name -> Date.now() when this page learnt that member had gone;
// leftAt: Date.now() when this page's Leave button was pressed; videoLimit and videoScale: the
// frame rate the server asked the camera to be sent at and the factor to scale it down by
// (null: no limit), applied at videoLimitAt; keepSize: whether the camera keeps its size
// rather than trading it for bandwidth (from the server's first limits on); recording:
// whether the agent says it is recording the call (the badge in the header shows it);
// stats: what the server last reported receiving of our camera (a "video-stats" message, with
// at: Date.now() when it came); sending: this browser's own outbound-rtp figures for it, read
// when that report came (both shown in the Stats panel); screen: the MediaStream being shared
// (null: none); screenSender: the RTCRtpSender it goes out on; screenLimit, screenScale,
// screenLimitAt: as videoLimit, videoScale and videoLimitAt, for the shared screen.
window.vaCall = state;

function setStatus(text) { $("status").textContent = text; }

function notice(text) {
  state.error = text;
  $("notice").textContent = text;
  $("notice").hidden = false;
}

function log(text, cls) {
  state.log.push(text);
  const item = document.createElement("li");
  item.textContent = text;
  if (cls) item.className = cls;
  $("log").append(item);
  item.scrollIntoView({ block: "end" });
}

function readLink() {
  const match = location.pathname.match(/^\/call\/([A-Za-z0-9_-]{1,64})$/);
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  return match && token ? { call: match[1], token } : null;
}

// The camera at up to 1280 px wide in its own shape: asking for a width alone keeps a 16:9
// camera 16:9 (asking for 640x480 cropped 12.5% off each side of it). The server scales it
// down to what the agent's consumers need.
async function getMedia() {
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { ideal: 1280 } },
    });
  } catch (err) {
    notice(`Camera or microphone not available (${err.name}): you can still see and hear the call. ` +
      "Allow access in the browser's site settings and reload to be seen and heard.");
    return null;
  }
}

function tileFor(seat) {
  let tile = document.querySelector(`.tile[data-seat="${seat}"]`);
  if (!tile) {
    tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.seat = String(seat);
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true;
    const name = document.createElement("span");
    name.className = "name";
    tile.append(video, name);
    $("grid").append(tile);
  }
  return tile;
}

function render() {
  const present = new Set();
  for (const m of state.members) {
    present.add(String(m.seat));
    const tile = tileFor(m.seat);
    const who = m.seat === state.seat ? `${m.name} (you)` : m.name;
    tile.querySelector(".name").textContent = m.sharing ? `${who}, sharing a screen` : who;
    tile.classList.toggle("agent", m.agent);
    tile.classList.toggle("muted", Boolean(m.audio_muted));
    const video = tile.querySelector("video");
    const stream = m.seat === state.seat ? state.local : state.slots[m.seat]?.stream;
    if (stream && video.srcObject !== stream) video.srcObject = stream;
  }
  for (const tile of document.querySelectorAll(".tile")) {
    if (!present.has(tile.dataset.seat)) tile.remove();
  }
}

// The server asks for only the video that is watched: a camera only the agent sees is sent
// at the rate its consumers take (maxFps) and scaled down to the size they need (scaleDownBy),
// one a person sees at the full rate and size (null for both).
async function limitVideo(pc, maxFps, scaleDownBy, which) {
  const screen = which === "screen";
  const sender = screen ? state.screenSender : cameraSender(pc);
  if (!sender || !sender.track) return;
  const params = sender.getParameters();
  if (!params.encodings || params.encodings.length === 0) params.encodings = [{}];
  for (const encoding of params.encodings) {
    if (maxFps) encoding.maxFramerate = maxFps;
    else delete encoding.maxFramerate;
    encoding.scaleResolutionDownBy = scaleDownBy || 1;
  }
  // Keep the size asked for when bandwidth is short and lower the frame rate instead: a model
  // reads a sharp picture at 3 fps better than a blurred one at 10 (by default the encoder
  // trades size first: 320, then 480 px for ~25 s after full size was asked for, measured).
  // (contentHint "detail" would ask the same, but Chromium then encodes a camera at a third
  // of the bitrate: 245 against 696 kbit/s for the same panning photo, measured.)
  params.degradationPreference = "maintain-resolution";
  await sender.setParameters(params);
  if (screen) {
    state.screenLimit = maxFps || null;
    state.screenScale = scaleDownBy || null;
    state.screenLimitAt = Date.now();
    return;
  }
  state.keepSize = true;
  state.videoLimit = maxFps || null;
  state.videoScale = scaleDownBy || null;
  state.videoLimitAt = Date.now();
}

// The camera's sender (the shared screen has a video sender of its own).
function cameraSender(pc) {
  return pc.getSenders().find((s) => s !== state.screenSender && s.track && s.track.kind === "video");
}

// Share a screen, window or tab (the browser asks which) on the screen sender, marked as text
// so the encoder keeps it sharp, and tell the server its size; the others and the agent see
// it instead of our camera until it stops (this button again, or the browser's own control).
async function shareScreen(button) {
  if (state.screen) return stopSharing(button);
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (err) {
    log(`Screen not shared (${err.name})`, "event");
    return;
  }
  const track = stream.getVideoTracks()[0];
  track.contentHint = "text";
  state.screen = stream;
  await state.screenSender.replaceTrack(track);
  const params = state.screenSender.getParameters();
  params.degradationPreference = "maintain-resolution";
  await state.screenSender.setParameters(params).catch(() => {});
  track.addEventListener("ended", () => stopSharing(button));
  button.textContent = "Stop sharing";
  button.setAttribute("aria-pressed", "true");
  const { width, height } = track.getSettings();
  state.ws?.send(JSON.stringify({ type: "screen", sharing: true, width, height }));
  log("You are sharing your screen", "event");
}

async function stopSharing(button) {
  const stream = state.screen;
  if (!stream) return;
  state.screen = null;
  for (const track of stream.getTracks()) track.stop();
  await state.screenSender.replaceTrack(null);
  button.textContent = "Share screen";
  button.setAttribute("aria-pressed", "false");
  state.ws?.send(JSON.stringify({ type: "screen", sharing: false }));
  log("You stopped sharing your screen", "event");
}

// The camera's capture size, sent with the offer: the server works out how far to scale it.
function cameraSize() {
  const track = state.local?.getVideoTracks()[0];
  const { width, height } = track ? track.getSettings() : {};
  return width && height ? { width, height } : null;
}

// The browser's side of its camera: the video sender's outbound-rtp (the busiest, should the
// encoder send several), kbit/s since the last reading, and what the encoder is held back by.
let lastSent = null;
async function readSending(pc) {
  const sender = cameraSender(pc);
  if (!sender) return;
  let out = null;
  for (const r of (await sender.getStats()).values()) {
    if (r.type === "outbound-rtp" && (!out || (r.bytesSent || 0) > (out.bytesSent || 0))) out = r;
  }
  if (!out) return;
  const kbps = lastSent && out.timestamp > lastSent.timestamp
    ? ((out.bytesSent - lastSent.bytesSent) * 8) / (out.timestamp - lastSent.timestamp) : null;
  lastSent = { bytesSent: out.bytesSent || 0, timestamp: out.timestamp };
  state.sending = {
    width: out.frameWidth || 0,
    height: out.frameHeight || 0,
    fps: out.framesPerSecond || 0,
    kbps: kbps === null ? null : Math.round(kbps),
    qualityLimitationReason: out.qualityLimitationReason || "none",
    at: Date.now(),
  };
}

function kbit(value) { return typeof value === "number" ? `${Math.round(value)} kbit/s` : "unknown"; }

function renderStats() {
  const s = state.stats;
  const o = state.sending;
  const rows = [];
  if (s) {
    rows.push(["Server receives", s.muted ? "camera off"
      : `${s.width}x${s.height}, ${Number(s.fps).toFixed(1)} fps, ${kbit(s.kbps)}`]);
    rows.push(["Bandwidth estimate", typeof s.estimate_bps === "number"
      ? `${kbit(s.estimate_bps / 1000)} (falls: ${s.estimate_falls})` : "unknown"]);
    rows.push(["Freezes", `${s.freezes} (${Number(s.frozen_s).toFixed(1)} s frozen)`]);
    rows.push(["Frames to the model", s.model_frames === null ? "unknown" : String(s.model_frames)]);
  } else {
    rows.push(["Server receives", "no report yet"]);
  }
  if (o) {
    rows.push(["Browser sends", `${o.width}x${o.height}, ${o.fps} fps, ${kbit(o.kbps)}`]);
    rows.push(["Limited by", o.qualityLimitationReason]);
  }
  $("stats").replaceChildren(...rows.flatMap(([name, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    return [dt, dd];
  }));
}

function waitForIce(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms);
  });
}

function toggle(button, kind, onText, offText) {
  const track = state.local?.getTracks().find((t) => t.kind === kind);
  if (!track) return;
  track.enabled = !track.enabled;
  button.setAttribute("aria-pressed", String(!track.enabled));
  button.textContent = track.enabled ? onText : offText;
  state.ws?.send(JSON.stringify({ type: "mute", kind, muted: !track.enabled }));
}

async function join() {
  const link = readLink();
  if (!link) {
    notice("This link is invalid: it must look like /call/<id>#token=<token>. Ask for a new link.");
    setStatus("not joined");
    return;
  }
  const check = await fetch("/api/check", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ call: link.call, token: link.token }),
  });
  const info = await check.json().catch(() => ({}));
  if (!check.ok) {
    notice(info.error || `This link cannot be used (HTTP ${check.status}). Ask for a new link.`);
    setStatus("not joined");
    return;
  }
  setStatus("asking for camera and microphone…");
  state.local = await getMedia();
  const pc = new RTCPeerConnection({ iceServers: [] });
  state.pc = pc;
  for (const track of state.local ? state.local.getTracks() : []) {
    pc.addTransceiver(track, { direction: "sendonly", streams: [state.local] });
  }
  const screen = pc.addTransceiver("video", { direction: "sendonly" });
  state.screenSender = screen.sender;
  for (let seat = 0; seat < info.slots; seat++) {
    const audio = pc.addTransceiver("audio", { direction: "recvonly" });
    const video = pc.addTransceiver("video", { direction: "recvonly" });
    const stream = new MediaStream([audio.receiver.track, video.receiver.track]);
    const player = new Audio();
    player.autoplay = true;
    player.srcObject = new MediaStream([audio.receiver.track]);
    state.slots.push({ audio, video, stream, player });
  }
  pc.addEventListener("connectionstatechange", () => {
    setStatus(`connection ${pc.connectionState}`);
    if (pc.connectionState === "failed") notice("The connection failed. Reload to try again.");
  });
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIce(pc, 3000);

  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = new URLSearchParams({ call: link.call, token: link.token });
  const ws = new WebSocket(`${scheme}://${location.host}/api/ws?${query}`);
  state.ws = ws;
  ws.addEventListener("open", () => {
    ws.send(JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, name: info.name || "", camera: cameraSize(), screen_mid: screen.mid }));
  });
  ws.addEventListener("message", async (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "answer") {
      state.seat = msg.seat;
      await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
      render();
    } else if (msg.type === "members") {
      const before = new Set(state.members.map((m) => m.name));
      state.seat = msg.you;
      state.members = msg.members;
      for (const m of msg.members) if (!before.has(m.name) && m.seat !== msg.you) log(`${m.name} joined`, "event");
      const now = new Set(msg.members.map((m) => m.name));
      for (const name of before) if (!now.has(name)) state.left[name] = Date.now();
      render();
    } else if (msg.type === "video-limit") {
      await limitVideo(pc, msg.max_fps, msg.scale_down_by, msg.track).catch((err) => log(`could not limit the ${msg.track || "camera"}: ${err}`, "event"));
    } else if (msg.type === "recording") {
      const active = msg.active === true;
      if (active !== state.recording) log(active ? "The call is being recorded" : "Recording stopped", "event");
      state.recording = active;
      $("recording").hidden = !active;
    } else if (msg.type === "video-stats") {
      state.stats = { ...msg, at: Date.now() };
      await readSending(pc).catch(() => {});
      renderStats();
    } else if (msg.type === "transcript") {
      log(`${msg.who === "agent" ? "Agent" : "You"}: ${msg.text}`, msg.who);
    } else if (msg.type === "event") {
      log(msg.text, "event");
    } else if (msg.type === "error") {
      notice(msg.error);
    }
  });
  ws.addEventListener("close", () => {
    setStatus("left the call");
    pc.close();
  });
  for (const id of ["mute-audio", "mute-video", "share-screen", "leave"]) $(id).disabled = false;
  if (!navigator.mediaDevices?.getDisplayMedia) $("share-screen").hidden = true;
  $("mute-audio").onclick = (e) => toggle(e.currentTarget, "audio", "Mute microphone", "Unmute microphone");
  $("mute-video").onclick = (e) => toggle(e.currentTarget, "video", "Turn camera off", "Turn camera on");
  $("share-screen").onclick = (e) => shareScreen(e.currentTarget).catch((err) => log(`Could not share the screen: ${err}`, "event"));
  $("leave").onclick = () => { state.leftAt = Date.now(); ws.close(); };
  $("stats-panel").addEventListener("toggle", () => readSending(pc).catch(() => {}).then(renderStats));
  renderStats();
  // Closing the tab: say goodbye at once rather than when the page is torn down.
  window.addEventListener("pagehide", () => ws.close());
}

join().catch((err) => { notice(`Could not join: ${err}`); setStatus("not joined"); });
