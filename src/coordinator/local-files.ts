/**
 * What a running coordinator leaves in its data dir for admin commands on
 * the same machine (as `kubeadm token create` reads its control plane's
 * files): where the API listens, and the admin key.
 *
 *   const info = await readApiInfo(dataDir); // null when no coordinator ever ran there
 */
import { join } from 'node:path';
import { z } from 'zod';
import { readJsonFile } from '../common/files.js';

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

export function readApiInfo(dataDir: string): Promise<ApiInfo | null> {
  return readJsonFile(apiInfoPath(dataDir), ApiInfo);
}
