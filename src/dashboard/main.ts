/**
 * The fleet dashboard page (served by coordinator/http-dashboard.ts). It asks
 * for an admin key (kept for this tab only, in sessionStorage), then shows the
 * fleet at a glance and keeps it live from /v1/fleet/events: workers and jobs
 * by state, jobs finished per minute (uPlot), run-time percentiles, the latest
 * failures, and the workers a page at a time with a drill-down. Every
 * answer is parsed with the protocol's schemas; every value lands in text
 * nodes (renderer/dom.ts), so a worker's name cannot become markup.
 */
import uPlot from 'uplot';
import type { z } from 'zod';
import { FleetSummary, WorkerInfo, WorkerPage, type WorkerState } from '../protocol/api.js';
import { fill, h } from '../renderer/dom.js';

const KEY = 'gogrid.adminKey';
const PAGE = 50;
const RETRY_MS = 3000;

const app = document.getElementById('app')!;
const live = document.getElementById('live')!;

class KeyRefused extends Error {}

async function api<T extends z.ZodType>(path: string, schema: T): Promise<z.infer<T>> {
  const res = await fetch(path, { headers: { authorization: `Bearer ${sessionStorage.getItem(KEY) ?? ''}` } });
  const body: unknown = await res.json().catch(() => null);
  const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
  if (res.status === 401 || res.status === 403) throw new KeyRefused(typeof message === 'string' ? message : `HTTP ${res.status}`);
  if (!res.ok) throw new Error(typeof message === 'string' ? message : `HTTP ${res.status}`);
  return schema.parse(body);
}

function askForKey(problem?: string): void {
  const input = h('input', { type: 'password', name: 'key', autocomplete: 'off', placeholder: 'gga_…', 'aria-label': 'Admin API key', required: true });
  const form = h(
    'form',
    { class: 'key' },
    h('label', {}, 'Admin API key (gogrid keys create, or DATA/admin.key on the coordinator)'),
    input,
    h('button', { type: 'submit' }, 'Open'),
    problem ? h('p', { class: 'error', role: 'alert' }, problem) : null,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    void start();
  });
  fill(app, form);
  app.setAttribute('aria-busy', 'false');
  input.focus();
}

const ago = (iso: string | null): string => {
  if (iso === null) return '-';
  const secs = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (Math.abs(secs) < 60) return secs < 0 ? 'in a moment' : 'now';
  const mins = Math.round(secs / 60);
  if (Math.abs(mins) < 120) return mins < 0 ? `in ${-mins} min` : `${mins} min ago`;
  const hours = Math.round(mins / 60);
  if (Math.abs(hours) < 48) return hours < 0 ? `in ${-hours} h` : `${hours} h ago`;
  return new Date(iso).toLocaleDateString();
};
const ms = (v: number | null): string => (v === null ? '-' : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`);

/** The page's parts, built once; updates refill them. */
interface View {
  cards: HTMLElement;
  chart: uPlot;
  latency: uPlot;
  failures: HTMLElement;
  workers: HTMLElement;
  pager: HTMLElement;
  detail: HTMLElement;
}

let view: View | null = null;
let offset = 0;
let selected: string | null = null;

async function start(): Promise<void> {
  let first: FleetSummary;
  try {
    first = await api('/v1/fleet', FleetSummary);
  } catch (e) {
    if (e instanceof KeyRefused) return askForKey(e.message);
    fill(app, h('p', { class: 'error', role: 'alert' }, `Cannot reach the coordinator: ${(e as Error).message}`));
    return;
  }
  view = layout();
  show(first);
  await loadWorkers();
  void follow();
}

function layout(): View {
  const cards = h('div', { class: 'cards', 'aria-label': 'Fleet at a glance' });
  const plotBox = h('div', { class: 'plot' });
  const latencyBox = h('div', { class: 'plot' });
  const failures = h('div', { class: 'scroll' });
  const workers = h('div', { class: 'scroll' });
  const pager = h('div', { class: 'pager' });
  const detail = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Select a worker for its details.'));
  fill(
    app,
    cards,
    h(
      'div',
      { class: 'panels' },
      h('section', { 'aria-label': 'Throughput' }, h('h2', {}, 'Jobs finished per minute (last hour)'), plotBox),
      h('section', { 'aria-label': 'Latency' }, h('h2', {}, 'Median run time per minute (last hour)'), latencyBox),
      h('section', { 'aria-label': 'Failures' }, h('h2', {}, 'Latest failures'), failures),
    ),
    h('div', { class: 'panels' }, h('section', { 'aria-label': 'Workers' }, h('h2', {}, 'Workers'), workers, pager), h('section', { 'aria-label': 'Worker' }, h('h2', {}, 'Worker'), detail)),
  );
  app.setAttribute('aria-busy', 'false');
  const chart = new uPlot(
    {
      width: Math.max(280, plotBox.clientWidth || 360),
      height: 180,
      series: [{}, { label: 'succeeded', stroke: '#2e7d32' }, { label: 'failed', stroke: '#c62828' }],
      axes: [{}, { label: 'jobs/min' }],
    },
    [[], [], []],
    plotBox,
  );
  const latency = new uPlot(
    { width: Math.max(280, latencyBox.clientWidth || 360), height: 180, series: [{}, { label: 'p50 run time', stroke: '#1565c0', spanGaps: true, points: { show: true, size: 5 }, value: (_u, v) => (v == null ? '-' : ms(v)) }], axes: [{}, { label: 'ms' }] },
    [[], []],
    latencyBox,
  );
  const fit = (plot: uPlot, box: HTMLElement) => new ResizeObserver(() => plot.setSize({ width: Math.max(280, box.clientWidth), height: 180 })).observe(box);
  fit(chart, plotBox);
  fit(latency, latencyBox);
  return { cards, chart, latency, failures, workers, pager, detail };
}

/** The last hour as 60 minutes, the ones without jobs as zeros (the API leaves them out) and no run time, for the charts. */
function perMinute(s: FleetSummary): { counts: uPlot.AlignedData; latency: uPlot.AlignedData } {
  const last = Math.floor(Date.parse(s.at) / 60_000) * 60;
  const minutes = Array.from({ length: 60 }, (_, i) => last - (59 - i) * 60);
  const at = new Map(s.throughput.map((m) => [Date.parse(m.minute) / 1000, m]));
  return {
    counts: [minutes, minutes.map((t) => at.get(t)?.succeeded ?? 0), minutes.map((t) => at.get(t)?.failed ?? 0)],
    latency: [minutes, minutes.map((t) => at.get(t)?.runMsP50 ?? null)],
  };
}

function card(label: string, value: string | number, note?: string): HTMLElement {
  return h('div', { class: 'card' }, h('div', { class: 'muted' }, label), h('div', { class: 'n' }, String(value)), note ? h('div', { class: 'muted' }, note) : null);
}

function show(s: FleetSummary): void {
  if (!view) return;
  const { workers: w, jobs: j } = s;
  fill(
    view.cards,
    card('Workers online', w.online, `${w.paused} paused, ${w.offline} offline`),
    card('Queued', j.queued),
    card('Running', j.leased + j.running),
    card('Succeeded', j.succeeded),
    card('Failed', j.failed, j.canceled ? `${j.canceled} canceled` : undefined),
    card('Run time p50', ms(s.runTimeMs.p50), `p95 ${ms(s.runTimeMs.p95)} (${s.runTimeMs.jobs} job${s.runTimeMs.jobs === 1 ? '' : 's'}, last hour)`),
  );
  const { counts, latency } = perMinute(s);
  view.chart.setData(counts);
  view.latency.setData(latency);
  fill(
    view.failures,
    s.failures.length === 0
      ? h('p', { class: 'muted' }, 'None.')
      : h(
          'table',
          {},
          h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'When'), h('th', {}, 'Worker'), h('th', {}, 'Why'))),
          h('tbody', {}, ...s.failures.map((f) => h('tr', {}, h('td', {}, f.id), h('td', {}, ago(f.finishedAt)), h('td', {}, f.workerId ?? '-'), h('td', { title: f.message }, f.code)))),
        ),
  );
  live.textContent = `live · ${new Date(s.at).toLocaleTimeString()}`;
}

async function loadWorkers(): Promise<void> {
  if (!view) return;
  const page = await api(`/v1/fleet/workers?offset=${offset}&limit=${PAGE}`, WorkerPage);
  const stateClass = (state: WorkerState) => `state-${state}`;
  fill(
    view.workers,
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, ...['Name', 'State', 'Via', 'Last seen', 'GPUs', 'Labels'].map((t) => h('th', {}, t)))),
      h(
        'tbody',
        {},
        ...page.workers.map((w) => {
          const row = h(
            'tr',
            { tabindex: '0', 'aria-selected': String(w.id === selected), 'data-id': w.id },
            h('td', {}, w.name),
            h('td', { class: stateClass(w.state), title: w.pausedReason ?? undefined }, w.state),
            h('td', {}, w.transport ?? '-'),
            h('td', {}, ago(w.lastSeen)),
            h('td', {}, String(w.hardware?.gpus.length ?? '-')),
            h('td', {}, w.labels.join(', ') || '-'),
          );
          const pick = () => void select(w.id);
          row.addEventListener('click', pick);
          row.addEventListener('keydown', (e) => e.key === 'Enter' && pick());
          return row;
        }),
      ),
    ),
  );
  const prev = h('button', { type: 'button', disabled: offset === 0 }, 'Previous');
  const next = h('button', { type: 'button', disabled: offset + PAGE >= page.total }, 'Next');
  prev.addEventListener('click', () => ((offset = Math.max(0, offset - PAGE)), void loadWorkers()));
  next.addEventListener('click', () => ((offset += PAGE), void loadWorkers()));
  fill(view.pager, prev, h('span', { class: 'muted' }, page.total === 0 ? 'no workers enrolled' : `${offset + 1}–${Math.min(offset + PAGE, page.total)} of ${page.total}`), next);
}

async function select(id: string): Promise<void> {
  if (!view) return;
  selected = id;
  const w = await api(`/v1/workers/${encodeURIComponent(id)}`, WorkerInfo);
  const hw = w.hardware;
  const rows: [string, string][] = [
    ['Name', w.name],
    ['Id', w.id],
    ['State', w.pausedReason ? `${w.state}: ${w.pausedReason}` : w.state],
    ['Connected over', w.transport ?? '-'],
    ['Version', w.appVersion ?? '-'],
    ['Last seen', ago(w.lastSeen)],
    ['CPU', hw ? `${hw.cpu.brand ?? '?'}, ${hw.cpu.threads ?? '?'} threads` : '-'],
    ['Memory', hw?.memory.totalBytes ? `${(hw.memory.totalBytes / 2 ** 30).toFixed(1)} GiB` : '-'],
    ['OS', hw ? `${hw.os.distro ?? hw.os.platform} ${hw.os.release ?? ''} (${hw.os.arch})` : '-'],
    ['GPUs', hw && hw.gpus.length > 0 ? hw.gpus.map((g) => `${g.model ?? g.vendor ?? 'GPU'}${g.vramMiB ? ` (${g.vramMiB} MiB)` : ''}`).join('; ') : 'none'],
    ['LLM on', hw?.llm ? (hw.llm.gpu ?? 'CPU') : '-'],
    ['Labels', w.labels.join(', ') || '-'],
    ['Enrolled', new Date(w.enrolledAt).toLocaleString()],
    ['Certificate expires', new Date(w.certNotAfter).toLocaleString()],
  ];
  fill(view.detail, h('dl', { class: 'detail' }, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
  for (const tr of view.workers.querySelectorAll('tbody tr')) tr.setAttribute('aria-selected', String(tr.getAttribute('data-id') === id));
}

/** Reads the event stream for as long as the page is open, reconnecting after a loss. */
async function follow(): Promise<void> {
  for (;;) {
    try {
      const res = await fetch('/v1/fleet/events', { headers: { authorization: `Bearer ${sessionStorage.getItem(KEY) ?? ''}` } });
      if (res.status === 401 || res.status === 403) return askForKey('The key was refused; it may have been revoked.');
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith('data: ')) {
            show(FleetSummary.parse(JSON.parse(block.slice(6))));
            void loadWorkers().catch(() => undefined);
          }
        }
      }
    } catch {
      // Shown below; the loop tries again.
    }
    live.textContent = 'reconnecting…';
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

if (sessionStorage.getItem(KEY)) void start();
else askForKey();
