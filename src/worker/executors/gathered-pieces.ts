/**
 * An executor's output pieces gathered into fewer, larger ones: the first
 * piece with text goes at once (the time to the first token is what a reader
 * waits on most), the rest together every `everyMs`, or as soon as `maxChars`
 * of text wait. Used twice with different intervals: the job process to the
 * worker (IPC, 5 ms) and the worker to the coordinator (QUIC, 25 ms).
 *
 *   const pieces = new GatheredPieces(25, (piece) => send(piece));
 *   pieces.add({ text: ' the', tokens: [279] });   // …
 *   pieces.flush();                                  // before the result that holds them all
 *   pieces.stop();                                   // whatever waits is dropped
 *
 * The tokens go with their text while every piece gathered had its own.
 */
import type { OutputPiece } from './types.js';

export class GatheredPieces {
  private text = '';
  /** The tokens of `text`, while every piece in it came with its own; null once one did not. */
  private tokens: number[] | null = [];
  private timer: NodeJS.Timeout | undefined;
  private sentText = false;

  constructor(
    private readonly everyMs: number,
    private readonly send: (piece: OutputPiece) => void,
    private readonly maxChars = Infinity,
  ) {}

  add(piece: OutputPiece): void {
    this.text += piece.text;
    if (this.tokens && piece.tokens) this.tokens.push(...piece.tokens);
    else this.tokens = null;
    if (this.text.length >= this.maxChars || (!this.sentText && this.text !== '')) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.everyMs);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.text === '' && !this.tokens?.length) return;
    const piece: OutputPiece = { text: this.text, ...(this.tokens && { tokens: this.tokens }) };
    this.sentText ||= this.text !== '';
    this.text = '';
    this.tokens = [];
    this.send(piece);
  }

  /** Drops what waits: the job ended without a result for it to precede. */
  stop(): void {
    clearTimeout(this.timer);
    this.text = '';
    this.tokens = [];
  }
}
