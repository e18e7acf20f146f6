import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder } from '../../src/transport/frame.js';
import { isGridError } from '../../src/protocol/errors.js';

function header(length: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(length);
  return b;
}

describe('frame codec', () => {
  it('round-trips values whatever the chunking, down to single bytes', () => {
    const values = [{ type: 'a', n: 1 }, { text: 'ünïcødé ✓'.repeat(50) }, [], 'x'];
    const bytes = Buffer.concat(values.map((v) => encodeFrame(v)));
    for (const size of [1, 2, 3, 5, 7, 64, bytes.length]) {
      const decoder = new FrameDecoder();
      const out: unknown[] = [];
      for (let i = 0; i < bytes.length; i += size) out.push(...decoder.push(bytes.subarray(i, i + size)));
      expect(out).toEqual(values);
      expect(decoder.pendingBytes).toBe(0);
    }
  });

  it('rejects an oversized frame from its header alone, before the body arrives', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 1000 });
    expect(() => decoder.push(header(1001))).toThrow(expect.objectContaining({ code: 'GG_ERR_FRAME_TOO_LARGE' }));
    // A frame of exactly the limit is fine.
    const ok = new FrameDecoder({ maxFrameBytes: 10 });
    expect(ok.push(encodeFrame('12345678', 10))).toEqual(['12345678']);
  });

  it('refuses to encode a value over the limit', () => {
    expect(() => encodeFrame('x'.repeat(100), 50)).toThrow(expect.objectContaining({ code: 'GG_ERR_FRAME_TOO_LARGE' }));
  });

  it('reports a body that is not JSON', () => {
    const decoder = new FrameDecoder();
    const body = Buffer.from('{nope');
    try {
      decoder.push(Buffer.concat([header(body.length), body]));
      expect.unreachable();
    } catch (e) {
      expect(isGridError(e, 'GG_ERR_FRAME_INVALID')).toBe(true);
    }
  });

  it('waits for a header split across chunks', () => {
    const decoder = new FrameDecoder();
    const frame = encodeFrame({ a: 1 });
    expect(decoder.push(frame.subarray(0, 2))).toEqual([]);
    expect(decoder.push(frame.subarray(2, 5))).toEqual([]);
    expect(decoder.push(frame.subarray(5))).toEqual([{ a: 1 }]);
  });
});
