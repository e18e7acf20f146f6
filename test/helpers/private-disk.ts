/**
 * A directory on a small disk of its own, which a test can fill to the last
 * byte without touching the machine's disks: a tmpfs mounted in a user and
 * mount namespace (no privileges needed where the kernel allows unprivileged
 * user namespaces, as Debian's and CI's do), kept alive by a holder process.
 * Processes started `via` it see the small disk at `dir`; the test fills and
 * frees it from outside, through the holder's /proc/PID/root.
 *
 *   const disk = await privateDisk(dir, 256);       // null where Linux namespaces are not available
 *   runCli(['coordinator', '--data', dir], {}, { via: disk.via });
 *   await disk.fill();  …  await disk.free();
 *   await disk.close();
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface PrivateDisk {
  /** Prefix for a command that must see the disk (runCli's `via`). */
  readonly via: readonly string[];
  /** Where a path on the disk is, for this process (outside the namespace). */
  outside(path: string): string;
  /** Writes until the disk has no byte left. */
  fill(): Promise<void>;
  free(): Promise<void>;
  close(): Promise<void>;
}

export async function privateDisk(dir: string, sizeMiB: number): Promise<PrivateDisk | { unavailable: string }> {
  if (process.platform !== 'linux') return { unavailable: 'a private disk needs Linux user and mount namespaces' };
  const holder = spawn('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c', `mount -t tmpfs -o size=${sizeMiB}m gogrid-test "$0" && echo ready && exec sleep infinity`, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let said = '';
  holder.stdout.on('data', (d: Buffer) => (said += d.toString()));
  holder.stderr.on('data', (d: Buffer) => (said += d.toString()));
  const ready = await Promise.race([
    new Promise<boolean>((resolve) => holder.stdout.on('data', () => said.includes('ready') && resolve(true))),
    once(holder, 'exit').then(() => false),
    once(holder, 'error').then(() => false),
  ]);
  if (!ready) return { unavailable: `unshare could not mount a tmpfs: ${said.trim() || 'unshare is missing'}` };
  const outside = (path: string) => join(`/proc/${holder.pid}/root`, path);
  const filler = outside(join(dir, '.disk-filler'));
  const chunk = Buffer.alloc(1024 * 1024);
  return {
    // --wd: entering a mount namespace moves to its root, where the CLI's loader (tsx) is not found.
    outside,
    via: ['nsenter', '--target', String(holder.pid), '--user', '--mount', `--wd=${process.cwd()}`, '--'],
    async fill() {
      for (;;) {
        try {
          await appendFile(filler, chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return;
          throw e;
        }
      }
    },
    free: () => rm(filler, { force: true }),
    async close() {
      if (holder.exitCode !== null || holder.signalCode !== null) return;
      holder.kill('SIGKILL');
      await once(holder, 'exit');
    },
  };
}
