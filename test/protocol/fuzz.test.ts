/**
 * Property-based fuzzing of every boundary the protocol defines: each control
 * message, each API body, the frame codec, the tensor codec and the text
 * rules, with the hostile values of test/helpers/hostile.ts. The properties:
 * a bad value is refused with the protocol's own error (never a crash of
 * another kind), and whatever is accepted can be stored in PostgreSQL text
 * and printed (no NUL outside job JSON, no lone surrogate anywhere).
 * A failure prints fast-check's seed and path; `fc.assert(…, { seed, path })` replays it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseBody } from '../../src/common/http-errors.js';
import {
  AdminOverride,
  checkJobPayload,
  checkJson,
  cleanText,
  CreateTokenRequest,
  EnrollRequest,
  GridError,
  isGridError,
  line,
  ModelUploadQuery,
  parseCoordinatorMessage,
  parseWorkerMessage,
  printable,
  prose,
  SubmitJobRequest,
  SubmitJobsRequest,
  TensorJson,
} from '../../src/protocol/index.js';
import { ControlAction, EnrollForm, SettingsUpdate } from '../../src/protocol/control.js';
import { ChatCompletionRequest, CompletionRequest, EmbeddingRequest } from '../../src/protocol/openai.js';
import { LlmJobInput } from '../../src/protocol/llm.js';
import { CreateApiKeyRequest, ModelRenameRequest } from '../../src/protocol/api.js';
import { FrameDecoder } from '../../src/transport/frame.js';
import { decodeTensor } from '../../src/worker/executors/tensor-codec.js';
import { hostileJson, hostileString, stringsIn, withHostileField } from '../helpers/hostile.js';

const RUNS = { numRuns: 300 };
const LONE_SURROGATE = /\p{Cs}/u;
/** Job JSON may carry NUL (stored as the escape `\u0000` in JSON text); nothing else may. */
/**
 * Job JSON (a response_format's schema goes into the job's input) and what a
 * model generated (a partial's text, what a lost attempt streamed): stored as
 * JSON text, where NUL is an escape.
 */
const isJobJson = (path: string) => /(^|\.)(input|output|resumeFrom|json_schema\.schema)(\.|$)|^text$/.test(path);

/** The property every boundary shares: refused with a GridError, or accepted and storable. */
function refusedOrStorable(parse: () => unknown): void {
  let parsed: unknown;
  try {
    parsed = parse();
  } catch (e) {
    expect(isGridError(e), `not a GridError: ${String(e)}`).toBe(true);
    return;
  }
  for (const [path, s] of stringsIn(parsed)) {
    expect(LONE_SURROGATE.test(s), `lone surrogate accepted at ${path}`).toBe(false);
    if (!isJobJson(path)) expect(s.includes('\0'), `NUL accepted at ${path}`).toBe(false);
  }
}

const hardware = {
  cpu: { manufacturer: 'Intel', brand: 'Xeon', physicalCores: 2, threads: 2, speedGHz: 2.1 },
  memory: { totalBytes: 1024 },
  gpus: [{ vendor: 'NVIDIA', model: 'RTX', vramMiB: 8192, backends: ['cuda'] }],
  llm: { gpu: 'cuda', devices: ['NVIDIA RTX'], vramMiB: 8192, freeVramMiB: 7000 },
  backends: [{ kind: 'onnx', backend: 'cuda', ok: false, detail: 'Failed to load shared library' }],
  os: { platform: 'linux', distro: 'Debian', release: '12', arch: 'x64', hostname: 'h' },
};
const tensor = { dtype: 'string', dims: [1], data: ['cat'] };

/** A valid message of each type the worker sends, and the fields a hostile value goes into. */
const WORKER_MESSAGES: [Record<string, unknown>, string[]][] = [
  [
    { type: 'hello', protocolVersion: 1, workerId: 'w-1', name: 'pc', appVersion: '1.0', hardware, capabilities: { executors: ['onnx'], slots: 1, labels: ['a'], busyHeartbeats: true, heartbeatAcks: true } },
    [
      'workerId', 'name', 'appVersion', 'hardware.cpu.brand', 'hardware.gpus', 'hardware.os.hostname', 'capabilities.labels', 'capabilities.executors', 'cachedModels', 'pausedReason', 'protocolVersion',
      'hardware.llm', 'hardware.llm.gpu', 'hardware.llm.devices', 'hardware.llm.devices.0', 'hardware.llm.vramMiB', 'hardware.llm.freeVramMiB', 'capabilities.busyHeartbeats', 'hardware.memory.limitBytes', 'hardware.memory.jobLimitBytes',
      'capabilities.heartbeatAcks', 'gpuOff', 'hardware.backends', 'hardware.backends.0.kind', 'hardware.backends.0.backend', 'hardware.backends.0.ok', 'hardware.backends.0.detail',
    ],
  ],
  [
    { type: 'heartbeat', status: 'idle', load: { cpu: 0.5, freeMemoryBytes: 1, freeVramMiB: 512 }, runningJobs: [{ jobId: 'j', leaseId: 'l', progress: 0.5 }] },
    ['status', 'pausedReason', 'gpuOff', 'load.cpu', 'load.freeMemoryBytes', 'load.freeVramMiB', 'runningJobs', 'slots', 'cachedModels', 'loadedModels'],
  ],
  [{ type: 'job.progress', jobId: 'j', leaseId: 'l', progress: 0.5, message: 'm' }, ['jobId', 'leaseId', 'progress', 'message']],
  [{ type: 'job.partial', jobId: 'j', leaseId: 'l', offset: 3, text: 'lo', tokens: [7, 8] }, ['jobId', 'offset', 'text', 'tokens', 'tokens.0']],
  [
    { type: 'job.result', jobId: 'j', leaseId: 'l', runMs: 5, outcome: { ok: true, output: { outputs: { y: tensor } } } },
    ['jobId', 'runMs', 'outcome.output', 'outcome.output.outputs', 'outcome.output.outputs.y.data', 'outcome.ok'],
  ],
  [
    { type: 'job.result', jobId: 'j', leaseId: 'l', outcome: { ok: false, error: { code: 'GG_ERR_INTERNAL', message: 'm', retryable: true } } },
    ['outcome.error.code', 'outcome.error.message', 'outcome.error.retryable'],
  ],
  [{ type: 'job.release', jobId: 'j', leaseId: 'l', reason: 'r' }, ['reason', 'leaseId']],
  [{ type: 'error', code: 'GG_ERR_INTERNAL', message: 'm', fatal: true }, ['code', 'message', 'fatal']],
];

const COORDINATOR_MESSAGES: [Record<string, unknown>, string[]][] = [
  [
    { type: 'welcome', protocolVersion: 1, workerId: 'w', heartbeatIntervalSecs: 30, heartbeatTimeoutSecs: 90, busyHeartbeatIntervalSecs: 3, busyHeartbeatTimeoutSecs: 10, heartbeatAcks: true },
    ['workerId', 'heartbeatIntervalSecs', 'adminPolicy', 'busyHeartbeatIntervalSecs', 'busyHeartbeatTimeoutSecs', 'heartbeatAcks'],
  ],
  [
    {
      type: 'job.assign',
      job: { jobId: 'j', kind: 'llm', model: { sha256: 'a'.repeat(64), size: 1, name: 'm' }, input: { prompt: 'Hi' }, timeoutMs: 1, attempt: 2, resumeFrom: { text: 'Hel', tokens: [7] } },
      leaseId: 'l',
      leaseExpiresAt: '2026-01-01T00:00:00Z',
    },
    ['job.kind', 'job.model.name', 'job.input', 'job.requirements.labels', 'job.timeoutMs', 'leaseExpiresAt', 'job.resumeFrom.text', 'job.resumeFrom.tokens'],
  ],
  [{ type: 'job.cancel', jobId: 'j', leaseId: 'l', reason: 'r' }, ['reason']],
  [{ type: 'worker.policy', adminPolicy: { paused: true, message: 'm' } }, ['adminPolicy.message', 'adminPolicy.settings']],
];

describe('control messages', () => {
  it.each(WORKER_MESSAGES.map(([m, paths]) => [m['type'], m, paths] as const))('a %s with a hostile field is refused or storable', (_type, base, paths) => {
    expect(() => parseWorkerMessage(base)).not.toThrow();
    fc.assert(fc.property(withHostileField(base, paths), (m) => refusedOrStorable(() => parseWorkerMessage(m))), RUNS);
  });

  it.each(COORDINATOR_MESSAGES.map(([m, paths]) => [m['type'], m, paths] as const))('a %s with a hostile field is refused or storable', (_type, base, paths) => {
    expect(() => parseCoordinatorMessage(base)).not.toThrow();
    fc.assert(fc.property(withHostileField(base, paths), (m) => refusedOrStorable(() => parseCoordinatorMessage(m))), RUNS);
  });

  it('any JSON value at all is refused or storable, as either side', () => {
    fc.assert(
      fc.property(hostileJson, (v) => {
        refusedOrStorable(() => parseWorkerMessage(v));
        refusedOrStorable(() => parseCoordinatorMessage(v));
      }),
      RUNS,
    );
  });
});

const submit = { model: { sha256: 'a'.repeat(64) }, input: { inputs: { x: { dtype: 'float32', dims: [1], data: [1] } } }, requirements: { labels: ['gpu'] } };
const BODIES: [string, Parameters<typeof parseBody>[0], Record<string, unknown>, string[]][] = [
  ['a submit', SubmitJobRequest, submit, ['kind', 'input', 'input.inputs', 'requirements.labels', 'requirements.os', 'requirements.gpu.backend', 'requirements.gpu.fallback', 'requirements.gpu.minVramMiB', 'timeoutMs', 'queueTimeoutMs', 'priority', 'maxAttempts']],
  ['a batch submit', SubmitJobsRequest, { jobs: [submit] }, ['jobs', 'jobs.0.kind', 'jobs.0.input']],
  ['a token', CreateTokenRequest, { ttlSecs: 60, maxUses: 1, description: 'd' }, ['description', 'ttlSecs', 'maxUses']],
  ['an enrollment', EnrollRequest, { tokenId: 'abcdefgh', tokenSecret: 'A'.repeat(22), csrPem: 'x', proposedWorkerId: 'w-1', name: 'n' }, ['name', 'csrPem', 'proposedWorkerId', 'tokenId']],
  ['a policy override', AdminOverride, { paused: true, message: 'm', limits: { useGpu: false } }, ['message', 'settings', 'limits', 'limits.useGpu', 'limits.maxCores']],
  ['a model upload query', ModelUploadQuery, { name: 'm.onnx' }, ['name']],
  ['a control action', ControlAction, { action: 'snooze', minutes: 5 }, ['action', 'minutes', 'untilMs']],
  ['an enrollment form', EnrollForm, { coordinator: 'h:1', token: 't' }, ['coordinator', 'token', 'name']],
  ['a settings update', SettingsUpdate, { startAtLogin: true, policy: { preset: 'custom', useGpu: false, gpu: 'away' } }, ['coordinator', 'policy', 'startAtLogin', 'policy.useGpu', 'policy.gpu']],
  ['a chat completion', ChatCompletionRequest, { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }, ['model', 'messages.0.content', 'messages.0.role', 'stop', 'seed', 'max_tokens', 'temperature', 'n']],
  [
    'a chat completion with a JSON schema',
    ChatCompletionRequest,
    { model: 'm', messages: [{ role: 'user', content: 'hi' }], response_format: { type: 'json_schema', json_schema: { name: 'r', schema: { type: 'object', properties: { a: { type: 'string' } } } } } },
    ['response_format', 'response_format.json_schema.schema', 'response_format.json_schema.schema.properties.a', 'response_format.json_schema.schema.properties.a.type'],
  ],
  ['a completion', CompletionRequest, { model: 'm', prompt: 'p' }, ['model', 'prompt', 'max_tokens', 'top_p']],
  ['an embeddings request', EmbeddingRequest, { model: 'm', input: ['a', 'b'] }, ['model', 'input', 'input.0', 'encoding_format', 'dimensions']],
  ['an llm job input', LlmJobInput, { prompt: 'p', maxTokens: 4 }, ['prompt', 'maxTokens', 'messages', 'stop', 'seed', 'temperature']],
  ['a model rename', ModelRenameRequest, { name: 'm' }, ['name']],
  ['an API key', CreateApiKeyRequest, { scope: 'inference', name: 'n' }, ['scope', 'name']],
];

describe('API and control bodies', () => {
  it.each(BODIES)('%s with a hostile field is refused with GG_ERR_BAD_REQUEST or storable', (_name, schema, base, paths) => {
    fc.assert(fc.property(withHostileField(base, paths), (body) => refusedOrStorable(() => parseBody(schema, body))), RUNS);
  });
});

describe('the frame codec', () => {
  it('turns any bytes into frames or GG_ERR_FRAME_*, never another error', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 6 }), (chunks) => {
        const decoder = new FrameDecoder({ maxFrameBytes: 256 });
        try {
          for (const c of chunks) decoder.push(c);
        } catch (e) {
          expect(isGridError(e) && e.code.startsWith('GG_ERR_FRAME_')).toBe(true);
        }
      }),
      RUNS,
    );
  });
});

describe("an onnx job's payloads (checked at submit, and a worker's result)", () => {
  const x = { dtype: 'float32', dims: [1], data: [1] };
  it.each([
    ['input', { inputs: { x }, outputEncoding: 'b64' }, ['outputEncoding', 'inputs.x.dtype', 'inputs.x.b64']],
    ['output', { outputs: { y: x }, backend: 'webgpu' }, ['backend', 'outputs.y.dims']],
  ] as const)('an %s with a hostile field is refused, or accepted as job JSON', (which, base, paths) => {
    fc.assert(
      fc.property(withHostileField(base, paths), (value) =>
        refusedOrStorable(() => {
          const problem = checkJobPayload('onnx', which, value) ?? checkJson(value);
          if (problem !== null) throw new GridError('GG_ERR_BAD_REQUEST', problem);
          // Accepted: job JSON, which may hold NUL (as an escape), like any input or output.
          return { [which]: value };
        }),
      ),
      RUNS,
    );
  });
});

describe('the tensor codec', () => {
  const hostileTensor = fc.record({
    dtype: fc.constantFrom('float32', 'float16', 'int64', 'uint64', 'bool', 'string', 'int8'),
    dims: fc.array(fc.oneof(fc.nat(4), fc.constantFrom(2 ** 31, 2 ** 53, 0)), { maxLength: 4 }),
    data: fc.array(fc.oneof(hostileString, fc.double(), fc.boolean()), { maxLength: 6 }),
  });

  it('decodes any tensor the schema accepts into typed arrays, or refuses it with GG_ERR_INPUT_INVALID', () => {
    fc.assert(
      fc.property(hostileTensor, (t) => {
        const parsed = TensorJson.safeParse(t);
        if (!parsed.success) return;
        try {
          decodeTensor('x', parsed.data);
        } catch (e) {
          expect(isGridError(e, 'GG_ERR_INPUT_INVALID'), String(e)).toBe(true);
        }
      }),
      RUNS,
    );
  });
});

describe('the text rules', () => {
  it('cleanText makes any string acceptable as prose, and as a line', () => {
    fc.assert(
      fc.property(hostileString, (s) => {
        expect(prose(1e6).safeParse(cleanText(s)).success).toBe(true);
        expect(line(1e6).safeParse(cleanText(s, true)).success).toBe(true);
      }),
      RUNS,
    );
  });

  it('printable leaves no control, bidi or lone surrogate character to a terminal', () => {
    fc.assert(
      fc.property(hostileString, (s) => {
        expect(printable(s)).not.toMatch(/[\p{Cc}\p{Cs}\p{Bidi_Control}]/u);
      }),
      RUNS,
    );
  });

  it('checkJson answers for any JSON, however deep, without throwing', () => {
    fc.assert(
      fc.property(hostileJson, (v) => {
        const problem = checkJson(v);
        if (problem === null) expect(stringsIn(v).some(([, s]) => LONE_SURROGATE.test(s))).toBe(false);
      }),
      RUNS,
    );
  });
});
