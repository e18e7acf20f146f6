import { describe, expect, it } from 'vitest';
import { formatMinutes, formatMoment, policyNow, wallClock, type PolicyNow } from '../../../src/worker/policy/clock.js';

const ms = (iso: string) => Date.parse(iso);

describe('wallClock', () => {
  // [instant, zone, weekday (0 = Mon), minutes of day]
  it.each([
    ['2025-03-10T12:34:00Z', 'UTC', 0, 754],
    ['2025-03-10T12:34:59.999Z', 'UTC', 0, 754], // seconds are dropped, not rounded
    ['2025-03-10T00:00:00Z', 'UTC', 0, 0],
    ['2025-03-09T23:59:00Z', 'UTC', 6, 1439],
    ['2025-03-16T12:00:00Z', 'UTC', 6, 720],
    ['2025-03-10T23:30:00Z', 'Europe/Berlin', 1, 30], // UTC+1: already Tuesday
    ['2025-03-10T05:00:00Z', 'America/Los_Angeles', 6, 1320], // UTC-7 since 9 March: still Sunday 22:00
    ['2025-03-10T18:45:00Z', 'Asia/Kolkata', 1, 15], // UTC+5:30
    ['2025-03-30T00:59:00Z', 'Europe/Berlin', 6, 119], // 01:59 CET, just before the spring-forward gap
    ['2025-03-30T01:00:00Z', 'Europe/Berlin', 6, 180], // 02:00 never happens: 03:00 CEST
    ['2025-10-26T00:30:00Z', 'Europe/Berlin', 6, 150], // 02:30 CEST …
    ['2025-10-26T01:30:00Z', 'Europe/Berlin', 6, 150], // … and 02:30 CET again, an hour later
  ])('%s in %s → weekday %i, minute %i', (iso, zone, weekday, minutesOfDay) => {
    const clock = wallClock(ms(iso), zone);
    expect(clock.weekday).toBe(weekday);
    expect(clock.minutesOfDay).toBe(minutesOfDay);
  });

  it('counts every weekday of a week in order, and local calendar days', () => {
    const monday = ms('2025-03-10T10:00:00Z');
    const days = [0, 1, 2, 3, 4, 5, 6].map((i) => wallClock(monday + i * 86_400_000, 'Europe/Berlin'));
    expect(days.map((d) => d.weekday)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(days.map((d) => d.day - days[0]!.day)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('throws RangeError for an unknown zone', () => {
    expect(() => wallClock(0, 'Mars/Olympus_Mons')).toThrow(RangeError);
  });
});

describe('policyNow', () => {
  it('takes the given instant and zone', () => {
    expect(policyNow(new Date('2025-03-10T12:00:00Z'), 'Europe/Berlin')).toEqual({ epochMs: ms('2025-03-10T12:00:00Z'), timeZone: 'Europe/Berlin' });
  });

  it("defaults to this machine's clock and zone", () => {
    const before = Date.now();
    const now = policyNow();
    expect(now.epochMs).toBeGreaterThanOrEqual(before);
    expect(now.epochMs).toBeLessThanOrEqual(Date.now());
    expect(now.timeZone).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone);
  });

  it('rejects an unknown zone at once, not at the first decision', () => {
    expect(() => policyNow(new Date(), 'Not/A_Zone')).toThrow(RangeError);
  });
});

describe('formatMinutes', () => {
  it.each([
    [0, '00:00'],
    [59, '00:59'],
    [420, '07:00'],
    [1140, '19:00'],
    [1439, '23:59'],
    [1440, '24:00'],
  ])('%i → %s', (minutes, text) => expect(formatMinutes(minutes)).toBe(text));
});

describe('formatMoment', () => {
  const now: PolicyNow = { epochMs: ms('2025-03-10T12:00:00Z'), timeZone: 'UTC' }; // Monday
  it.each([
    ['2025-03-10T15:20:00Z', '15:20'],
    ['2025-03-10T23:59:00Z', '23:59'],
    ['2025-03-11T00:00:00Z', 'tomorrow 00:00'],
    ['2025-03-11T08:00:00Z', 'tomorrow 08:00'],
    ['2025-03-12T08:00:00Z', 'Wed 08:00'],
    ['2025-03-16T23:59:00Z', 'Sun 23:59'],
    ['2025-03-17T09:00:00Z', '2025-03-17 09:00'],
  ])('%s → %s', (iso, text) => expect(formatMoment(ms(iso), now)).toBe(text));

  it("reads the moment on the owner's wall clock", () => {
    const berlin: PolicyNow = { epochMs: ms('2025-03-10T22:30:00Z'), timeZone: 'Europe/Berlin' }; // 23:30 Monday there
    expect(formatMoment(ms('2025-03-10T22:50:00Z'), berlin)).toBe('23:50');
    expect(formatMoment(ms('2025-03-10T23:10:00Z'), berlin)).toBe('tomorrow 00:10');
  });
});
