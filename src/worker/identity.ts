/**
 * The worker's persistent identity in its data dir:
 *   worker.json  { workerId, name, coordinator: { host, port, caFingerprint } | null }
 *   worker.key   PEM private key (generated here, never leaves the machine)
 *   worker.crt   PEM client certificate from the coordinator
 *   ca.crt       PEM certificate of the coordinator CA
 *
 *   const { workerId } = await loadOrCreateWorkerConfig(dir); // stable from first start on
 *   const identity = await loadIdentity(dir);                  // null until enrolled
 *   if (!identity) await saveIdentity(dir, await enroll(token, workerId));
 *
 * The directory is created 0700; every file is written 0600, atomically
 * (see common/files.ts), and worker.json last: it names the coordinator only
 * once the key and certificates beside it are complete, so it marks a
 * finished enrollment.
 */
import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { GridError } from '../protocol/errors.js';
import { firstZodProblem } from '../protocol/zod-problems.js';
import { createFileAtomic, readJsonFile, readTextFile, writeFilesAtomic } from '../common/files.js';

export const WORKER_CONFIG_FILE = 'worker.json';
export const KEY_FILE = 'worker.key';
export const CERT_FILE = 'worker.crt';
export const CA_FILE = 'ca.crt';

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

const CoordinatorRef = z.object({
  host: z.string().min(1),
  port: z.int().min(1).max(65535),
  caFingerprint: z.string().min(1),
});

/** Loose: keys a newer version added are kept when this version rewrites the file. */
const WorkerConfigFile = z.looseObject({
  workerId: z.string().min(1).max(128),
  name: z.string().min(1).max(256),
  coordinator: CoordinatorRef.nullable(),
});

export type CoordinatorRef = z.infer<typeof CoordinatorRef>;

export interface WorkerConfig {
  workerId: string;
  name: string;
  coordinator: CoordinatorRef | null;
}

export interface WorkerIdentity {
  workerId: string;
  name: string;
  coordinator: CoordinatorRef;
  keyPem: string;
  certPem: string;
  caPem: string;
}

/**
 * Reads worker.json, creating it on first use with a new random id and the
 * host name; the id never changes afterwards, even when two processes start
 * at once on a fresh data dir.
 */
export async function loadOrCreateWorkerConfig(dataDir: string): Promise<WorkerConfig> {
  await ensureDataDir(dataDir);
  const existing = await readConfig(dataDir);
  if (existing) return pickConfig(existing);
  const fresh: WorkerConfig = { workerId: newWorkerId(), name: defaultName(), coordinator: null };
  const created = await createFileAtomic(dataDir, { name: WORKER_CONFIG_FILE, data: serialize(fresh), mode: FILE_MODE });
  // Another process created it first: use its id.
  return created ? fresh : loadOrCreateWorkerConfig(dataDir);
}

/**
 * The enrolled identity, or null when not enrolled: no worker.json, no
 * coordinator in it, or neither key nor certificate. A file that is corrupt,
 * missing from an otherwise enrolled set, or a certificate that does not
 * belong to the key is a GridError('GG_ERR_CONFIG_INVALID') naming the file.
 */
export async function loadIdentity(dataDir: string): Promise<WorkerIdentity | null> {
  const config = await readConfig(dataDir);
  if (!config?.coordinator) return null;
  const [keyPem, certPem, caPem] = await Promise.all([readText(dataDir, KEY_FILE), readText(dataDir, CERT_FILE), readText(dataDir, CA_FILE)]);
  if (keyPem === null && certPem === null) return null;
  const identity: WorkerIdentity = {
    ...pickConfig(config),
    coordinator: config.coordinator,
    keyPem: required(dataDir, KEY_FILE, keyPem),
    certPem: required(dataDir, CERT_FILE, certPem),
    caPem: required(dataDir, CA_FILE, caPem),
  };
  checkIdentity(identity, (name) => path.join(dataDir, name), '; enroll again with a token');
  await tightenMode(dataDir, KEY_FILE);
  await tightenMode(dataDir, CERT_FILE);
  return identity;
}

/** Stores a fresh enrollment; keys a newer version added to worker.json are kept. */
export async function saveIdentity(dataDir: string, identity: WorkerIdentity): Promise<void> {
  // Refuse a broken set before touching the files: the old identity stays usable.
  checkIdentity(identity, (name) => `the ${name} to save`, '');
  await ensureDataDir(dataDir);
  const existing = await readConfig(dataDir);
  const { workerId, name, coordinator } = identity;
  // Parsed like the file itself, so nothing is written that a later load would refuse.
  const config = parseConfig(`the ${WORKER_CONFIG_FILE} to save`, { ...existing, workerId, name, coordinator });
  await writeFilesAtomic(dataDir, [
    { name: CA_FILE, data: identity.caPem, mode: FILE_MODE },
    { name: KEY_FILE, data: identity.keyPem, mode: FILE_MODE },
    { name: CERT_FILE, data: identity.certPem, mode: FILE_MODE },
    { name: WORKER_CONFIG_FILE, data: serialize(config), mode: FILE_MODE },
  ]);
}

/** Replaces worker.crt after a renewal; a certificate for another key is refused and the old one kept. */
export async function saveCertificate(dataDir: string, certPem: string): Promise<void> {
  const keyPem = await readText(dataDir, KEY_FILE);
  if (keyPem === null) {
    throw new GridError('GG_ERR_NOT_ENROLLED', `cannot store a renewed certificate: ${path.join(dataDir, KEY_FILE)} is missing`);
  }
  const key = parsePrivateKey(path.join(dataDir, KEY_FILE), keyPem);
  const cert = parseCertificate('the renewed certificate', certPem);
  if (!cert.checkPrivateKey(key)) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `the renewed certificate does not match ${path.join(dataDir, KEY_FILE)}; kept the current ${CERT_FILE}`);
  }
  await writeFilesAtomic(dataDir, [{ name: CERT_FILE, data: certPem, mode: FILE_MODE }]);
}

// ---------------------------------------------------------------- helpers

function newWorkerId(): string {
  return `w-${randomBytes(8).toString('hex')}`;
}

function defaultName(): string {
  return os.hostname().slice(0, 256) || 'gogrid-worker';
}

async function ensureDataDir(dataDir: string): Promise<void> {
  // Only directories created here get the mode: an existing directory was
  // chosen by someone (GOGRID_DATA_DIR) and may be shared, like /tmp.
  await fs.mkdir(dataDir, { recursive: true, mode: DIR_MODE });
}

function readText(dataDir: string, name: string): Promise<string | null> {
  return readTextFile(path.join(dataDir, name));
}

function readConfig(dataDir: string): Promise<z.infer<typeof WorkerConfigFile> | null> {
  return readJsonFile(path.join(dataDir, WORKER_CONFIG_FILE), WorkerConfigFile);
}

function parseConfig(label: string, json: unknown): z.infer<typeof WorkerConfigFile> {
  const result = WorkerConfigFile.safeParse(json);
  if (!result.success) throw new GridError('GG_ERR_CONFIG_INVALID', `${label}: ${firstZodProblem(result.error)}`);
  return result.data;
}

function pickConfig(config: z.infer<typeof WorkerConfigFile>): WorkerConfig {
  return { workerId: config.workerId, name: config.name, coordinator: config.coordinator };
}

function serialize(value: object): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function required(dataDir: string, name: string, text: string | null): string {
  if (text === null) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `${path.join(dataDir, name)} is missing but ${WORKER_CONFIG_FILE} says this worker is enrolled; enroll again with a token`);
  }
  return text;
}

/** Parses all three PEMs and checks that the certificate belongs to the key; `label` names each part in errors. */
function checkIdentity(identity: WorkerIdentity, label: (name: string) => string, hint: string): void {
  const key = parsePrivateKey(label(KEY_FILE), identity.keyPem);
  const cert = parseCertificate(label(CERT_FILE), identity.certPem);
  parseCertificate(label(CA_FILE), identity.caPem);
  if (!cert.checkPrivateKey(key)) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `${label(CERT_FILE)} does not belong to ${label(KEY_FILE)}${hint}`);
  }
}

function parsePrivateKey(label: string, pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (error) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `${label} is not a PEM private key`, { cause: error });
  }
}

function parseCertificate(label: string, pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `${label} is not a PEM certificate`, { cause: error });
  }
}

/** A key restored from a backup or copied by hand may carry looser bits than it was written with. */
async function tightenMode(dataDir: string, name: string): Promise<void> {
  // Windows has no POSIX modes; its ACLs come from the per-user profile directory.
  if (process.platform === 'win32') return;
  const file = path.join(dataDir, name);
  const { mode } = await fs.stat(file);
  if (mode & 0o077) await fs.chmod(file, FILE_MODE);
}
