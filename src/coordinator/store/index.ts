/**
 * The coordinator's SQL store: one schema, run on embedded PGlite or PostgreSQL,
 * used through plain functions that take the `Db` first.
 *
 *   import { openDb, migrate, insertWorker, consumeToken } from './store/index.js';
 *   const db = await openDb(config.database.url, { poolSize: config.database.maxConnections });
 *   await migrate(db);
 *   const token = await consumeToken(db, tokenId, secret, new Date());
 *   await insertWorker(db, { id, name, certFingerprint, certNotAfter, tokenId: token.id, now: new Date() });
 */
export { openDb, type Db, type OpenDbOptions } from './db.js';
export { parseDatabaseUrl, redactDatabaseUrl, type DatabaseTarget } from './url.js';
export { migrate, appliedMigrations, MIGRATIONS, type Migration, type AppliedMigration } from './migrations.js';
export * from './workers.js';
export * from './tokens.js';
export * from './apiKeys.js';
export * from './jobs.js';
export * from './policies.js';
export * from './submitKeys.js';
export * from './fleet.js';
export { payloadPieces } from './payloads.js';
