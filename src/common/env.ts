/**
 * Settings read from the environment, checked: a value that is set but not
 * what the variable takes is a configuration error naming the variable,
 * never a silent default.
 *
 *   const mib = wholeNumberEnv('GOGRID_LLM_KEEP_FREE_MIB', 0, 2 ** 30, 'MiB'); // undefined when unset
 */
import { GridError } from '../protocol/errors.js';

/** A whole number from `min` to `max`, undefined when unset or empty. */
export function wholeNumberEnv(name: string, min: number, max: number, unit: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  // Decimal digits only: Number() would also read "0x10" as 16 and " " as 0.
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new GridError('GG_ERR_CONFIG_INVALID', `${name} is "${raw}"; it takes a whole number of ${unit} from ${min} to ${max}`);
  return n;
}

/** On (1, true, yes) or off (0, false, no), undefined when unset or empty. */
export function booleanEnv(name: string): boolean | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes'].includes(value)) return true;
  if (['0', 'false', 'no'].includes(value)) return false;
  throw new GridError('GG_ERR_CONFIG_INVALID', `${name} is "${raw}"; it takes 1 or 0 (true or false)`);
}
