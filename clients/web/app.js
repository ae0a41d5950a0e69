// The rtvc page: microphone in, converted voice out, over WebRTC or WebSocket.
// URL options (handy for links and tests): ?key=KEY&voice=ID&transport=webrtc|websocket
// window.rtvcApp exposes start/stop/state and the recording (the browser test reads it).

import {startWebRtc, startWebSocket} from "./transports.js";
import {wavBlob} from "./wire.js";

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const state = {phase: "idle", error: null, started: null, ended: null, rttMs: null, stats: {}, counters: {}};
let voices = [];
let graph = null;
let micStream = null;
let transport = null;
let timers = [];
const recording = {on: false, input: [], output: []};

function setStatus(text, phase) {
  state.phase = phase || state.phase;
  $("status").textContent = text;
  $("status").classList.toggle("error", phase === "error");
}

// --- voices and their controls ----------------------------------------------------------------------------

async function loadVoices() {
  const key = $("key").value.trim();
  if (!key) return;
  const response = await fetch("/v1/voices", {headers: {"Authorization": `Bearer ${key}`}});
  if (!response.ok) { setStatus(`cannot list voices: HTTP ${response.status} (check the key)`, "error"); return; }
  const body = await response.json();
  voices = Array.isArray(body) ? body : (body.voices || []);
  const select = $("voice");
  const wanted = query.get("voice") || select.value;
  select.replaceChildren(...voices.map((v) => new Option(v.id, v.id)));
  if (voices.some((v) => v.id === wanted)) select.value = wanted;
  renderParams();
  setStatus(`${voices.length} voices; press Start`, "idle");
}

function currentVoice() { return voices.find((v) => v.id === $("voice").value); }

function renderParams() {
  const voice = currentVoice();
  $("voice-description").textContent = voice ? voice.description || "" : "";
  const rows = (voice ? voice.params || [] : []).map((spec) => {
    const row = document.createElement("label");
    row.className = "param";
    row.title = spec.description || "";
    const input = Object.assign(document.createElement("input"), {
      type: "range", min: spec.minimum, max: spec.maximum, value: spec.default,
      step: (spec.maximum - spec.minimum) / 200, name: spec.name,
    });
    const shown = document.createElement("output");
    const show = () => { shown.textContent = `${Number(input.value).toFixed(2)} ${spec.unit || ""}`; };
    show();
    let pending = null;
    input.addEventListener("input", () => {
      show();
      clearTimeout(pending);  // at most ~10 updates a second while dragging
      pending = setTimeout(() => transport && transport.send({type: "session.update", params: {[spec.name]: Number(input.value)}}), 100);
    });
    row.append(spec.name, input, shown);
    return row;
  });
  $("param-list").replaceChildren(...rows);
}

function currentParams() {
  const params = {};
  for (const input of $("param-list").querySelectorAll("input")) params[input.name] = Number(input.value);
  return params;
}

// --- audio graph: meters and recording taps -------------------------------------------------------------

async function buildGraph() {
  const ctx = new AudioContext({sampleRate: 48000, latencyHint: "interactive"});
  await ctx.audioWorklet.addModule("worklet.js");
  await ctx.resume();
  const silentSink = ctx.createGain();
  silentSink.gain.value = 0;
  silentSink.connect(ctx.destination);
  const outBus = ctx.createGain();
  outBus.connect(ctx.destination);
  const tap = (source, into) => {
    const node = new AudioWorkletNode(ctx, "rtvc-tap", {processorOptions: {frameSamples: 960}});
    node.port.onmessage = (event) => { if (recording.on) into.push(event.data); };
    source.connect(node);
    node.connect(silentSink);
  };
  const inBus = ctx.createGain();
  const inAnalyser = ctx.createAnalyser();
  const outAnalyser = ctx.createAnalyser();
  inBus.connect(inAnalyser);
  outBus.connect(outAnalyser);
  tap(inBus, recording.input);
  tap(outBus, recording.output);
  return {ctx, inBus, outBus, silentSink, inAnalyser, outAnalyser};
}

function levelDb(analyser) {
  const data = new Float32Array(analyser.fftSize);
  analyser.getFloatTimeDomainData(data);
  let sum = 0;
  for (const x of data) sum += x * x;
  return 10 * Math.log10(sum / data.length + 1e-12);
}

function showLevels() {
  for (const [which, analyser] of [["in", graph.inAnalyser], ["out", graph.outAnalyser]]) {
    const db = levelDb(analyser);
    $(`level-${which}`).style.width = `${Math.max(0, Math.min(100, (db + 70) / 70 * 100))}%`;
    $(`db-${which}`).textContent = db < -99 ? "-inf dB" : `${db.toFixed(1)} dB`;
  }
}

async function showLatency() {
  if (!transport || !state.started) return;
  transport.send({type: "ping", t: performance.now()});
  const parts = await transport.latencyParts();
  const algorithmic = state.started.latency_ms;
  const rtt = state.rttMs;
  const buffer = parts.jitterBufferMs ?? parts.playoutMs;
  const serverQueue = (state.stats.queue_ms ?? 0) + (state.stats.output_buffer_ms ?? 0);
  const total = algorithmic + (rtt ?? 0) + (buffer ?? 0) + serverQueue;
  const fmt = (v) => (v == null ? "?" : v.toFixed(1));
  const bufferName = parts.jitterBufferMs !== undefined ? "jitter buffer" : "playout buffer";
  $("latency").textContent = `latency ≈ ${fmt(total)} ms = algorithmic ${fmt(algorithmic)} + network rtt ${fmt(rtt)}`
    + ` + ${bufferName} ${fmt(buffer)} + server queues ${fmt(state.stats.queue_ms == null ? null : serverQueue)}`;
  const s = state.stats;
  $("counters").textContent = `frames in/out ${s.frames_in ?? 0}/${s.frames_out ?? 0}, dropped in/out `
    + `${s.dropped_in ?? 0}/${s.dropped_out ?? 0}, rtf ${s.rtf ?? "?"}, underruns ${s.underruns ?? state.counters.underruns ?? 0}`;
}

// --- session ------------------------------------------------------------------------------------------------

function onMessage(message) {
  if (message.type === "pong" && typeof message.t === "number") state.rttMs = performance.now() - message.t;
  else if (message.type === "stats") state.stats = message;
  else if (message.type === "session.ended") state.ended = message;
  else if (message.type === "error") setStatus(`server: ${message.code}: ${message.message}`, state.phase);
}

async function start() {
  const key = $("key").value.trim();
  const voice = $("voice").value;
  if (!key || !voice) { setStatus("enter a key and choose a voice first", "error"); return; }
  $("start").disabled = true;
  state.error = null;
  state.ended = null;
  setStatus("connecting…", "connecting");
  try {
    graph = graph || await buildGraph();
    micStream = await navigator.mediaDevices.getUserMedia({
      audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1},
    });
    const micSource = graph.ctx.createMediaStreamSource(micStream);
    micSource.connect(graph.inBus);
    recording.on = $("record").checked;
    recording.input.length = 0;
    recording.output.length = 0;
    const options = {key, voice, purpose: $("purpose").value.trim() || "live_streaming", params: currentParams(), micStream,
      micSource, graph, remoteElement: $("remote"), onMessage, counters: state.counters};
    transport = $("transport").value === "websocket" ? await startWebSocket(options) : await startWebRtc(options);
    state.started = transport.started;
    setStatus(`streaming: session ${state.started.session_id}, block ${state.started.block_ms} ms`, "streaming");
    $("stop").disabled = false;
    timers = [setInterval(showLevels, 100), setInterval(showLatency, 1000)];
  } catch (error) {
    state.error = String(error.message || error);
    setStatus(`failed: ${state.error}`, "error");
    await stop();
  }
}

async function stop() {
  $("stop").disabled = true;
  timers.forEach(clearInterval);
  timers = [];
  const current = transport;
  transport = null;
  if (current) state.ended = (await current.stop()) || state.ended;
  if (micStream) micStream.getTracks().forEach((t) => t.stop());
  micStream = null;
  recording.on = false;
  if (recording.output.length) {
    const link = $("download");
    link.href = URL.createObjectURL(wavBlob(concat(recording.output), graph.ctx.sampleRate));
    link.hidden = false;
  }
  if (state.phase !== "error") setStatus(state.ended ? "ended" : "stopped", "ended");
  $("start").disabled = false;
}

function concat(chunks) {
  const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) { out.set(c, offset); offset += c.length; }
  return out;
}

function base64(samples) {
  const bytes = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

// --- wiring -------------------------------------------------------------------------------------------------

$("key").value = query.get("key") || "";
if (query.get("transport")) $("transport").value = query.get("transport");
$("key").addEventListener("change", () => loadVoices().catch((e) => setStatus(String(e), "error")));
$("voice").addEventListener("change", renderParams);
$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
$("record").addEventListener("change", () => { recording.on = $("record").checked && transport !== null; });
const voicesLoaded = loadVoices().catch((e) => setStatus(String(e), "error"));

window.rtvcApp = {
  state,
  voicesLoaded,
  start: async ({record = false} = {}) => { $("record").checked = record; await start(); return state.phase; },
  stop: async () => { await stop(); return state.ended; },
  // Float32 little-endian, base64, at the AudioContext rate: what the mic sent and what came back.
  recording: () => ({rate: graph ? graph.ctx.sampleRate : null,
    input: base64(concat(recording.input)), output: base64(concat(recording.output))}),
};
