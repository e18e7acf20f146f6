/**
 * /healthz (the process answers) and /readyz (it reaches its database too),
 * on a real coordinator, for load balancers and service managers: no key
 * needed, and /readyz turns 503 once the database is gone.
 */
import { afterAll, expect, it } from 'vitest';
import { removeTempDirs, startTestCoordinator } from '../helpers/grid.js';
import { rawRequest } from '../helpers/https-raw.js';

afterAll(removeTempDirs);

it('answers live and ready without a key, and not ready once its database is gone', async () => {
  const c = await startTestCoordinator();
  const get = (path: string) => rawRequest({ url: `${c.apiUrl}${path}`, ca: c.ca.material.certPem });
  try {
    expect((await get('/healthz')).json()).toEqual({ ok: true, workersOnline: 0 });
    expect((await get('/readyz')).json()).toEqual({ ok: true, workersOnline: 0 });
    await c.parts.db.close();
    const ready = await get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json()).toMatchObject({ error: { code: 'GG_ERR_DATABASE_UNREACHABLE' } });
    expect((await get('/healthz')).status).toBe(200);
  } finally {
    // The last writes fail with the database gone; the ports and the data dir are let go all the same.
    await c.stop().catch((e: unknown) => expect(String(e)).toMatch(/closed/i));
  }
  await expect(get('/healthz')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
});
