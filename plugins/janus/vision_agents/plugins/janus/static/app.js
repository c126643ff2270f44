// Joins a Janus VideoRoom with the camera and microphone and shows every other publisher.
// The link carries ?janus=<ws url>&room=<id>&name=<display name>#token=<signed token>&pin=<the
// room's pin> (the fragment never reaches a server); parameters are read from both parts.
// State for tests and tools: window.vaJanus = { members, videos, audios, log, error, joined,
// left, leftAt, muted, screens, sharing }. videos, audios: display name -> the element playing
// it (screens: the one playing their shared screen); left: display
// name -> Date.now() when this page learnt that publisher had gone; leftAt: Date.now() when
// this page's Leave button was pressed; muted: kind -> whether this page muted it; recording:
// whether the agent says it is recording the call (a badge shows it); sharing: the mid our shared
// screen is published on (null: not sharing); pc: the publishing RTCPeerConnection (its stats).
(function () {
  const params = new URLSearchParams(location.search.slice(1) + "&" + location.hash.slice(1));
  const state = (window.vaJanus = { members: [], videos: {}, audios: {}, log: [], error: null, joined: false, left: {}, leftAt: null, muted: {}, recording: false, screens: {}, sharing: null, pc: null });
  const status = document.getElementById("status");
  const say = (text, bad) => {
    state.log.push(text);
    status.textContent = text;
    status.className = bad ? "error" : "";
    if (bad) state.error = text;
  };
  const room = parseInt(params.get("room") || "", 10);
  const server = params.get("janus");
  const token = params.get("token");
  const pin = params.get("pin") || "";
  const name = params.get("name") || "Guest";
  if (!server || !token || !room) { say("this link is missing its server, room or token", true); return; }

  const feeds = {}; // feed id -> display name
  const screens = {}; // feed id -> { mid, handle } of our subscription to its shared screen
  let janus = null;
  let publisher = null;
  let screenTrack = null;
  const SCREEN = "screen"; // the description a shared screen's stream is published with

  // A publisher's streams but its shared screen (that one has a subscription of its own, as
  // it comes and goes): [{feed, mid}], or the whole feed when Janus lists no streams.
  function cameraStreams(feed) {
    const mids = (feed.streams || []).filter((s) => s.description !== SCREEN && !s.disabled && s.mid !== undefined).map((s) => s.mid);
    return mids.length ? mids.map((mid) => ({ feed: feed.id, mid })) : [{ feed: feed.id }];
  }

  function screenMid(feed) {
    const stream = (feed.streams || []).find((s) => s.type === "video" && s.description === SCREEN && !s.disabled);
    return stream ? stream.mid : null;
  }

  // Show a publisher's shared screen (a tile of its own) while it shares one.
  function updateScreen(feed) {
    const mid = screenMid(feed);
    const current = screens[feed.id];
    if (current && current.mid === mid) return;
    if (current) {
      delete screens[feed.id];
      if (current.handle) current.handle.detach();
      const el = document.getElementById("screen-" + feed.id);
      if (el) el.closest("figure").remove();
      delete state.screens[feeds[feed.id]];
    }
    if (mid === null) return;
    const entry = (screens[feed.id] = { mid, handle: null });
    janus.attach({
      plugin: "janus.plugin.videoroom",
      success: (h) => {
        entry.handle = h;
        if (screens[feed.id] !== entry) { h.detach(); return; }
        h.send({ message: { request: "join", ptype: "subscriber", room, pin, streams: [{ feed: feed.id, mid }] } });
      },
      error: (e) => say("subscribing to a screen failed: " + e, true),
      onmessage: (msg, jsep) => {
        if (jsep) {
          entry.handle.createAnswer({
            jsep,
            tracks: [{ type: "data" }],
            success: (answer) => entry.handle.send({ message: { request: "start", room }, jsep: answer }),
            error: (e) => say("answering failed: " + e, true),
          });
        }
      },
      onremotetrack: (track, _mid, on) => {
        const id = "screen-" + feed.id;
        let el = document.getElementById(id);
        if (!on || track.kind !== "video") return;
        if (el) return;
        const figure = document.createElement("figure");
        el = document.createElement("video");
        el.id = id; el.autoplay = true; el.playsInline = true; el.muted = true;
        el.srcObject = new MediaStream([track]);
        const caption = document.createElement("figcaption");
        caption.textContent = (feeds[feed.id] || "someone") + "'s screen";
        figure.append(el, caption);
        state.screens[feeds[feed.id]] = el;
        document.getElementById("tiles").appendChild(figure);
      },
    });
  }

  function refreshMembers() { state.members = Object.values(feeds).sort(); }

  function subscribe(feed) {
    if (feeds[feed.id] !== undefined) return updateScreen(feed);
    feeds[feed.id] = feed.display || "feed " + feed.id;
    refreshMembers();
    let handle = null;
    janus.attach({
      plugin: "janus.plugin.videoroom",
      success: (h) => {
        handle = h;
        handle.send({ message: { request: "join", ptype: "subscriber", room, pin, streams: cameraStreams(feed) } });
        updateScreen(feed);
      },
      error: (e) => say("subscribing failed: " + e, true),
      onmessage: (msg, jsep) => {
        if (jsep) {
          handle.createAnswer({
            jsep,
            tracks: [{ type: "data" }],
            success: (answer) => handle.send({ message: { request: "start", room }, jsep: answer }),
            error: (e) => say("answering failed: " + e, true),
          });
        }
      },
      onremotetrack: (track, mid, on) => {
        const who = feeds[feed.id];
        const id = "feed-" + feed.id + "-" + track.kind;
        let el = document.getElementById(id);
        if (!on) { if (el) el.closest("figure").remove(); delete state[track.kind === "video" ? "videos" : "audios"][who]; return; }
        if (el) return;
        const figure = document.createElement("figure");
        el = document.createElement(track.kind === "video" ? "video" : "audio");
        el.id = id; el.autoplay = true; el.playsInline = true;
        el.srcObject = new MediaStream([track]);
        figure.appendChild(el);
        if (track.kind === "video") {
          const caption = document.createElement("figcaption");
          caption.textContent = who;
          figure.appendChild(caption);
          state.videos[who] = el;
        } else {
          state.audios[who] = el;
        }
        document.getElementById("tiles").appendChild(figure);
      },
      // The agent's transcripts and messages come on its data channel.
      ondata: (data) => {
        let msg = null;
        try { msg = JSON.parse(data); } catch (e) { return; }
        if (msg && msg.type === "recording") {
          state.recording = msg.active === true;
          document.getElementById("recording").hidden = !state.recording;
        }
        if (msg && msg.type === "transcript" && typeof msg.text === "string") {
          state.log.push((msg.who === "agent" ? "Agent" : "You") + ": " + msg.text);
          const line = document.createElement("li");
          line.textContent = state.log[state.log.length - 1];
          document.getElementById("log").appendChild(line);
        }
      },
      oncleanup: () => {},
    });
    feed.handle = () => handle;
  }

  function forget(feedId) {
    const who = feeds[feedId];
    if (who === undefined) return;
    delete feeds[feedId];
    delete state.videos[who];
    delete state.audios[who];
    state.left[who] = Date.now();
    refreshMembers();
    for (const kind of ["audio", "video"]) {
      const el = document.getElementById("feed-" + feedId + "-" + kind);
      if (el) el.closest("figure").remove();
    }
    updateScreen({ id: feedId, streams: [] });
  }

  // Muting stops the track (silence, black frames) and tells the room: Janus announces a
  // change of a stream's description to every participant, so a muted stream is described
  // as "muted" (the agent's edge reads it) and a live one as its kind.
  function toggleMute(button, kind, muteLabel, unmuteLabel) {
    const pc = publisher && publisher.webrtcStuff && publisher.webrtcStuff.pc;
    const transceiver = pc && pc.getTransceivers().find((t) => t.sender.track && t.sender.track !== screenTrack && t.sender.track.kind === kind);
    if (!transceiver) return;
    const track = transceiver.sender.track;
    track.enabled = !track.enabled;
    const muted = !track.enabled;
    state.muted[kind] = muted;
    button.textContent = muted ? unmuteLabel : muteLabel;
    publisher.send({ message: { request: "configure", descriptions: [{ mid: transceiver.mid, description: muted ? "muted" : kind }] } });
  }
  const muteAudio = document.getElementById("mute-audio");
  const muteVideo = document.getElementById("mute-video");
  muteAudio.onclick = () => toggleMute(muteAudio, "audio", "Mute microphone", "Unmute microphone");
  muteVideo.onclick = () => toggleMute(muteVideo, "video", "Turn camera off", "Turn camera on");

  // Share a screen, window or tab (the browser asks which) as a stream of its own, marked as
  // text so the encoder keeps it sharp and described as "screen" so the room (the agent, the
  // other pages) knows it for one; stopping it (this button, or the browser's own control)
  // removes the stream.
  const shareButton = document.getElementById("share-screen");
  async function shareScreen() {
    if (screenTrack) return stopSharing();
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (e) {
      say("screen not shared (" + e.name + ")");
      return;
    }
    screenTrack = stream.getVideoTracks()[0];
    screenTrack.contentHint = "text";
    screenTrack.addEventListener("ended", stopSharing);
    publisher.createOffer({
      tracks: [{ type: "screen", capture: screenTrack, recv: false, add: true }],
      success: (offer) => {
        const pc = publisher.webrtcStuff.pc;
        const transceiver = pc.getTransceivers().find((t) => t.sender.track === screenTrack);
        const params = transceiver.sender.getParameters();
        params.degradationPreference = "maintain-resolution";
        transceiver.sender.setParameters(params).catch(() => {});
        state.sharing = transceiver.mid;
        publisher.send({ message: { request: "configure", descriptions: [{ mid: transceiver.mid, description: SCREEN }] }, jsep: offer });
        shareButton.textContent = "Stop sharing";
        shareButton.setAttribute("aria-pressed", "true");
      },
      error: (e) => say("sharing the screen failed: " + e, true),
    });
  }
  function stopSharing() {
    if (!screenTrack) return;
    const mid = state.sharing;
    screenTrack.stop();
    screenTrack = null;
    state.sharing = null;
    shareButton.textContent = "Share screen";
    shareButton.setAttribute("aria-pressed", "false");
    publisher.createOffer({
      tracks: [{ type: "screen", mid, remove: true }],
      success: (offer) => publisher.send({ message: { request: "configure" }, jsep: offer }),
      error: (e) => say("stopping the screen share failed: " + e, true),
    });
  }
  shareButton.onclick = () => shareScreen();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) shareButton.hidden = true;

  const leave = document.getElementById("leave");
  leave.onclick = () => {
    leave.disabled = muteAudio.disabled = muteVideo.disabled = shareButton.disabled = true;
    state.leftAt = Date.now();
    janus.destroy({ notifyDestroyed: true });
  };

  // Closing the tab leaves at once: janus.js listens for beforeunload only, which a tab closed
  // by a script or on a phone may never fire; without this the room hears of it only when
  // Janus notices the dead WebSocket or PeerConnection (seconds).
  window.addEventListener("pagehide", () => {
    if (janus) janus.destroy({ unload: true, notifyDestroyed: false });
  });

  // Keep the camera's size when bandwidth is short and lower its frame rate instead: a model
  // reads a sharp picture at a few fps better than a blurred one (as the embedded page does).
  function keepCameraSize(pc) {
    const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video" && s.track !== screenTrack);
    if (!sender) return;
    const params = sender.getParameters();
    params.degradationPreference = "maintain-resolution";
    sender.setParameters(params).catch(() => {});
  }

  Janus.init({
    debug: false,
    callback: () => {
      janus = new Janus({
        server,
        token,
        success: () => janus.attach({
          plugin: "janus.plugin.videoroom",
          success: (h) => {
            publisher = h;
            publisher.send({ message: { request: "join", ptype: "publisher", room, pin, display: name } });
          },
          error: (e) => say("attaching failed: " + e, true),
          onmessage: (msg, jsep) => {
            if (msg.videoroom === "joined") {
              state.joined = true;
              say("in the call as " + name);
              leave.disabled = muteAudio.disabled = muteVideo.disabled = shareButton.disabled = false;
              publisher.createOffer({
                tracks: [{ type: "audio", capture: true, recv: false }, { type: "video", capture: { width: { ideal: 1280 } }, recv: false }],
                success: (offer) => {
                  state.pc = publisher.webrtcStuff.pc;
                  keepCameraSize(state.pc);
                  publisher.send({ message: { request: "configure", audio: true, video: true }, jsep: offer });
                },
                error: (e) => say("camera or microphone failed: " + e, true),
              });
            }
            if (msg.error) say(msg.error, true);
            for (const feed of msg.publishers || []) subscribe(feed);
            for (const key of ["unpublished", "leaving"]) if (typeof msg[key] === "number") forget(msg[key]);
            if (jsep) publisher.handleRemoteJsep({ jsep });
          },
          onlocaltrack: (track, on) => {
            if (on && track.kind === "video" && track !== screenTrack) document.getElementById("self").srcObject = new MediaStream([track]);
          },
        }),
        error: (e) => say("cannot join: " + e, true),
        destroyed: () => say("left the call"),
      });
    },
  });
})();
