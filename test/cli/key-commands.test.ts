/**
 * `gogrid keys create|list|revoke` as people run them, against a real
 * coordinator found through its data dir.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiKeyInfo, ApiKeyList } from '../../src/protocol/index.js';
import { removeTempDirs, runCli, startTestCoordinator, type TestCoordinator } from '../helpers/grid.js';

let c: TestCoordinator;

beforeAll(async () => {
  c = await startTestCoordinator();
});
afterAll(async () => {
  await c.stop();
  await removeTempDirs();
});

async function gogrid(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = runCli([...args, '--data', c.dataDir], env);
  const code = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

it('creates an inference key that prints once and cannot call admin commands, lists it, and revokes it', { timeout: 60_000 }, async () => {
  const created = await gogrid(['keys', 'create', '--scope', 'inference', '--name', 'chat app']);
  expect(created).toMatchObject({ code: 0, stderr: '' });
  const key = created.stdout.trim();
  expect(key).toMatch(/^ggk_\S+$/);

  const [listed, refused] = await Promise.all([gogrid(['keys', 'list', '--json']), gogrid(['workers'], { GOGRID_API_KEY: key })]);
  const info = ApiKeyList.parse(JSON.parse(listed.stdout)).find((k) => k.name === 'chat app');
  expect(info).toMatchObject({ scope: 'inference', status: 'active' });
  expect(listed.stdout).not.toContain(key);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/^gogrid: GG_ERR_KEY_SCOPE: API key k-\w+ is an inference key: it may call only GET \/v1\/models, POST \/v1\/chat\/completions/);

  const [revoked, lastAdmin] = await Promise.all([gogrid(['keys', 'revoke', info!.id, '--json']), gogrid(['keys', 'revoke', 'admin'])]);
  expect(ApiKeyInfo.parse(JSON.parse(revoked.stdout))).toMatchObject({ id: info!.id, status: 'revoked' });
  expect(lastAdmin.code).toBe(1);
  expect(lastAdmin.stderr).toMatch(/GG_ERR_LAST_ADMIN_KEY: API key admin is the last admin key/);

  const table = await gogrid(['keys', 'list']);
  expect(table.stdout).toMatch(/^ID\s+NAME\s+SCOPE\s+STATUS\s+CREATED\s+LAST USED$/m);
  expect(table.stdout).toMatch(new RegExp(`^${info!.id}\\s+chat app\\s+inference\\s+revoked\\s`, 'm'));
  // Times as people read them: created and last used a few seconds ago.
  expect(table.stdout).toMatch(/^admin\s+admin\.key\s+admin\s+active\s+(now|\d+ sec\. ago)\s+(now|\d+ sec\. ago)$/m);
});

it('refuses a scope it does not know before calling the coordinator', { timeout: 30_000 }, async () => {
  const r = await gogrid(['keys', 'create', '--scope', 'root']);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/--scope.*root.*admin, inference/s);
});
