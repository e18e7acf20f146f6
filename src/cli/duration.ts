/**
 * Durations on the command line: `90s`, `30m`, `24h`, `7d`, or plain seconds.
 * Four units do not justify a dependency.
 */
import { GridError } from '../protocol/index.js';

const UNIT_SECS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

export function parseDurationSecs(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(text.trim());
  const secs = match ? Number(match[1]) * UNIT_SECS[match[2] || 's']! : NaN;
  if (!Number.isFinite(secs) || secs <= 0) {
    throw new GridError('GG_ERR_BAD_REQUEST', `${what}: "${text}" is not a duration; use e.g. 90s, 30m, 24h or 7d`);
  }
  return Math.round(secs);
}
