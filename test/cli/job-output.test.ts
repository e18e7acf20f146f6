/**
 * `gogrid job ID --output FILE [--raw [TENSOR]]` and compact `--json`: a real
 * job's output written where a script wants it, as JSON or one tensor's
 * bytes, through the CLI process; and the new flags' bad input, fuzzed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { load as loadYaml } from 'js-yaml';
import { parseShell } from '../../src/cli/completion.js';
import { writeOutput } from '../../src/cli/job-commands.js';
import { JobInfo } from '../../src/protocol/api.js';
import { GridError, printable } from '../../src/protocol/index.js';
import { hostileString } from '../helpers/hostile.js';
import { mlpAnswer, writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, runCli, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { within } from '../helpers/within.js';

let c: TestCoordinator;
let worker: Awaited<ReturnType<typeof startTestWorker>>;
let done: JobInfo;
let failed: JobInfo;
let dir: string;

beforeAll(async () => {
  c = await startTestCoordinator();
  worker = await startTestWorker(c, { token: await c.createToken() });
  await within(20_000, 'the worker online', worker.agent.waitFor('online'));
  dir = await tempDir();
  const sha256 = await c.addModel(writeOnnxFixtures(dir).mlp);
  const submit = async (x: Record<string, unknown>) => JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256 }, input: { inputs: x }, maxAttempts: 1 }));
  done = await c.finished((await submit({ x: { dtype: 'float32', dims: [2, 4], data: [1, 2, 3, 4, -1, 0, 0.5, 2] } })).id);
  failed = await c.finished((await submit({ z: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } })).id);
}, 60_000);
afterAll(async () => {
  await worker.agent.stop();
  await worker.closed;
  await c.stop();
  await removeTempDirs();
});

async function gogrid(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = runCli([...args, '--data', c.dataDir]);
  const code = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

const expected = [...mlpAnswer([1, 2, 3, 4]), ...mlpAnswer([-1, 0, 0.5, 2])];

describe('gogrid job --output', () => {
  it('writes the output as compact JSON, and says where on stderr', async () => {
    expect(done.state).toBe('succeeded');
    const file = join(dir, 'y.json');
    const r = await gogrid('job', done.id, '--output', file);
    expect(r).toMatchObject({ code: 0, stdout: '' });
    expect(r.stderr).toMatch(/^gogrid: wrote .*y\.json \(\d+ bytes\)\n$/);
    const text = await readFile(file, 'utf8');
    expect(text.split('\n')).toHaveLength(2);
    expect(JSON.parse(text)).toEqual(done.output);
  });

  it("writes one tensor's raw float32 bytes, named or the only one, to a file or stdout", async () => {
    const file = join(dir, 'y.f32');
    expect((await gogrid('job', done.id, '--output', file, '--raw', 'y')).code).toBe(0);
    const bytes = await readFile(file);
    expect(bytes.byteLength).toBe(6 * 4);
    const values = [...new Float32Array(bytes.buffer, bytes.byteOffset, 6)];
    values.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
    const piped = runCli(['job', done.id, '--output', '-', '--raw', '--data', c.dataDir], {}, { pipeInto: 'od -An -tx1 | tr -d " \\n"' });
    expect(await piped.exited).toBe(0);
    expect(piped.stdout()).toBe(bytes.toString('hex'));
  });

  it.each([
    [['--raw', 'y'], 'gogrid: GG_ERR_BAD_REQUEST: --raw goes with --output FILE: where the bytes go\n'],
    [['--output', '/tmp/x', '--raw', 'nope'], 'gogrid: GG_ERR_BAD_REQUEST: --raw: no output tensor "nope"; there are y\n'],
    [['--output', '/nonexistent-dir/y.json'], 'gogrid: GG_ERR_BAD_REQUEST: --output: cannot write /nonexistent-dir/y.json: ENOENT\n'],
  ])('refuses %j in one line', async (args, message) => {
    expect(await gogrid('job', done.id, ...args)).toMatchObject({ code: 1, stderr: message });
  });

  it('refuses a job that has no output, saying its state', async () => {
    expect(failed.state).toBe('failed');
    expect(await gogrid('job', failed.id, '--output', join(dir, 'f.json'))).toMatchObject({ code: 1, stderr: `gogrid: GG_ERR_BAD_REQUEST: job ${failed.id} is failed: it has no output to write\n` });
  });
});

describe('--json', () => {
  it('is one line unless --pretty', async () => {
    const compact = await gogrid('job', done.id, '--json');
    expect(compact.stdout.trimEnd().split('\n')).toHaveLength(1);
    const pretty = await gogrid('job', done.id, '--json', '--pretty');
    expect(pretty.stdout.split('\n').length).toBeGreaterThan(10);
    expect(JSON.parse(pretty.stdout)).toEqual(JSON.parse(compact.stdout));
  });
});

describe('listings a person can read', () => {
  it('jobs: priority, when submitted ("… ago"), how long each waited and ran', async () => {
    const r = await gogrid('jobs');
    expect(r.code).toBe(0);
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['ID', 'STATE', 'KIND', 'PRIORITY', 'ATTEMPT', 'WORKER', 'SUBMITTED', 'WAITED', 'RAN', 'NOTE']);
    const row = rows.find((l) => l.startsWith(done.id))!;
    expect(row).toMatch(/ succeeded +onnx +0 +1\/1 +w-\S+ +(now|\d+ sec\. ago) +\d+ (ms|s) +\d+ (ms|s)/);
  });

  it('-o yaml is the --json objects; --wide (or -o wide) adds columns; two formats at once are refused', async () => {
    const [json, yaml, wide, o, both] = await Promise.all([
      gogrid('jobs', '--json'),
      gogrid('jobs', '-o', 'yaml'),
      gogrid('jobs', '--wide'),
      gogrid('jobs', '-o', 'wide'),
      gogrid('jobs', '--json', '-o', 'yaml'),
    ]);
    expect(loadYaml(yaml.stdout)).toEqual(JSON.parse(json.stdout));
    expect(wide.stdout.split('\n')[0]!.split(/\s{2,}/)).toEqual(['ID', 'STATE', 'KIND', 'MODEL', 'PRIORITY', 'ATTEMPT', 'WORKER', 'LABELS', 'GPU', 'SUBMITTED', 'WAITED', 'RAN', 'QUEUE DEADLINE', 'NOTE']);
    expect(o.stdout.split('\n')[0]).toBe(wide.stdout.split('\n')[0]);
    expect([both.code, both.stderr]).toEqual([1, 'gogrid: GG_ERR_BAD_REQUEST: json and yaml output were both asked for; choose one\n']);
    const bad = await gogrid('jobs', '-o', 'xml');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('"xml" is not json, yaml or wide');
  });

  it('job: when it was submitted, its priority, how long it waited and ran', async () => {
    const r = await gogrid('job', done.id);
    expect(r.stdout).toMatch(new RegExp(`  submitted: ${done.submittedAt} \\((now|\\d+ sec\\. ago)\\), priority 0; waited \\d+ (ms|s), ran \\d+ (ms|s)\\n`));
  });
});

describe('what a user types into the new flags, fuzzed (in process)', () => {
  // Refused in one line, GG_ERR_BAD_REQUEST, nothing a terminal would obey in what is printed, nothing written.
  const refusedCleanly = async (attempt: Promise<unknown>) => {
    const e: unknown = await attempt.then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(GridError);
    expect((e as GridError).code).toBe('GG_ERR_BAD_REQUEST');
    // eslint-disable-next-line no-control-regex
    expect(printable((e as GridError).message)).not.toMatch(/[\u0000-\u001f\u007f\u202a-\u202e\u2066-\u2069\n]/);
  };

  it('--raw TENSOR: any name but the output\'s own is refused', async () => {
    await fc.assert(fc.asyncProperty(hostileString.filter((s) => s !== 'y'), async (name) => refusedCleanly(writeOutput(done, '/nonexistent-gogrid/out', name))), { numRuns: 200 });
  });

  it('--output FILE: a path that cannot be written is refused (NUL, lone surrogates, control characters, 4 KiB names)', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(hostileString, fc.string({ minLength: 4096, maxLength: 5000 })), async (name) => refusedCleanly(writeOutput(done, `/nonexistent-gogrid/${name}`, undefined))), { numRuns: 200 });
  });

  it('completion <shell>: anything but bash, zsh or fish is refused', () => {
    fc.assert(
      fc.property(hostileString.filter((s) => !['bash', 'zsh', 'fish'].includes(s)), (shell) => {
        expect(() => parseShell(shell)).toThrow(GridError);
      }),
      { numRuns: 500 },
    );
  });
});
