/**
 * The model a GPU backend must run before it is used (gpu-probe-process.ts):
 * the MLP of test/fixtures/make-onnx.ts (`mlpModel()`, x float32 [batch, 4]
 * → y float32 [batch, 3]), inlined so the worker needs no file for it. Two
 * MatMuls, Adds and a Relu: a provider has to compile and run real kernels,
 * not pass a tensor through. A test checks these bytes are that model.
 */
export const PROBE_MODEL = Buffer.from(
  'CAgSD2dvZ3JpZC1maXh0dXJlczr9AwocCgF4CgJ3MRICaDAaB21hdG11bDEiBk1hdE11bAoXCgJoMAoCYjESAmgxGgRhZGQxIgNBZGQKEwoCaDESAWgaBHJlbHUiBFJlbHUKHAoBaAoCdzISAnkwGgdtYXRtdWwyIgZNYXRNdWwKFgoCeTAKAmIyEgF5GgRhZGQyIgNBZGQSA21scCqNAQgECAgQAUICdzFKgAEAAAA/AACAvwAAgD4AAABAAABAvwAAwD8AAAAAAAAAwAAAgD8AAAA/AADAvwAAgL4AAABAAACAvwAAQD8AAAA/AAAAvwAAoD8AAIA/AAAAPwAAgL8AAIA+AADgvwAAgD8AAABAAAAAvwAAAD8AAIC/AACAPgAAQD8AAIA/AACAvioqCAgQAUICYjFKIM3MzD3NzEy+mpmZPs3MzL4AAAA/mpkZvzMzMz/NzEy/KmwICAgDEAFCAncySmAAAIA/AAAAvwAAgD4AAIC/AABAPwAAAD8AAAA/AACAPwAAgL8AAIA+AACAvgAAAEAAAEC/AAAAPwAAgD8AAMA/AACAvwAAgD4AAAAAAAAAQAAAAL8AAAC/AACAPgAAQD8qFggDEAFCAmIySgwK1yM8CtejvI/C9TxaGAoBeBITChEIARINCgcSBWJhdGNoCgIIBGIYCgF5EhMKEQgBEg0KBxIFYmF0Y2gKAggDQgQKABAR',
  'base64',
);
