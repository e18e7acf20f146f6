/**
 * The operator's own certificate for the HTTPS API (`[server] api_cert_file`
 * and `api_key_file`, e.g. Let's Encrypt's fullchain.pem and privkey.pem):
 * shown to every client that does not ask for the grid by name, so curl and
 * the openai client trust the coordinator through the system's CAs. Workers
 * send the server name `gogrid-coordinator` (SNI) and still get the grid's
 * own certificate, which they verify against the CA their token named.
 * Re-read every hour: a renewed certificate is served without a restart.
 *
 *   const api = config.server.apiCert && (await loadApiCert(config.server.apiCert));
 *   https: { ...apiTlsOptions(gridCert, caPem, api), … }
 *   const stop = reloadApiCert(server, api, caPem, logger);
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server as HttpsServer } from 'node:https';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import { COORDINATOR_SERVER_NAME, GridError } from '../protocol/index.js';

export interface ApiCert {
  certPem: string;
  keyPem: string;
  /** When the first certificate in the chain expires. */
  notAfter: Date;
  /** Where it was read from, and is read again. */
  files: { certFile: string; keyFile: string };
}

/** How often the files are read again (a renewal lands within it). */
const RELOAD_MS = 3600_000;

/** Reads and checks the pair; GG_ERR_CONFIG_INVALID naming the file and what is wrong. */
export async function loadApiCert(files: { certFile: string; keyFile: string }): Promise<ApiCert> {
  const read = (file: string) =>
    readFile(file, 'utf8').catch((e: unknown) => {
      throw new GridError('GG_ERR_CONFIG_INVALID', `[server] ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
    });
  const [certPem, keyPem] = await Promise.all([read(files.certFile), read(files.keyFile)]);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `[server] api_cert_file ${files.certFile}: not a PEM certificate`, { cause: e });
  }
  try {
    // Also checks that the key is the certificate's: "key values mismatch" otherwise.
    createSecureContext({ cert: certPem, key: keyPem });
  } catch (e) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `[server] api_key_file ${files.keyFile}: not the private key of ${files.certFile} (${(e as Error).message})`, { cause: e });
  }
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() <= Date.now()) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `[server] api_cert_file ${files.certFile}: expired on ${notAfter.toISOString()}; renew it`);
  }
  return { certPem, keyPem, notAfter, files };
}

/** A certificate's TLS context as the HTTPS server holds it: client certificates checked against the grid CA. */
const contextOptions = (pair: { certPem: string; keyPem: string }, caPem: string): SecureContextOptions => ({ key: pair.keyPem, cert: pair.certPem, ca: caPem, minVersion: 'TLSv1.3' });

/**
 * The HTTPS server's certificate options: the operator's by default, the
 * grid's for a client that names the grid (SNI). Both verify workers' client
 * certificates against the grid CA.
 */
export function apiTlsOptions(grid: { certPem: string; keyPem: string }, caPem: string, api: ApiCert | null): { key: string; cert: string; SNICallback?: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void } {
  if (api === null) return { key: grid.keyPem, cert: grid.certPem };
  const gridContext = createSecureContext(contextOptions(grid, caPem));
  return {
    key: api.keyPem,
    cert: api.certPem,
    // A falsy context means the server's default one: the operator's.
    SNICallback: (name, cb) => cb(null, name === COORDINATOR_SERVER_NAME ? gridContext : undefined),
  };
}

/** Serves a renewed certificate (certbot replaced the files) without a restart; a broken renewal keeps the old one, logged. Returns the stop. */
export function reloadApiCert(server: HttpsServer, first: ApiCert, caPem: string, logger: Logger): () => void {
  let served = first.certPem;
  const timer = setInterval(() => {
    loadApiCert(first.files).then(
      (fresh) => {
        if (fresh.certPem === served) return;
        server.setSecureContext(contextOptions(fresh, caPem));
        served = fresh.certPem;
        logger.info({ notAfter: fresh.notAfter.toISOString() }, `serving the renewed API certificate ${first.files.certFile}`);
      },
      (e: unknown) => logger.warn({ err: e }, 'the API certificate files could not be read again; still serving the previous one'),
    );
  }, RELOAD_MS).unref();
  return () => clearInterval(timer);
}
