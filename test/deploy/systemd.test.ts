/**
 * The coordinator's systemd unit as systemd itself reads it: `systemd-analyze
 * verify` with its paths pointed at this checkout (verify checks that
 * ExecStart's program exists), and the hardening the README promises. Skipped
 * with a reason where systemd-analyze is missing (macOS, Windows), except
 * under CI.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../helpers/grid.js';

const UNIT = join(import.meta.dirname, '../../deploy/systemd/gogrid-coordinator.service');
const REPO = join(import.meta.dirname, '../..');
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const inCi = Boolean(process.env['CI']);
if (!hasAnalyze && !inCi) console.warn('systemd unit check skipped: systemd-analyze is not installed (Linux with systemd has it); with CI set it fails instead');

afterAll(removeTempDirs);

/** systemd-analyze verify on `text`, with the unit's /opt paths pointed at this checkout; its exit status and everything it printed. */
async function verify(text: string): Promise<{ status: number | null; output: string }> {
  const file = join(await tempDir(), 'gogrid-coordinator.service');
  writeFileSync(file, text.replace('/usr/bin/node /opt/gogrid/app/bin/gogrid.js', `${process.execPath} ${join(REPO, 'bin/gogrid.js')}`));
  const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

describe('deploy/systemd/gogrid-coordinator.service', () => {
  const text = readFileSync(UNIT, 'utf8');

  it.runIf(hasAnalyze || inCi)('passes systemd-analyze verify without a word', async () => {
    expect(await verify(text)).toEqual({ status: 0, output: '' });
  });

  it.runIf(hasAnalyze || inCi)('would fail it with a misspelt key (the check can fail)', async () => {
    expect((await verify(text.replace('RestartSec=10', 'RestartSecs=10'))).output).toMatch(/Unknown key 'RestartSecs'/);
  });

  it("runs as the seed's service: restart always after 10 s, a user of its own, its state directory, the hardening", () => {
    const keys = new Map(
      text
        .split('\n')
        .filter((l) => /^[A-Za-z]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
    );
    expect(Object.fromEntries(['Restart', 'RestartSec', 'User', 'StateDirectory', 'NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'CapabilityBoundingSet'].map((k) => [k, keys.get(k)]))).toEqual({
      Restart: 'always',
      RestartSec: '10',
      User: 'gogrid',
      StateDirectory: 'gogrid',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      CapabilityBoundingSet: '',
    });
    expect(keys.get('ExecStart')).toContain('--data /var/lib/gogrid');
  });
});
