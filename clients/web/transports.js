// The two ways the page talks to the server. Both return the same shape:
//   {started, send(message), stop() -> Promise<session.ended or null>, latencyParts() -> {...ms}}
// and report server control messages (pong, stats, error, session.ended) through onMessage.

import {floatToS16, packFrame, parseFrame, s16ToFloat} from "./wire.js";

const FRAME_MS = 20;
const SEND_BUFFER_LIMIT_BYTES = 64 * 1024;  // a stalled socket drops mic frames instead of queueing them

function waitFor(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function endedPromise(onMessage) {
  let resolveEnded;
  const ended = new Promise((resolve) => { resolveEnded = resolve; });
  const handle = (message) => {
    if (message.type === "session.ended") resolveEnded(message);
    onMessage(message);
  };
  return {ended, handle, resolveEnded};
}

// --- WebRTC: Opus both ways, control on the data channel "rtvc" -------------------------------------------

async function gatheringComplete(pc, ms) {
  if (pc.iceGatheringState === "complete") return;
  await waitFor(new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
  }), ms, "ICE gathering").catch(() => {});  // send what was gathered so far
}

export async function startWebRtc({key, voice, purpose, params, micStream, graph, remoteElement, onMessage}) {
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver(micStream.getAudioTracks()[0], {direction: "sendrecv", streams: [micStream]});
  const channel = pc.createDataChannel("rtvc");
  const {ended, handle, resolveEnded} = endedPromise(onMessage);
  channel.onmessage = (event) => handle(JSON.parse(event.data));
  const remoteStream = new Promise((resolve) => {
    pc.ontrack = (event) => resolve(event.streams[0] || new MediaStream([event.track]));
  });
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringComplete(pc, 3000);
  const response = await fetch("/v1/webrtc/offer", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Authorization": `Bearer ${key}`},
    body: JSON.stringify({sdp: pc.localDescription.sdp, type: "offer", voice, purpose, params}),
  });
  const answer = await response.json();
  if (!response.ok) {
    pc.close();
    throw new Error(`${answer.code || response.status}: ${answer.message || "offer refused"}`);
  }
  await pc.setRemoteDescription({type: "answer", sdp: answer.sdp});
  const stream = await waitFor(remoteStream, 5000, "remote track");
  // Chromium only feeds a remote track into WebAudio while a media element consumes it (muted: WebAudio plays it).
  remoteElement.srcObject = stream;
  remoteElement.play().catch(() => {});
  graph.ctx.createMediaStreamSource(stream).connect(graph.outBus);
  await waitFor(new Promise((resolve) => {
    if (channel.readyState === "open") resolve();
    channel.onopen = resolve;
  }), 10000, "data channel");

  let jitter = {delay: 0, count: 0, ms: null};
  return {
    started: answer.session,
    send(message) { if (channel.readyState === "open") channel.send(JSON.stringify(message)); },
    async latencyParts() {
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio" && s.jitterBufferEmittedCount > jitter.count) {
          jitter = {
            ms: 1000 * (s.jitterBufferDelay - jitter.delay) / (s.jitterBufferEmittedCount - jitter.count),
            delay: s.jitterBufferDelay, count: s.jitterBufferEmittedCount,
          };
        }
      });
      return {jitterBufferMs: jitter.ms};
    },
    async stop() {
      let totals = null;
      if (channel.readyState === "open") {
        channel.send(JSON.stringify({type: "session.end"}));
        totals = await waitFor(ended, 4000, "session.ended").catch(() => null);
      }
      resolveEnded(null);
      await fetch(answer.location, {method: "DELETE", headers: {"Authorization": `Bearer ${key}`}}).catch(() => {});
      pc.close();
      return totals;
    },
  };
}

// --- WebSocket: PCM frames through AudioWorklets, control as JSON text ------------------------------------

export async function startWebSocket({key, voice, purpose, params, micSource, graph, onMessage, counters}) {
  const ctx = graph.ctx;
  const rate = ctx.sampleRate;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/stream`, ["rtvc.v1", `bearer.${key}`]);
  ws.binaryType = "arraybuffer";
  await waitFor(new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("WebSocket refused (check the key)"));
  }), 10000, "WebSocket connect");
  const format = {encoding: "pcm_s16le", sample_rate: rate, channels: 1};
  ws.send(JSON.stringify({type: "session.start", voice, purpose, input: format, output: format, params}));
  const started = await waitFor(new Promise((resolve, reject) => {
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "session.started") resolve(message);
      else reject(new Error(`${message.code}: ${message.message}`));
    };
    ws.onclose = (event) => reject(new Error(`closed ${event.code} ${event.reason}`));
  }), 10000, "session.started");

  const {ended, handle, resolveEnded} = endedPromise(onMessage);
  const playback = new AudioWorkletNode(ctx, "rtvc-playback", {
    outputChannelCount: [1],
    processorOptions: {maxSamples: Math.round(rate * 0.2), prerollSamples: Math.round(rate * 0.04)},
  });
  playback.connect(graph.outBus);
  let playoutMs = null;
  playback.port.onmessage = (event) => {
    playoutMs = 1000 * event.data.depthSamples / rate;
    counters.underruns = event.data.underruns;
    counters.playoutDropped = event.data.dropped;
  };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") { handle(JSON.parse(event.data)); return; }
    const frame = parseFrame(event.data);
    const samples = s16ToFloat(frame.pcm);
    playback.port.postMessage(samples, [samples.buffer]);
  };
  ws.onclose = () => resolveEnded(null);

  const capture = new AudioWorkletNode(ctx, "rtvc-tap", {processorOptions: {frameSamples: rate * FRAME_MS / 1000}});
  micSource.connect(capture);
  capture.connect(graph.silentSink);
  let seq = 0;
  let nextSample = 0;
  let discontinuity = false;
  capture.port.onmessage = (event) => {
    const samples = event.data;
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > SEND_BUFFER_LIMIT_BYTES) {
      counters.micDropped = (counters.micDropped || 0) + 1;
      discontinuity = true;
    } else {
      ws.send(packFrame(seq++, nextSample, floatToS16(samples), discontinuity ? 2 : 0));
      discontinuity = false;
    }
    nextSample += samples.length;
  };

  return {
    started,
    send(message) { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message)); },
    async latencyParts() { return {playoutMs}; },
    async stop() {
      capture.port.onmessage = null;
      micSource.disconnect(capture);
      let totals = null;
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({type: "session.end"}));
        totals = await waitFor(ended, 6000, "session.ended").catch(() => null);
      }
      ws.close();
      setTimeout(() => playback.disconnect(), 500);  // let the tail play out
      return totals;
    },
  };
}
