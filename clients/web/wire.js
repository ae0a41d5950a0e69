// rtvc.v1 binary audio frames: a 16-byte little-endian header, then interleaved PCM.
// u8 version=1, u8 flags (bit 0 last, bit 1 discontinuity), u16 reserved=0, u32 seq, u64 start_sample.

export const HEADER_BYTES = 16;
export const FLAG_LAST = 1;
export const FLAG_DISCONTINUITY = 2;

export function packFrame(seq, startSample, pcm, flags = 0) {
  const out = new Uint8Array(HEADER_BYTES + pcm.byteLength);
  const view = new DataView(out.buffer);
  view.setUint8(0, 1);
  view.setUint8(1, flags);
  view.setUint16(2, 0, true);
  view.setUint32(4, seq >>> 0, true);
  view.setBigUint64(8, BigInt(startSample), true);
  out.set(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength), HEADER_BYTES);
  return out.buffer;
}

export function parseFrame(buffer) {
  if (buffer.byteLength < HEADER_BYTES) throw new Error(`short audio frame (${buffer.byteLength} bytes)`);
  const view = new DataView(buffer);
  const version = view.getUint8(0);
  if (version !== 1) throw new Error(`audio frame version ${version}, expected 1`);
  const flags = view.getUint8(1);
  return {
    seq: view.getUint32(4, true),
    startSample: Number(view.getBigUint64(8, true)),
    last: (flags & FLAG_LAST) !== 0,
    discontinuity: (flags & FLAG_DISCONTINUITY) !== 0,
    pcm: new Int16Array(buffer.slice(HEADER_BYTES)),
  };
}

export function floatToS16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(-1, Math.min(1, samples[i]));
    out[i] = Math.round(x * 32767);
  }
  return out;
}

export function s16ToFloat(samples) {
  const out = new Float32Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = samples[i] / 32768;
  return out;
}

// A mono 16-bit WAV file of float samples, for the "download converted audio" link.
export function wavBlob(samples, rate) {
  const pcm = floatToS16(samples);
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) header.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); header.setUint32(4, 36 + pcm.byteLength, true); text(8, "WAVE");
  text(12, "fmt "); header.setUint32(16, 16, true); header.setUint16(20, 1, true); header.setUint16(22, 1, true);
  header.setUint32(24, rate, true); header.setUint32(28, rate * 2, true); header.setUint16(32, 2, true);
  header.setUint16(34, 16, true); text(36, "data"); header.setUint32(40, pcm.byteLength, true);
  return new Blob([header.buffer, pcm.buffer], {type: "audio/wav"});
}
