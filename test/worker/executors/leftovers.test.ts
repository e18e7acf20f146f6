/**
 * Job processes left behind by a worker that was killed outright
 * (src/worker/executors/leftovers.ts): real processes, stopped with SIGSTOP
 * as the polite worker stops them, and a real list file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { JobProcessLeftovers, startTimeOf } from '../../../src/worker/executors/leftovers.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir } from '../../helpers/grid.js';
import { isAlive } from './helpers.js';
import { TEST_EXECUTORS_ENV } from './test-executors.js';

const children: ChildProcess[] = [];

/** A process that would run forever, stopped as a suspended job is. */
async function stoppedProcess(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.push(child);
  await once(child, 'spawn');
  child.kill('SIGSTOP');
  return child;
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
afterAll(removeTempDirs);

describe('a job process whose worker is killed outright', () => {
  it('ends within a second or so, even while its runtime holds the thread', async () => {
    // A worker in a process of its own, running a job that never yields (as native code does).
    const script = [
      `import { makeJob, runJob } from './test/worker/executors/helpers.ts';`,
      `await runJob('test-spin', makeJob('test-spin', { cpuMs: 120000, hold: true }), { modelPath: '/m', threads: 1, timeoutMs: 300000, signal: new AbortController().signal, onProgress(_p, m) { if (m) console.log(m); } });`,
    ].join('\n');
    const worker = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, ...TEST_EXECUTORS_ENV },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(worker);
    const pid = await new Promise<number>((resolve) => {
      let out = '';
      worker.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /spinning, pid (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
    });
    worker.kill('SIGKILL');
    await once(worker, 'exit');
    // A grandchild: its exit cannot be awaited from here, only observed.
    await expect.poll(() => isAlive(pid), { timeout: 3000, interval: 20 }).toBe(false);
  });
});

describe.runIf(process.platform !== 'win32')('job processes left behind', () => {
  it('kills, at the next start, a stopped job process the last worker recorded', async () => {
    const file = join(await tempDir(), 'job-processes.json');
    const first = JobProcessLeftovers.open(file);
    const child = await stoppedProcess();
    first.add(child.pid);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual([{ pid: child.pid, startedAt: startTimeOf(child.pid!) }]);

    // The worker is gone without a word; the next one opens the same list.
    const exited = once(child, 'exit');
    JobProcessLeftovers.open(file);
    expect(await exited).toEqual([null, 'SIGKILL']);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual([]);
  });

  it('leaves alone a pid that now belongs to another process, and forgets processes that exited', async () => {
    const file = join(await tempDir(), 'job-processes.json');
    const stranger = await stoppedProcess();
    // Same pid, another start time: the system gave the recorded job's pid to someone else.
    await writeFile(file, JSON.stringify([{ pid: stranger.pid, startedAt: 'another start' }]));
    JobProcessLeftovers.open(file);
    expect(isAlive(stranger.pid!)).toBe(true);

    const registry = JobProcessLeftovers.open(file);
    const [done, next] = [await stoppedProcess(), await stoppedProcess()];
    registry.add(done.pid);
    registry.remove(done.pid);
    registry.add(next.pid);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual([{ pid: next.pid, startedAt: startTimeOf(next.pid!) }]);
  });

  it('is read by a worker starting on the data dir, before it runs anything', { timeout: 30_000 }, async () => {
    const c = await startTestCoordinator();
    const dataDir = await tempDir();
    const child = await stoppedProcess();
    await writeFile(join(dataDir, 'job-processes.json'), JSON.stringify([{ pid: child.pid, startedAt: startTimeOf(child.pid!) }]));
    const exited = once(child, 'exit');
    const w = await startTestWorker(c, { dataDir, token: await c.createToken() });
    try {
      expect(await exited).toEqual([null, 'SIGKILL']);
    } finally {
      await w.agent.stop();
      await c.stop();
    }
  });

  it('starts a fresh list when the file is unreadable', async () => {
    const file = join(await tempDir(), 'job-processes.json');
    await writeFile(file, '{ not json');
    JobProcessLeftovers.open(file);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual([]);
  });

  it('records nothing on Windows, where job processes are never stopped', async () => {
    const file = join(await tempDir(), 'job-processes.json');
    const registry = JobProcessLeftovers.open(file, undefined, 'win32');
    const child = await stoppedProcess();
    registry.add(child.pid);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual([]);
  });
});
