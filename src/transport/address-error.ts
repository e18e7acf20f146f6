/**
 * Why a listener could not bind, for a person: the port taken by another
 * program, or an address that is not this machine's, named with the
 * protocol (QUIC is UDP, the HTTPS API TCP: either can be taken apart).
 *
 *   await server.listen(…).catch((e) => { throw addressUnavailable('TCP', host, port, e); });
 */
import { GridError } from '../protocol/errors.js';

export function addressUnavailable(protocol: 'UDP' | 'TCP', host: string, port: number, e: unknown): GridError {
  // @matrixai/quic wraps the socket's error; node:net's is the error itself.
  const errno = (e as { cause?: { code?: string }; code?: string }).cause?.code ?? (e as { code?: string }).code;
  const why =
    errno === 'EADDRINUSE'
      ? `another program already uses ${protocol} port ${port}`
      : errno === 'EADDRNOTAVAIL'
        ? `${host} is not an address of this machine`
        : (errno ?? (e instanceof Error ? e.message : String(e)));
  return new GridError('GG_ERR_ADDRESS_UNAVAILABLE', `cannot listen on ${host}:${port} (${protocol}): ${why}; choose another with --port or --bind ([server] port and bind_addr in coordinator.toml)`, { cause: e });
}
