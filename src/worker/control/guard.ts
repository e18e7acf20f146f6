/**
 * Who may talk to the loopback control endpoint. Binding to 127.0.0.1 keeps
 * other machines out; these checks keep out web pages in the owner's own
 * browser: a DNS-rebinding page reaches 127.0.0.1 under its own host name
 * (wrong Host), a cross-site page sends its own Origin, and neither can read
 * the 0600 token file.
 *
 *   const guard = requestGuard(() => port, token);
 *   guard.checkHost(req.headers);   // throws GG_ERR_HOST_REFUSED
 *   guard.checkToken(req.headers);  // throws GG_ERR_UNAUTHENTICATED
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { GridError } from '../../protocol/index.js';

/** 32 random bytes, base64url: safe in a header, a JSON file and a URL fragment. */
export function newControlToken(): string {
  return randomBytes(32).toString('base64url');
}

export interface RequestGuard {
  checkHost(headers: IncomingHttpHeaders): void;
  checkToken(headers: IncomingHttpHeaders): void;
}

/** `port` is read per request: it is known only once the server listens. */
export function requestGuard(port: () => number, token: string): RequestGuard {
  // Hashing first gives equal lengths, which timingSafeEqual requires, and
  // hides the token's length as well as its content.
  const expected = sha256(token);
  return {
    checkHost(headers) {
      const p = port();
      const host = headers.host?.toLowerCase();
      if (host !== `127.0.0.1:${p}` && host !== `localhost:${p}`) {
        throw new GridError('GG_ERR_HOST_REFUSED', `Host "${headers.host ?? ''}" refused: this endpoint answers only to 127.0.0.1:${p} or localhost:${p}`);
      }
      const origin = headers.origin;
      if (origin !== undefined && origin.toLowerCase() !== `http://127.0.0.1:${p}` && origin.toLowerCase() !== `http://localhost:${p}`) {
        throw new GridError('GG_ERR_HOST_REFUSED', `Origin "${origin}" refused: only pages served by this endpoint may call it`);
      }
    },
    checkToken(headers) {
      const match = /^Bearer (\S+)$/.exec(headers.authorization ?? '');
      if (!match) throw new GridError('GG_ERR_UNAUTHENTICATED', 'missing token: send "Authorization: Bearer <token>" with the token from control.json in the data dir');
      if (!timingSafeEqual(sha256(match[1]!), expected)) throw new GridError('GG_ERR_UNAUTHENTICATED', 'the token is not valid; read it again from control.json (it changes whenever the worker starts)');
    },
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
