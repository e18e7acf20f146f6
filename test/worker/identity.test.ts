// @peculiar/x509 resolves its services through tsyringe, which needs this polyfill loaded first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isGridError, type ErrorCode } from '../../src/protocol/errors.js';
import {
  CA_FILE,
  CERT_FILE,
  KEY_FILE,
  WORKER_CONFIG_FILE,
  loadIdentity,
  loadOrCreateWorkerConfig,
  saveCertificate,
  saveIdentity,
  type WorkerIdentity,
} from '../../src/worker/identity.js';

const posix = process.platform !== 'win32';
const EC: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const COORDINATOR = { host: 'grid.example.com', port: 8443, caFingerprint: 'ab'.repeat(32) };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'gogrid-identity-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- fixtures: a CA and client certificates

async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
}

async function pemOfPrivateKey(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

const ca = await (async () => {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=GoGrid test CA',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: SIGN,
    keys,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return { keys, pem: cert.toString('pem') };
})();

async function clientCert(workerId: string, publicKey: webcrypto.CryptoKey, serialNumber: string): Promise<string> {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: `CN=${workerId}`,
    issuer: 'CN=GoGrid test CA',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    signingAlgorithm: SIGN,
    publicKey,
    signingKey: ca.keys.privateKey,
  });
  return cert.toString('pem');
}

async function newIdentity(workerId: string, name = 'box'): Promise<WorkerIdentity & { keys: webcrypto.CryptoKeyPair }> {
  const keys = await newKeys();
  return {
    workerId,
    name,
    coordinator: COORDINATOR,
    keyPem: await pemOfPrivateKey(keys.privateKey),
    certPem: await clientCert(workerId, keys.publicKey, '02'),
    caPem: ca.pem,
    keys,
  };
}

function withoutKeys({ keys: _keys, ...identity }: WorkerIdentity & { keys: webcrypto.CryptoKeyPair }): WorkerIdentity {
  return identity;
}

async function modeOf(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}

async function gridError(promise: Promise<unknown>, code: ErrorCode): Promise<string> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isGridError(error, code), `expected GridError ${code}, got ${String(error)}`).toBe(true);
  return (error as Error).message;
}

// ---------------------------------------------------------------- worker.json

describe('loadOrCreateWorkerConfig', () => {
  it('creates the data dir 0700 and worker.json 0600 with a new id and the host name', async () => {
    const dataDir = path.join(dir, 'nested', 'GoGrid Worker');
    const config = await loadOrCreateWorkerConfig(dataDir);
    expect(config).toEqual({ workerId: expect.stringMatching(/^w-[0-9a-f]{16}$/), name: os.hostname(), coordinator: null });
    expect(JSON.parse(await readFile(path.join(dataDir, WORKER_CONFIG_FILE), 'utf8'))).toEqual(config);
    if (posix) {
      expect(await modeOf(dataDir)).toBe(0o700);
      expect(await modeOf(path.join(dataDir, WORKER_CONFIG_FILE))).toBe(0o600);
    }
  });

  it('keeps the id across loads, and two data dirs get different ids', async () => {
    const first = await loadOrCreateWorkerConfig(dir);
    expect(await loadOrCreateWorkerConfig(dir)).toEqual(first);
    expect(await loadOrCreateWorkerConfig(dir)).toEqual(first);
    const other = await loadOrCreateWorkerConfig(path.join(dir, 'other'));
    expect(other.workerId).not.toBe(first.workerId);
  });

  it('gives every concurrent first start the same id', async () => {
    const configs = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateWorkerConfig(dir)));
    expect(new Set(configs.map((c) => c.workerId)).size).toBe(1);
    expect((await readdir(dir)).sort()).toEqual([WORKER_CONFIG_FILE]);
  });

  it('reads a worker.json from a newer version with extra keys', async () => {
    const file = path.join(dir, WORKER_CONFIG_FILE);
    await writeFile(file, JSON.stringify({ workerId: 'w-1', name: 'n', coordinator: null, labels: ['gpu'] }));
    expect(await loadOrCreateWorkerConfig(dir)).toEqual({ workerId: 'w-1', name: 'n', coordinator: null });
  });

  it.each([
    ['not JSON', '{"workerId": "w-1", ', 'is not valid JSON'],
    ['empty (half-written by another tool)', '', 'is not valid JSON'],
    ['a wrong type', '{"workerId": 42, "name": "n", "coordinator": null}', 'workerId'],
    ['a missing key', '{"workerId": "w-1", "name": "n"}', 'coordinator'],
    ['a bad port', '{"workerId": "w-1", "name": "n", "coordinator": {"host": "h", "port": 70000, "caFingerprint": "f"}}', 'coordinator.port'],
    ['an array', '[]', '(root)'],
  ])('refuses a worker.json that is %s, naming the file, and leaves it alone', async (_what, text, detail) => {
    const file = path.join(dir, WORKER_CONFIG_FILE);
    await writeFile(file, text);
    const message = await gridError(loadOrCreateWorkerConfig(dir), 'GG_ERR_CONFIG_INVALID');
    expect(message).toContain(file);
    expect(message).toContain(detail);
    expect(await readFile(file, 'utf8')).toBe(text);
    await gridError(loadIdentity(dir), 'GG_ERR_CONFIG_INVALID');
  });
});

// ---------------------------------------------------------------- key, certificates

describe('loadIdentity / saveIdentity', () => {
  it('is null before enrollment: empty dir, or worker.json without a coordinator', async () => {
    expect(await loadIdentity(dir)).toBeNull();
    await loadOrCreateWorkerConfig(dir);
    expect(await loadIdentity(dir)).toBeNull();
  });

  it('round-trips an identity, key and certificates 0600, and keeps worker.json extras', async () => {
    const { workerId } = await loadOrCreateWorkerConfig(dir);
    const configFile = path.join(dir, WORKER_CONFIG_FILE);
    const onDisk = JSON.parse(await readFile(configFile, 'utf8')) as object;
    await writeFile(configFile, JSON.stringify({ ...onDisk, futureSetting: { a: 1 } }));

    const identity = withoutKeys(await newIdentity(workerId));
    await saveIdentity(dir, identity);

    expect(await loadIdentity(dir)).toEqual(identity);
    expect(await loadOrCreateWorkerConfig(dir)).toEqual({ workerId, name: 'box', coordinator: COORDINATOR });
    expect(JSON.parse(await readFile(configFile, 'utf8'))).toMatchObject({ futureSetting: { a: 1 } });
    expect((await readdir(dir)).sort()).toEqual([CA_FILE, WORKER_CONFIG_FILE, CERT_FILE, KEY_FILE].sort());
    if (posix) {
      for (const name of [KEY_FILE, CERT_FILE, CA_FILE, WORKER_CONFIG_FILE]) expect(await modeOf(path.join(dir, name))).toBe(0o600);
    }
  });

  it.skipIf(!posix)('writes key and certificate 0600 even over files that had looser bits', async () => {
    for (const name of [KEY_FILE, CERT_FILE]) {
      await writeFile(path.join(dir, name), 'old');
      await chmod(path.join(dir, name), 0o644);
    }
    await saveIdentity(dir, withoutKeys(await newIdentity('w-1')));
    expect(await modeOf(path.join(dir, KEY_FILE))).toBe(0o600);
    expect(await modeOf(path.join(dir, CERT_FILE))).toBe(0o600);
  });

  it.skipIf(!posix)('tightens a key restored with looser bits when loading', async () => {
    await saveIdentity(dir, withoutKeys(await newIdentity('w-1')));
    await chmod(path.join(dir, KEY_FILE), 0o644);
    expect(await loadIdentity(dir)).not.toBeNull();
    expect(await modeOf(path.join(dir, KEY_FILE))).toBe(0o600);
  });

  it('rewrites by replacing files (rename), never in place, and leaves no temp files', async () => {
    await saveIdentity(dir, withoutKeys(await newIdentity('w-1')));
    const before = await stat(path.join(dir, KEY_FILE));
    const next = withoutKeys(await newIdentity('w-1'));
    await saveIdentity(dir, next);
    const after = await stat(path.join(dir, KEY_FILE));
    // A new inode: a reader that opened the old file keeps reading whole old content.
    expect(after.ino).not.toBe(before.ino);
    expect(await readFile(path.join(dir, KEY_FILE), 'utf8')).toBe(next.keyPem);
    expect((await readdir(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('ignores a temp file left behind by a crash mid-write', async () => {
    const identity = withoutKeys(await newIdentity('w-1'));
    await saveIdentity(dir, identity);
    await writeFile(path.join(dir, `.${KEY_FILE}.0123456789ab.tmp`), identity.keyPem.slice(0, 40));
    expect(await loadIdentity(dir)).toEqual(identity);
  });

  it('refuses to save a certificate that does not belong to the key, keeping the old identity', async () => {
    const old = withoutKeys(await newIdentity('w-1'));
    await saveIdentity(dir, old);
    const other = await newIdentity('w-1');
    const message = await gridError(saveIdentity(dir, { ...old, certPem: other.certPem }), 'GG_ERR_CONFIG_INVALID');
    expect(message).toContain(`the ${CERT_FILE} to save does not belong to the ${KEY_FILE} to save`);
    expect(await loadIdentity(dir)).toEqual(old);
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ workerId: '' }, 'workerId'],
    [{ coordinator: { ...COORDINATOR, port: 0 } }, 'coordinator.port'],
    [{ coordinator: { ...COORDINATOR, host: '' } }, 'coordinator.host'],
  ])('refuses to save %j, keeping the old identity', async (change, where) => {
    const old = withoutKeys(await newIdentity('w-1'));
    await saveIdentity(dir, old);
    const message = await gridError(saveIdentity(dir, { ...old, ...change }), 'GG_ERR_CONFIG_INVALID');
    expect(message).toContain(`the ${WORKER_CONFIG_FILE} to save: ${where}:`);
    expect(await loadIdentity(dir)).toEqual(old);
  });

  it('is null when key and certificate were both removed', async () => {
    await saveIdentity(dir, withoutKeys(await newIdentity('w-1')));
    await rm(path.join(dir, KEY_FILE));
    await rm(path.join(dir, CERT_FILE));
    expect(await loadIdentity(dir)).toBeNull();
  });

  it.each([
    [KEY_FILE, null, 'is missing'],
    [CERT_FILE, null, 'is missing'],
    [CA_FILE, null, 'is missing'],
    [KEY_FILE, '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n', 'is not a PEM private key'],
    [CERT_FILE, '', 'is not a PEM certificate'],
    [CA_FILE, 'garbage', 'is not a PEM certificate'],
  ])('reports %s when it is %j, naming the file', async (name, content, detail) => {
    await saveIdentity(dir, withoutKeys(await newIdentity('w-1')));
    const file = path.join(dir, name);
    if (content === null) await rm(file);
    else await writeFile(file, content);
    const message = await gridError(loadIdentity(dir), 'GG_ERR_CONFIG_INVALID');
    expect(message).toContain(`${file} ${detail}`);
  });

  it('reports a certificate that belongs to another key (a save interrupted between renames)', async () => {
    await saveIdentity(dir, withoutKeys(await newIdentity('w-1')));
    await writeFile(path.join(dir, CERT_FILE), (await newIdentity('w-1')).certPem);
    const message = await gridError(loadIdentity(dir), 'GG_ERR_CONFIG_INVALID');
    expect(message).toContain(`${path.join(dir, CERT_FILE)} does not belong to ${path.join(dir, KEY_FILE)}`);
  });

  it.skipIf(!posix || process.getuid?.() === 0)('names a file it may not read', async () => {
    await saveIdentity(dir, withoutKeys(await newIdentity('w-1')));
    await chmod(path.join(dir, KEY_FILE), 0o000);
    expect(await gridError(loadIdentity(dir), 'GG_ERR_CONFIG_INVALID')).toContain(`cannot read ${path.join(dir, KEY_FILE)}`);
  });
});

describe('saveCertificate', () => {
  it('stores a renewed certificate for the same key', async () => {
    const identity = await newIdentity('w-1');
    await saveIdentity(dir, withoutKeys(identity));
    const renewed = await clientCert('w-1', identity.keys.publicKey, '03');
    await saveCertificate(dir, renewed);
    expect((await loadIdentity(dir))?.certPem).toBe(renewed);
    if (posix) expect(await modeOf(path.join(dir, CERT_FILE))).toBe(0o600);
  });

  it('refuses a certificate for another key and keeps the current one', async () => {
    const identity = withoutKeys(await newIdentity('w-1'));
    await saveIdentity(dir, identity);
    const message = await gridError(saveCertificate(dir, (await newIdentity('w-1')).certPem), 'GG_ERR_CONFIG_INVALID');
    expect(message).toContain('does not match');
    expect(await loadIdentity(dir)).toEqual(identity);
  });

  it('refuses garbage, and needs a key', async () => {
    await saveIdentity(dir, withoutKeys(await newIdentity('w-1')));
    expect(await gridError(saveCertificate(dir, 'not a cert'), 'GG_ERR_CONFIG_INVALID')).toContain('the renewed certificate is not a PEM certificate');
    const empty = path.join(dir, 'empty');
    expect(await gridError(saveCertificate(empty, ca.pem), 'GG_ERR_NOT_ENROLLED')).toContain(path.join(empty, KEY_FILE));
  });
});
