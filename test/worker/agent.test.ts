/**
 * The agent's reconnect decision, against a scripted coordinator in memory
 * (connectQuic replaced): only an error the registry calls retryable leads to
 * another connection; a bug, or an error code this version does not know,
 * stops the agent with the error instead of looping.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PROTOCOL_VERSION, type HardwareReport } from '../../src/protocol/index.js';
import { WorkerAgent, type AgentOptions, type AgentState } from '../../src/worker/agent.js';

/** What the coordinator answers to each connection's hello, in dialing order; past the script, nothing (the stream stays open). */
const script = vi.hoisted(() => ({ answers: [] as unknown[][], dialed: 0 }));

vi.mock('../../src/transport/quic.js', () => ({
  connectQuic: async () => {
    const answer = script.answers[script.dialed++];
    let hangUp = () => {};
    const hungUp = new Promise<void>((resolve) => (hangUp = resolve));
    return {
      channel: {
        send: async () => {},
        async *frames() {
          if (answer === undefined) return await hungUp;
          yield* answer;
        },
        close: async () => hangUp(),
      },
      close: async () => hangUp(),
      closed: hungUp,
    };
  },
}));

const welcome = { type: 'welcome', protocolVersion: PROTOCOL_VERSION, workerId: 'w-1', heartbeatIntervalSecs: 60, heartbeatTimeoutSecs: 90, adminPolicy: {} };
const error = (code: string) => ({ type: 'error', code, message: 'no', fatal: true });

const agents: WorkerAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  script.answers = [];
  script.dialed = 0;
});

function start(answers: unknown[][], opts: Partial<AgentOptions> = {}): { agent: WorkerAgent; states: AgentState[] } {
  script.answers = answers;
  const agent = new WorkerAgent({
    dataDir: '/nonexistent',
    identity: { workerId: 'w-1', name: 'test', coordinator: { host: '127.0.0.1', port: 1, caFingerprint: 'x' }, keyPem: '', certPem: '', caPem: '' },
    appVersion: '0.0.0-test',
    logger: pino({ level: 'silent' }),
    probes: { hardware: async () => ({}) as HardwareReport, load: async () => ({ cpu: null, freeMemoryBytes: null }) },
    backoff: { baseMs: 1, capMs: 5 },
    ...opts,
  });
  const states: AgentState[] = [];
  agent.on('state', (e) => states.push(e.state));
  agents.push(agent);
  agent.start();
  return { agent, states };
}

describe('the agent after an error', () => {
  it('reconnects after an error the registry calls retryable', async () => {
    const { agent, states } = start([[error('GG_ERR_SHUTTING_DOWN')], [welcome]]);
    await agent.waitFor('online');
    expect(states).toEqual(['connecting', 'waiting', 'connecting', 'online']);
    expect(script.dialed).toBe(2);
  });

  it.each(['GG_ERR_WORKER_REVOKED', 'GG_ERR_SENT_BY_A_NEWER_COORDINATOR', 'constructor'])('stops for good on %s, naming it', async (code) => {
    const { agent, states } = start([[error(code)], [welcome]]);
    const failure = await agent.done.catch((e: unknown) => e);
    expect(failure).toMatchObject({ message: expect.stringContaining(code === 'GG_ERR_WORKER_REVOKED' ? 'coordinator: no' : code) });
    expect(states).toEqual(['connecting', 'failed']);
    expect(script.dialed).toBe(1);
  });

  it('stops on a bug with the bug, instead of reconnecting forever', async () => {
    const bug = new TypeError('status is not a function');
    const { agent, states } = start([[welcome], [welcome]], {
      status: () => {
        throw bug;
      },
    });
    await expect(agent.done).rejects.toBe(bug);
    expect(states).toEqual(['connecting', 'failed']);
    expect(agent.state.error).toMatchObject({ code: 'GG_ERR_INTERNAL', message: 'internal error: status is not a function' });
    expect(script.dialed).toBe(1);
  });

  it('says the coordinator may have moved once it has dialled in vain for long enough', async () => {
    const details: (string | null)[] = [];
    const { agent } = start([[error('GG_ERR_SHUTTING_DOWN')], [error('GG_ERR_SHUTTING_DOWN')], [welcome]], { movedHintMs: 0 });
    agent.on('state', (e) => details.push(e.detail));
    await agent.waitFor('online');
    const hint = /^reconnecting in \d+ s \(no answer from 127\.0\.0\.1:1 for 0 min; if the coordinator moved, give its new address \(--coordinator HOST:PORT, or Coordinator in the status window\)\)$/;
    expect(details.filter((d) => d?.startsWith('reconnecting'))).toEqual([expect.stringMatching(hint), expect.stringMatching(hint)]);
  });

  it('does not say so after a short outage', async () => {
    const details: (string | null)[] = [];
    const { agent } = start([[error('GG_ERR_SHUTTING_DOWN')], [welcome]]);
    agent.on('state', (e) => details.push(e.detail));
    await agent.waitFor('online');
    expect(details.filter((d) => d?.startsWith('reconnecting'))).toEqual([expect.stringMatching(/^reconnecting in \d+ s$/)]);
  });
});
