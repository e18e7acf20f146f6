/**
 * Preloaded into the coordinator child by the fleet benchmark (never in
 * production), over the IPC channel: answers stats, forces a full GC before a
 * memory reading, counts received UDP datagrams, records a CPU profile over
 * exactly the idle window and a sampling heap profile over a fleet's
 * connection, and sets Error.stackTraceLimit once the coordinator is up.
 *
 *   node --expose-gc --import tsx --import ./bench/fleet/coordinator-hook.ts src/cli/main.ts coordinator …
 *
 * `--cpu-prof` would profile the whole life of the process (start-up,
 * enrollment, the connection storm); the inspector session here sees only the
 * window. When the benchmark goes away the coordinator gets SIGTERM, its
 * normal way to shut down.
 */
import dgram from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import tls from 'node:tls';
import { countMessageIn, fullGcStats, ownStats, serveRpc } from '../lib/rpc.js';
import { HookCommand } from './commands.js';

// Counts the UDP datagrams the coordinator receives, so a window shows how
// many heartbeats (and pings) actually arrived: on a busy machine late
// simulator timers push some past the window. One counter per datagram.
const emit = dgram.Socket.prototype.emit;
dgram.Socket.prototype.emit = function (this: dgram.Socket, event: string | symbol, ...args: unknown[]): boolean {
  if (event === 'message') countMessageIn();
  return Reflect.apply(emit, this, [event, ...args]) as boolean;
};

// The same for the control protocol over TLS on TCP: one per chunk read, which for
// frames as small as heartbeats, one exchange at a time, is one per frame.
const tlsEmit = tls.TLSSocket.prototype.emit;
tls.TLSSocket.prototype.emit = function (this: tls.TLSSocket, event: string | symbol, ...args: unknown[]): boolean {
  if (event === 'data') countMessageIn();
  return Reflect.apply(tlsEmit, this, [event, ...args]) as boolean;
};

let cpu: Session | undefined;
let heap: Session | undefined;

function open(): Session {
  const s = new Session();
  s.connect();
  return s;
}

serveRpc(
  HookCommand,
  async (cmd) => {
    switch (cmd.type) {
      case 'stats':
        return ownStats();
      case 'gc':
        return fullGcStats();
      case 'stack-trace-limit':
        Error.stackTraceLimit = cmd.value;
        return {};
      case 'profile-start':
        cpu = open();
        await cpu.post('Profiler.enable');
        await cpu.post('Profiler.setSamplingInterval', { interval: cmd.intervalUs });
        await cpu.post('Profiler.start');
        return {};
      case 'profile-stop': {
        if (!cpu) throw new Error('no CPU profile running');
        const { profile } = await cpu.post('Profiler.stop');
        cpu.disconnect();
        cpu = undefined;
        await writeFile(cmd.path, JSON.stringify(profile));
        return {};
      }
      case 'heap-start':
        heap = open();
        await heap.post('HeapProfiler.enable');
        await heap.post('HeapProfiler.startSampling', { samplingInterval: cmd.intervalBytes });
        return {};
      case 'heap-stop': {
        if (!heap) throw new Error('no heap profile running');
        // Objects collected by now drop out of the sampling profile: what remains is what the fleet keeps alive.
        fullGcStats();
        const { profile } = await heap.post('HeapProfiler.getSamplingProfile');
        await heap.post('HeapProfiler.stopSampling');
        heap.disconnect();
        heap = undefined;
        await writeFile(cmd.path, JSON.stringify(profile));
        return {};
      }
    }
  },
  () => process.kill(process.pid, 'SIGTERM'),
);
