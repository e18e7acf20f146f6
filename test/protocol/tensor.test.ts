import { describe, expect, it } from 'vitest';
import { checkJobPayload } from '../../src/protocol/job-payload.js';

const input = (tensor: object) => ({ inputs: { x: tensor } });

describe('checkJobPayload', () => {
  it.each([
    ['no padding', 'float32', [3], Buffer.alloc(12)],
    ['one "="', 'uint8', [2], Buffer.alloc(2)],
    ['two "="', 'uint8', [1], Buffer.alloc(1)],
    ['a scalar', 'float64', [], Buffer.alloc(8)],
    ['an empty tensor', 'int32', [0], Buffer.alloc(0)],
  ])('accepts b64 of the size the dims need: %s', (_name, dtype, dims, bytes) => {
    expect(checkJobPayload('onnx', 'input', input({ dtype, dims, b64: bytes.toString('base64') }))).toBeNull();
  });

  it.each([
    ['one byte short', 'uint8', [3], Buffer.alloc(2), 'need 3 bytes, b64 has 2'],
    ['one byte over', 'uint8', [1], Buffer.alloc(2), 'need 1 bytes, b64 has 2'],
    ['float32 of int8 size', 'float32', [2], Buffer.alloc(2), 'need 8 bytes, b64 has 2'],
  ])('names the sizes when b64 does not fit the dims: %s', (_name, dtype, dims, bytes, problem) => {
    expect(checkJobPayload('onnx', 'input', input({ dtype, dims, b64: bytes.toString('base64') }))).toBe(`input.inputs.x: dims [${dims.join(', ')}] of ${dtype} ${problem}`);
  });

  it('names the first bad field by its path', () => {
    expect(checkJobPayload('onnx', 'output', { outputs: { y: { dtype: 'float32', dims: [1], data: [{}] } } })).toMatch(/^output\.outputs\.y\.data\.0: /);
    expect(checkJobPayload('onnx', 'input', input({ dtype: 'float32', dims: [1], b64: 'not base64!' }))).toBe('input.inputs.x.b64: expected base64');
  });

  it('checks only onnx jobs', () => {
    expect(checkJobPayload('test.echo', 'input', 'anything')).toBeNull();
  });
});
