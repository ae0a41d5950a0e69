// AudioWorklet processors of the rtvc page (they run on the audio rendering thread).
//
// rtvc-tap:      posts its mono input in fixed frames to the main thread (microphone capture, recording).
// rtvc-playback: plays chunks posted by the main thread through a bounded jitter buffer; silence on
//                underrun, oldest audio dropped beyond the cap so latency cannot creep.

class TapProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frameSamples = options.processorOptions.frameSamples;
    this.frame = new Float32Array(this.frameSamples);
    this.fill = 0;
  }

  process(inputs, outputs) {
    const input = inputs[0];
    if (input && input.length > 0) {
      const left = input[0];
      const right = input.length > 1 ? input[1] : null;
      for (let i = 0; i < left.length; i++) {
        this.frame[this.fill++] = right ? 0.5 * (left[i] + right[i]) : left[i];
        if (this.fill === this.frameSamples) {
          this.port.postMessage(this.frame, [this.frame.buffer]);  // transferred: the old array is now empty
          this.frame = new Float32Array(this.frameSamples);
          this.fill = 0;
        }
      }
    }
    const out = outputs[0];
    if (out) for (const channel of out) channel.fill(0);  // a tap is silent; keeps the node pulled
    return true;
  }
}

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = options.processorOptions;
    this.ring = new Float32Array(Math.ceil(opts.maxSamples) + 128);
    this.maxSamples = opts.maxSamples;
    this.prerollSamples = opts.prerollSamples;  // wait for this much before (re)starting after an underrun
    this.read = 0;
    this.size = 0;
    this.playing = false;
    this.underruns = 0;
    this.dropped = 0;
    this.quanta = 0;
    this.port.onmessage = (event) => this.push(event.data);
  }

  push(chunk) {
    const cap = this.ring.length;
    for (let i = 0; i < chunk.length; i++) {
      this.ring[(this.read + this.size) % cap] = chunk[i];
      if (this.size < cap) this.size++;
      else { this.read = (this.read + 1) % cap; this.dropped++; }
    }
    const excess = this.size - this.maxSamples;
    if (excess > 0) {  // trim to the cap: drop the oldest
      this.read = (this.read + excess) % cap;
      this.size -= excess;
      this.dropped += excess;
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.size >= this.prerollSamples) this.playing = true;
    if (this.playing && this.size >= out.length) {
      const cap = this.ring.length;
      for (let i = 0; i < out.length; i++) out[i] = this.ring[(this.read + i) % cap];
      this.read = (this.read + out.length) % cap;
      this.size -= out.length;
    } else {
      out.fill(0);
      if (this.playing) { this.underruns++; this.playing = false; }
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (++this.quanta % 40 === 0) {
      this.port.postMessage({depthSamples: this.size, underruns: this.underruns, dropped: this.dropped});
    }
    return true;
  }
}

registerProcessor("rtvc-tap", TapProcessor);
registerProcessor("rtvc-playback", PlaybackProcessor);
