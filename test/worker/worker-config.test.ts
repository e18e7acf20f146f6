/** The worker side's precedence rules (worker-config.ts), as a table. */
import { describe, expect, it } from 'vitest';
import { HostSettings } from '../../src/worker/host-settings.js';
import { compilePolicy } from '../../src/worker/policy/index.js';
import { dialAddress, jobLimits, typedAddress, WORKER_DEFAULTS } from '../../src/worker/worker-config.js';

const limits = (flags: { slots?: number; threads?: number } | undefined, saved: unknown) => {
  const settings = HostSettings.parse(saved);
  return jobLimits(flags, settings, compilePolicy(settings.policy ?? { preset: 'dedicated' }, settings.adminPolicy));
};

describe('jobLimits', () => {
  it.each([
    ['defaults', undefined, {}, { slots: WORKER_DEFAULTS.slots, threads: WORKER_DEFAULTS.threads }],
    ['--slots stays over a preset', { slots: 4, threads: 8 }, {}, { slots: 4, threads: 8 }],
    ["the owner's slots under --slots", { slots: 4, threads: 8 }, { policy: { preset: 'dedicated', slots: 2 } }, { slots: 2, threads: 8 }],
    ["the owner's slots never above --slots", { slots: 2, threads: 8 }, { policy: { preset: 'dedicated', slots: 3 } }, { slots: 2, threads: 8 }],
    ["the administrator's settings over the owner's", { slots: 4, threads: 8 }, { policy: { preset: 'dedicated', slots: 1 }, adminPolicy: { settings: { preset: 'dedicated', slots: 3 } } }, { slots: 3, threads: 8 }],
    ["the administrator's ceiling", { slots: 4, threads: 8 }, { adminPolicy: { limits: { slots: 1, maxCores: 2 } } }, { slots: 1, threads: 2 }],
  ] as const)('%s', (_name, flags, saved, expected) => {
    expect(limits(flags, saved)).toEqual(expected);
  });
});

describe('the coordinator address', () => {
  const enrolled = { host: 'old.example', port: 8443 };
  it('takes the form over settings.json over --coordinator', () => {
    expect(typedAddress({ form: 'a:1', saved: 'b:2', flag: 'c:3' })).toBe('a:1');
    expect(typedAddress({ saved: 'b:2', flag: 'c:3' })).toBe('b:2');
    expect(typedAddress({ flag: 'c:3' })).toBe('c:3');
    expect(typedAddress({})).toBeUndefined();
  });

  it('dials a typed address over the enrolled one, and a provisioning file only to enroll', () => {
    expect(dialAddress({ typed: { host: 'new.example', port: 9000 }, enrolled })).toEqual({ host: 'new.example', port: 9000 });
    expect(dialAddress({ typed: null, enrolled, provisioned: 'prov.example:7000' })).toEqual(enrolled);
    expect(dialAddress({ typed: null, provisioned: 'prov.example:7000' })).toEqual({ host: 'prov.example', port: 7000 });
    expect(dialAddress({ typed: null })).toBeNull();
  });
});
