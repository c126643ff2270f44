// The call page: join with the signed link, send camera and microphone, show everyone.
// One offer holds our own media plus a receive slot (audio + video) per seat; seat 0 is the
// agent. The server tells us who sits where over the WebSocket and re-points slots itself.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { pc: null, ws: null, seat: null, members: [], slots: [], local: null, log: [], error: null, left: {}, leftAt: null, videoLimit: null, videoScale: null, keepSize: false, videoLimitAt: null, recording: false };
// For tests and debugging. left: name -> Date.now() when this page learnt that member had gone;
// leftAt: Date.now() when this page's Leave button was pressed; videoLimit and videoScale: the
// frame rate the server asked the camera to be sent at and the factor to scale it down by
// (null: no limit), applied at videoLimitAt; keepSize: whether the camera keeps that size
// rather than trading it for bandwidth (from its first scale-down on); recording:
// whether the agent says it is recording the call (the badge in the header shows it).
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

async function getMedia() {
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { ideal: 640 }, height: { ideal: 480 } },
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
    tile.querySelector(".name").textContent = m.seat === state.seat ? `${m.name} (you)` : m.name;
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
async function limitVideo(pc, maxFps, scaleDownBy) {
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
  if (!sender) return;
  const params = sender.getParameters();
  if (!params.encodings || params.encodings.length === 0) params.encodings = [{}];
  for (const encoding of params.encodings) {
    if (maxFps) encoding.maxFramerate = maxFps;
    else delete encoding.maxFramerate;
    encoding.scaleResolutionDownBy = scaleDownBy || 1;
  }
  // Once scaled down, keep the size asked for: sending little made the bandwidth estimate fall,
  // and by default the encoder would trade size for it (below what the consumers need while
  // scaled; 320, then 480 px for ~25 s after full size is asked for again, measured).
  if (scaleDownBy) state.keepSize = true;
  if (state.keepSize) params.degradationPreference = "maintain-resolution";
  await sender.setParameters(params);
  state.videoLimit = maxFps || null;
  state.videoScale = scaleDownBy || null;
  state.videoLimitAt = Date.now();
}

// The camera's capture size, sent with the offer: the server works out how far to scale it.
function cameraSize() {
  const track = state.local?.getVideoTracks()[0];
  const { width, height } = track ? track.getSettings() : {};
  return width && height ? { width, height } : null;
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
    ws.send(JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, name: info.name || "", camera: cameraSize() }));
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
      await limitVideo(pc, msg.max_fps, msg.scale_down_by).catch((err) => log(`could not limit the camera: ${err}`, "event"));
    } else if (msg.type === "recording") {
      const active = msg.active === true;
      if (active !== state.recording) log(active ? "The call is being recorded" : "Recording stopped", "event");
      state.recording = active;
      $("recording").hidden = !active;
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
  for (const id of ["mute-audio", "mute-video", "leave"]) $(id).disabled = false;
  $("mute-audio").onclick = (e) => toggle(e.currentTarget, "audio", "Mute microphone", "Unmute microphone");
  $("mute-video").onclick = (e) => toggle(e.currentTarget, "video", "Turn camera off", "Turn camera on");
  $("leave").onclick = () => { state.leftAt = Date.now(); ws.close(); };
  // Closing the tab: say goodbye at once rather than when the page is torn down.
  window.addEventListener("pagehide", () => ws.close());
}

join().catch((err) => { notice(`Could not join: ${err}`); setStatus("not joined"); });
