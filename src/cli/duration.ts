/**
 * Durations on the command line: `90s`, `30m`, `24h`, `7d`, or plain seconds
 * in; "4 min ago" and "3 h 20 min" out, for people reading listings.
 * Four units do not justify a dependency; "ago" is Intl.RelativeTimeFormat's.
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

/** A span as a person reads it, to two units at most: "800 ms", "12 s", "4 min 5 s", "3 h 20 min", "2 d 4 h". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const secs = Math.floor(ms / 1000);
  const parts: Array<[number, string]> = [
    [Math.floor(secs / 86_400), 'd'],
    [Math.floor((secs % 86_400) / 3600), 'h'],
    [Math.floor((secs % 3600) / 60), 'min'],
    [secs % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  return parts
    .slice(first, first + 2)
    .filter(([n], i) => i === 0 || n > 0)
    .map(([n, unit]) => `${n} ${unit}`)
    .join(' ');
}

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto', style: 'short' });

/** When `iso` was, from `now`: "now", "12 sec. ago", "4 min. ago", "3 hr. ago", "yesterday", "5 days ago"; '-' for none. */
export function ago(iso: string | null, now: number): string {
  if (iso === null) return '-';
  const secs = Math.round((Date.parse(iso) - now) / 1000);
  if (!Number.isFinite(secs)) return '-';
  const abs = Math.abs(secs);
  if (abs < 60) return relative.format(secs, 'second');
  if (abs < 3600) return relative.format(Math.round(secs / 60), 'minute');
  if (abs < 86_400) return relative.format(Math.round(secs / 3600), 'hour');
  return relative.format(Math.round(secs / 86_400), 'day');
}
