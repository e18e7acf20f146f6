/**
 * An error another process reported by its code (the coordinator's `error`
 * frame, the worker's control endpoint) as a GridError of ours, so the
 * registry in protocol/errors.ts decides whether it is worth retrying.
 *
 *   throw peerError(frame.code, `coordinator: ${frame.message}`);
 */
import { ERROR_CODE_LIST, GridError } from '../protocol/index.js';

export function peerError(code: string, message: string): GridError {
  const known = ERROR_CODE_LIST.find((c) => c === code);
  if (known) return new GridError(known, message);
  // A newer peer's code. Whether it passes is unknown, and guessing "retry"
  // turns a refusal into a reconnect loop nobody sees: it fails, naming the code.
  return new GridError('GG_ERR_MESSAGE_UNKNOWN', `${message} (${code}: an error code this version does not know; update it)`);
}
