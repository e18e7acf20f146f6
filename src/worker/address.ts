/**
 * Parses the coordinator address a person types (CLI flag, settings field).
 *
 *   parseCoordinatorAddress('grid.example.com');  // { host: 'grid.example.com', port: 8443 }
 *   parseCoordinatorAddress('[::1]:9000');         // { host: '::1', port: 9000 }
 *
 * The host comes back without IPv6 brackets, ready for socket APIs.
 */
import net from 'node:net';
import { GridError } from '../protocol/errors.js';

/** The coordinator's default port (QUIC over UDP and HTTPS over TCP share the number). */
export const DEFAULT_COORDINATOR_PORT = 8443;

const EXPECTED = 'expected host[:port], e.g. grid.example.com:8443, 10.0.0.5 or [::1]:8443';
/** DNS names and IPv4 literals: dot-separated labels of letters, digits, hyphens, underscores. */
const HOST_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;
const BRACKETED = /^\[([^\]]*)\](?::(.*))?$/;

export function parseCoordinatorAddress(text: string): { host: string; port: number } {
  const input = text.trim();
  const fail = (why: string): never => {
    throw new GridError('GG_ERR_CONFIG_INVALID', `invalid coordinator address ${JSON.stringify(text)}: ${why}; ${EXPECTED}`);
  };
  if (input === '') fail('it is empty');
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(input)) fail('leave out the scheme (no https:// or quic://)');

  const bracketed = BRACKETED.exec(input);
  if (bracketed) {
    const host = bracketed[1] ?? '';
    if (!net.isIPv6(host)) fail(`${JSON.stringify(host)} in brackets is not an IPv6 address`);
    return { host, port: bracketed[2] === undefined ? DEFAULT_COORDINATOR_PORT : parsePort(bracketed[2], fail) };
  }
  if (net.isIPv6(input)) fail('put an IPv6 address in brackets, as in [::1]:8443');

  const colon = input.lastIndexOf(':');
  const host = colon === -1 ? input : input.slice(0, colon);
  if (host === '') fail('the host is empty');
  if (!HOST_NAME.test(host)) fail(`${JSON.stringify(host)} is not a host name or IP address`);
  return { host, port: colon === -1 ? DEFAULT_COORDINATOR_PORT : parsePort(input.slice(colon + 1), fail) };
}

function parsePort(text: string, fail: (why: string) => never): number {
  // Digits only: Number() would also take '0x1F', '1e3' and ' 80 '.
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) fail(`port ${JSON.stringify(text)} is not a number from 1 to 65535`);
  return port;
}
