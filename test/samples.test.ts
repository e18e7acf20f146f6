import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OnnxJobInput } from '../src/protocol/tensor.js';
import { mlpModel } from './fixtures/make-onnx.js';

describe('samples/', () => {
  it('holds exactly the MLP the fixture generator writes', () => {
    expect(Buffer.from(readFileSync(new URL('../samples/mlp.onnx', import.meta.url)))).toEqual(Buffer.from(mlpModel()));
  });

  it('holds an input in the tensor format', () => {
    expect(() => OnnxJobInput.parse(JSON.parse(readFileSync(new URL('../samples/mlp-input.json', import.meta.url), 'utf8')))).not.toThrow();
  });
});
