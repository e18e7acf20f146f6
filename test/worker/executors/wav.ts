/**
 * Just enough WAV for the VAD test: read 16-bit PCM mono (what `espeak-ng -w`
 * writes, at 22,050 Hz) and resample it to the 16 kHz silero expects.
 *
 *   const { sampleRate, samples } = readWav(readFileSync('speech.wav')); // samples in [-1, 1)
 *   const at16k = resample(samples, sampleRate, 16_000);
 */

export function readWav(file: Buffer): { sampleRate: number; samples: Float32Array } {
  if (file.toString('ascii', 0, 4) !== 'RIFF' || file.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a RIFF/WAVE file');
  let format: { channels: number; sampleRate: number; bits: number; pcm: boolean } | undefined;
  for (let at = 12; at + 8 <= file.length; ) {
    const id = file.toString('ascii', at, at + 4);
    const declared = file.readUInt32LE(at + 4);
    const body = at + 8;
    if (id === 'fmt ') {
      format = { pcm: file.readUInt16LE(body) === 1, channels: file.readUInt16LE(body + 2), sampleRate: file.readUInt32LE(body + 4), bits: file.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      if (!format?.pcm || format.channels !== 1 || format.bits !== 16) throw new Error(`expected 16-bit PCM mono, got ${JSON.stringify(format)}`);
      // A streamed WAV (espeak-ng --stdout) declares a huge length; the file's end bounds it.
      const end = Math.min(file.length, body + declared);
      const samples = new Float32Array(Math.floor((end - body) / 2));
      for (let i = 0; i < samples.length; i++) samples[i] = file.readInt16LE(body + 2 * i) / 32768;
      return { sampleRate: format.sampleRate, samples };
    }
    at = body + declared + (declared % 2); // chunks are padded to an even length
  }
  throw new Error('no data chunk');
}

/**
 * Linear interpolation: crude next to a windowed-sinc resampler, but speech
 * from espeak-ng has little energy above 8 kHz, so aliasing does not matter to a VAD.
 */
export function resample(samples: Float32Array, from: number, to: number): Float32Array {
  const out = new Float32Array(Math.floor((samples.length * to) / from));
  for (let i = 0; i < out.length; i++) {
    const pos = (i * from) / to;
    const j = Math.floor(pos);
    const a = samples[j] ?? 0;
    const b = samples[j + 1] ?? a;
    out[i] = a + (b - a) * (pos - j);
  }
  return out;
}
