/**
 * `gogrid workers pause|resume|policy`: the administrator's override for
 * one worker or, with --all, every worker without one of its own. The
 * worker shows it to its owner as the administrator's ("Paused by the
 * administrator: …"), and its owner cannot lift it.
 *
 *   gogrid workers pause w-3f2a --message "Disk replacement until 18:00"
 *   gogrid workers policy --all --preset desktop --max-cores 4
 *   gogrid workers resume --all
 */
import { InvalidArgumentError, type Command } from 'commander';
import {
  AdminOverride,
  FleetPolicyResponse,
  GridError,
  WorkerPolicyResponse,
  type PresetName,
} from '../protocol/index.js';
import { AdminClient, type AdminTargetOptions } from './admin-client.js';
import { printJson } from './output.js';

type Flags = AdminTargetOptions & { all?: boolean; json?: boolean };

interface Target {
  label: string;
  current(): Promise<AdminOverride>;
  save(next: AdminOverride): Promise<unknown>;
}

function target(api: AdminClient, id: string | undefined, all: boolean | undefined): Target {
  if ((id === undefined) === !all) throw new GridError('GG_ERR_BAD_REQUEST', 'name one worker id, or --all for every worker');
  if (all) {
    return {
      label: 'every worker without an override of its own',
      current: async () => (await api.call('GET', '/v1/policy', FleetPolicyResponse)).fleet ?? {},
      save: (next) => (isEmpty(next) ? api.call('DELETE', '/v1/policy', FleetPolicyResponse) : api.call('PUT', '/v1/policy', FleetPolicyResponse, next)),
    };
  }
  const path = `/v1/workers/${encodeURIComponent(id!)}/policy`;
  return {
    label: `worker ${id}`,
    // A worker's first override of its own starts from the fleet's, so pausing one machine does not lift the fleet's limits on it.
    current: async () => {
      const p = await api.call('GET', path, WorkerPolicyResponse);
      return p.worker ?? p.fleet ?? {};
    },
    save: (next) => (isEmpty(next) ? api.call('DELETE', path, WorkerPolicyResponse) : api.call('PUT', path, WorkerPolicyResponse, next)),
  };
}

function isEmpty(o: AdminOverride): boolean {
  return Object.values(o).every((v) => v === undefined);
}

function describe(o: AdminOverride): string {
  const parts: string[] = [];
  if (o.paused) parts.push(o.message ? `paused (${o.message})` : 'paused');
  if (o.settings) parts.push(`preset ${o.settings.preset}`);
  if (o.limits?.maxCores != null) parts.push(`at most ${o.limits.maxCores} cores`);
  if (o.limits?.slots != null) parts.push(`at most ${o.limits.slots} jobs at once`);
  if (o.limits?.useGpu === false) parts.push('GPU off');
  return parts.length ? parts.join(', ') : "no override: the owner's settings apply";
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number ≥ 1');
  return n;
}

function withTarget(cmd: Command): Command {
  return cmd
    .argument('[id]', 'worker id (or --all)')
    .option('--all', 'every worker without an override of its own')
    .option('--data <dir>', "the coordinator's data dir on this machine (default: the per-OS coordinator data dir)")
    .option('--api <url>', 'a remote coordinator API (key in GOGRID_API_KEY)')
    .option('--ca <file>', "the remote coordinator's ca.crt (with --api)")
    .option('--json', 'print the override as JSON');
}

async function change(id: string | undefined, flags: Flags, edit: (o: AdminOverride) => AdminOverride): Promise<void> {
  const api = await AdminClient.resolve(flags);
  const t = target(api, id, flags.all);
  const next = AdminOverride.parse(edit(await t.current()));
  await t.save(next);
  if (flags.json) printJson(next);
  else process.stdout.write(`${t.label}: ${describe(next)}\n`);
}

export function registerPolicyCommands(workers: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  withTarget(workers.command('pause').description("pause a worker (or --all); its owner cannot resume it"))
    .option('--message <text>', 'shown to the owner after "Paused by the administrator"')
    .action((id: string | undefined, flags: Flags & { message?: string }) =>
      run(() => change(id, flags, (o) => ({ ...o, paused: true, message: flags.message }))),
    );

  withTarget(workers.command('resume').description("lift an administrator's pause")).action((id: string | undefined, flags: Flags) =>
    run(() => change(id, flags, ({ paused: _p, message: _m, ...rest }) => rest)),
  );

  withTarget(workers.command('policy').description("set the preset or limits a worker (or --all) must use; without options, show them"))
    .option('--preset <name>', 'desktop or dedicated: replaces the owner\'s settings')
    .option('--owner-settings', "let the owner's own settings apply again (drop --preset)")
    .option('--max-cores <n>', 'at most this many CPU cores per job', positiveInt)
    .option('--slots <n>', 'at most this many jobs at once', positiveInt)
    .option('--gpu <on|off>', 'off: jobs never use the GPU there, whatever the owner chose; on: drop that limit')
    .option('--no-limits', 'drop --max-cores, --slots and --gpu off')
    .action((id: string | undefined, flags: Flags & { preset?: string; ownerSettings?: boolean; maxCores?: number; slots?: number; gpu?: string; limits: boolean }) =>
      run(() =>
        change(id, flags, (o) => {
          const next: AdminOverride = { ...o };
          if (flags.preset !== undefined) {
            if (flags.preset !== 'desktop' && flags.preset !== 'dedicated') {
              throw new GridError('GG_ERR_BAD_REQUEST', `--preset: "${flags.preset}" is not desktop or dedicated`);
            }
            next.settings = { preset: flags.preset satisfies PresetName };
          }
          if (flags.ownerSettings) delete next.settings;
          if (!flags.limits) delete next.limits;
          if (flags.maxCores !== undefined || flags.slots !== undefined) {
            next.limits = { ...next.limits, ...(flags.maxCores ? { maxCores: flags.maxCores } : {}), ...(flags.slots ? { slots: flags.slots } : {}) };
          }
          if (flags.gpu !== undefined) {
            if (flags.gpu !== 'on' && flags.gpu !== 'off') throw new GridError('GG_ERR_BAD_REQUEST', `--gpu: "${flags.gpu}" is not on or off`);
            const others = { ...next.limits };
            delete others.useGpu;
            next.limits = flags.gpu === 'off' ? { ...others, useGpu: false } : others;
            if (Object.keys(next.limits).length === 0) delete next.limits;
          }
          return next;
        }),
      ),
    );
}
