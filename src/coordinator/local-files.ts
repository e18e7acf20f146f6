/**
 * What a running coordinator leaves in its data dir for admin commands on
 * the same machine (as `kubeadm token create` reads its control plane's
 * files): where the API listens, and the admin key.
 *
 *   const info = await readApiInfo(dataDir); // null when no coordinator ever ran there
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { GridError } from '../protocol/index.js';

export const ApiInfo = z.object({
  apiUrl: z.string(),
  port: z.number().int(),
  caFingerprint: z.string(),
  pid: z.number().int(),
});
export type ApiInfo = z.infer<typeof ApiInfo>;

export const apiInfoPath = (dataDir: string) => join(dataDir, 'api.json');
export const adminKeyPath = (dataDir: string) => join(dataDir, 'admin.key');
export const caCertPath = (dataDir: string) => join(dataDir, 'ca.crt');

export async function readApiInfo(dataDir: string): Promise<ApiInfo | null> {
  let text: string;
  try {
    text = await readFile(apiInfoPath(dataDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const parsed = ApiInfo.safeParse(JSON.parse(text));
  if (!parsed.success) throw new GridError('GG_ERR_CONFIG_INVALID', `${apiInfoPath(dataDir)} is not a valid api.json`);
  return parsed.data;
}
