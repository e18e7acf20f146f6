/** The running jobs with their progress, today's count and the last error. */
import type { RunningJobView } from '../../protocol/control.js';
import { changeTracker, h } from '../dom.js';
import { clock, jobCounts, jobProgressWords } from '../words.js';
import type { Section } from './section.js';

interface JobRow {
  el: HTMLLIElement;
  bar: HTMLProgressElement;
  words: HTMLSpanElement;
}

export function jobsSection(): Section {
  const list = h('ul', { id: 'jobs-running', class: 'jobs' });
  const none = h('p', { id: 'jobs-none', class: 'muted' }, 'No job running.');
  const counts = h('p', { id: 'jobs-counts' });
  const lastError = h('p', { id: 'jobs-last-error', class: 'last-error' });
  const el = h('section', { class: 'jobs-section', 'aria-labelledby': 'jobs-title' }, h('h2', { id: 'jobs-title' }, 'Jobs'), list, none, counts, lastError);
  // Rows are keyed by job id and updated in place: progress moves every second.
  const rows = new Map<string, JobRow>();
  const changed = changeTracker();

  return {
    el,
    update(view) {
      const { jobs } = view;
      if (!changed(jobs)) return;
      const ids = new Set(jobs.running.map((j) => j.jobId));
      for (const [id, row] of rows) {
        if (ids.has(id)) continue;
        row.el.remove();
        rows.delete(id);
      }
      for (const job of jobs.running) {
        const row = rows.get(job.jobId) ?? addRow(list, rows, job);
        updateRow(row, job);
      }
      none.hidden = jobs.running.length > 0;
      counts.textContent = jobCounts(jobs);
      lastError.hidden = jobs.lastError === null;
      lastError.textContent = jobs.lastError ? `Last error at ${clock(jobs.lastError.at)}: ${jobs.lastError.message}` : '';
    },
  };
}

function addRow(list: HTMLUListElement, rows: Map<string, JobRow>, job: RunningJobView): JobRow {
  const bar = h('progress', { max: '1', 'aria-label': `progress of job ${job.jobId}` });
  const words = h('span', { class: 'job-progress' });
  const el = h(
    'li',
    { 'data-job': job.jobId },
    h('div', { class: 'job-head' }, h('span', { class: 'job-model' }, job.modelName), h('span', { class: 'muted' }, ` ${job.kind} · ${job.jobId}`), words),
    bar,
  );
  list.append(el);
  const row = { el, bar, words };
  rows.set(job.jobId, row);
  return row;
}

function updateRow(row: JobRow, job: RunningJobView): void {
  // A progress element without a value shows "working, amount unknown".
  if (job.progress === null) row.bar.removeAttribute('value');
  else row.bar.value = job.progress;
  row.words.textContent = jobProgressWords(job);
  row.el.classList.toggle('suspended', job.suspended);
}
