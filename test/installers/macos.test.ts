/**
 * The macOS entitlements file, read by Python's plistlib (the same XML plist
 * format codesign reads): well-formed, and only the exceptions we mean.
 */
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { removeTempDirs, tempDir } from '../helpers/grid.js';
import { readBuilderConfig, ROOT } from './builder.js';

afterAll(removeTempDirs);

const mac = z.looseObject({ entitlements: z.string(), entitlementsInherit: z.string() }).parse(readBuilderConfig().mac);

/** The plist as JSON, via plistlib; a parse failure is a non-zero exit with Python's message. */
function loadPlist(file: string): { status: number | null; stderr: string; value: unknown } {
  const script = 'import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], "rb"))))';
  const result = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
  if (result.error) throw result.error;
  return { status: result.status, stderr: result.stderr, value: result.status === 0 ? (JSON.parse(result.stdout) as unknown) : null };
}

describe('installers/macos/entitlements.mac.plist', () => {
  it('parses with plistlib and holds exactly the hardened-runtime exceptions the app needs', () => {
    const { status, stderr, value } = loadPlist(path.join(ROOT, mac.entitlements));
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(value).toEqual({
      'com.apple.security.cs.allow-jit': true,
      'com.apple.security.cs.disable-library-validation': true,
    });
  });

  it('is also what helper and job processes inherit', () => {
    expect(mac.entitlementsInherit).toBe(mac.entitlements);
  });

  it('a broken plist fails the same check (the check can fail)', async () => {
    const broken = path.join(await tempDir('gogrid-plist-'), 'broken.plist');
    await writeFile(broken, '<?xml version="1.0"?><plist version="1.0"><dict><key>a</key></plist>');
    expect(loadPlist(broken).status).not.toBe(0);
  });
});
