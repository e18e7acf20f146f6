/**
 * Progress on long steps for a person at a terminal: on stderr, redrawn in
 * place, and never in --json output or into a pipe or file (where it would be
 * noise in what a script reads). Drawn by cli-progress: well kept, one small
 * dependency, it redraws at most every 100 ms and handles terminal width and
 * ETA; hand-drawing the same would be more code than this whole file.
 *
 *   const bar = byteBar('uploading mlp.onnx', size);   // null where there is no terminal
 *   stream.on('data', (c) => bar?.add(c.length));
 *   bar?.stop();
 */
import { SingleBar } from 'cli-progress';
import { printable } from '../protocol/index.js';

/** Whether progress may be drawn: stderr is a terminal and the output is not JSON. */
export function progressShown(json = false): boolean {
  return process.stderr.isTTY === true && !json;
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** What every bar shares: drawn on stderr in full and light blocks, the cursor left alone (a Ctrl+C must not hide it). */
const LOOK = { stream: process.stderr, barsize: 24, hideCursor: false, barCompleteChar: '\u2588', barIncompleteChar: '\u2591' } as const;

export interface ByteBar {
  add(bytes: number): void;
  stop(): void;
}

/** Bytes of `total`, with the rate and time left: `uploading mlp.onnx [████░░] 45% | 45.2/100.0 MiB | 12.3 MiB/s | 5s left`. */
export function byteBar(label: string, total: number, json = false): ByteBar | null {
  if (!progressShown(json)) return null;
  const started = performance.now();
  let done = 0;
  const bar = new SingleBar({ ...LOOK, format: `${printable(label)} [{bar}] {percentage}% | {done}/{size} MiB | {rate} MiB/s | {eta_formatted} left` });
  bar.start(total, 0, { done: mib(0), size: mib(total), rate: '0.0' });
  return {
    add(bytes) {
      done += bytes;
      const secs = (performance.now() - started) / 1000;
      bar.update(done, { done: mib(done), rate: secs > 0 ? mib(done / secs) : '0.0' });
    },
    stop: () => bar.stop(),
  };
}

export interface CountBar {
  update(done: number, note: string): void;
  stop(): void;
}

/** `n of N` with a note (how many failed), for a batch of jobs. */
export function countBar(label: string, total: number, json = false): CountBar | null {
  if (!progressShown(json)) return null;
  const bar = new SingleBar({ ...LOOK, format: `${printable(label)} [{bar}] {value} of {total} done{note}` });
  bar.start(total, 0, { note: '' });
  return { update: (done, note) => bar.update(done, { note: note ? ` (${note})` : '' }), stop: () => bar.stop() };
}

export interface JobBar {
  /** The job's state line, and its progress (0..1) once it reports one. */
  update(state: string, progress: number | null): void;
  stop(): void;
}

/** One job's state, the time since submit, and a bar once it reports progress: `--wait` on a terminal. */
export function jobBar(json = false): JobBar | null {
  if (!progressShown(json)) return null;
  const started = performance.now();
  const bar = new SingleBar({ ...LOOK, format: '{state} [{bar}] {percentage}% | {elapsed}s' });
  bar.start(100, 0, { state: '', elapsed: 0 });
  return {
    update(state, progress) {
      bar.update(progress === null ? 0 : Math.round(progress * 100), { state: printable(state), elapsed: Math.round((performance.now() - started) / 1000) });
    },
    stop: () => bar.stop(),
  };
}
