/**
 * What the status window says, as pure functions of the WorkerView, so the
 * wording lives in one place and reads the same in every section.
 *
 *   connectionWords('waiting');   // 'Offline, retrying'
 *   percent(0.4);                 // '40%'
 */
import type { ConnectionState, RunningJobView, WorkerView } from '../protocol/control.js';

const CONNECTION_WORDS: Record<ConnectionState, string> = {
  'not-enrolled': 'Not set up yet',
  enrolling: 'Enrolling…',
  connecting: 'Connecting…',
  online: 'Online',
  waiting: 'Offline, retrying',
  stopping: 'Stopping…',
  stopped: 'Stopped',
  failed: 'Failed',
};

export function connectionWords(state: ConnectionState): string {
  return CONNECTION_WORDS[state];
}

/** The colour of the state dot: a CSS class name. */
export function connectionTone(state: ConnectionState): 'ok' | 'busy' | 'bad' | 'off' {
  if (state === 'online') return 'ok';
  if (state === 'waiting' || state === 'failed') return 'bad';
  if (state === 'enrolling' || state === 'connecting' || state === 'stopping') return 'busy';
  return 'off';
}

/** The activity heading: running or paused, and who paused it; "running" only while connected, where jobs can arrive. */
export function activityTitle(policy: WorkerView['policy'], connection: ConnectionState): string {
  if (policy.run && connection !== 'online') return 'Ready to run once connected';
  if (policy.run) return policy.byAdmin ? 'Running, within limits set by your administrator' : 'Running';
  if (policy.byAdmin) return 'Paused by your administrator';
  // Until when is the reason line's, in the worker's words ("tomorrow 15:20"): said once, one way.
  if (policy.control.state === 'snoozed') return 'Snoozed';
  return 'Paused';
}

export function percent(progress: number): string {
  return `${Math.round(progress * 100)}%`;
}

export function jobProgressWords(job: RunningJobView): string {
  if (job.suspended) return 'on hold while you use this computer';
  const how = job.progress === null ? 'running' : percent(job.progress);
  return job.detail ? `${how} · ${job.detail}` : how;
}

export function clock(at: number | string): string {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function jobCounts(jobs: WorkerView['jobs']): string {
  const done = `${jobs.completedToday} ${jobs.completedToday === 1 ? 'job' : 'jobs'} completed today`;
  return jobs.failedToday > 0 ? `${done}, ${jobs.failedToday} failed` : done;
}

/** The form field a host refusal belongs next to, by its GG_ERR code; null: the form as a whole. */
export function fieldForCode(code: string | null): 'coordinator' | 'token' | null {
  if (code === 'GG_ERR_CONFIG_INVALID' || code === 'GG_ERR_COORDINATOR_UNREACHABLE') return 'coordinator';
  if (code !== null && (code.startsWith('GG_ERR_TOKEN_') || code === 'GG_ERR_CA_MISMATCH' || code === 'GG_ERR_NOT_ENROLLED')) return 'token';
  return null;
}
