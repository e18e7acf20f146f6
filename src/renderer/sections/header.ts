/** The top of the window: connection state and coordinator, which worker this is, and its hardware. */
import type { WorkerView } from '../../protocol/control.js';
import { changeTracker, fill, h } from '../dom.js';
import { connectionTone, connectionWords } from '../words.js';
import type { Section } from './section.js';

export function headerSection(): Section {
  const dot = h('span', { class: 'dot', 'aria-hidden': 'true' });
  const state = h('strong', { id: 'connection-state' });
  const coordinator = h('span', { id: 'connection-coordinator', class: 'muted' });
  const detail = h('p', { id: 'connection-detail', class: 'muted detail' });
  const facts = h('dl', { class: 'facts' });
  const el = h('header', { class: 'header' }, h('div', { class: 'status-line' }, dot, state, coordinator), detail, facts);
  const changed = changeTracker();

  return {
    el,
    update(view) {
      const { connection, worker, hardware } = view;
      if (!changed({ connection, worker, hardware })) return;
      dot.className = `dot ${connectionTone(connection.state)}`;
      state.textContent = connectionWords(connection.state);
      coordinator.textContent = connection.coordinator ?? '';
      detail.textContent = connection.detail ?? '';
      detail.hidden = connection.detail === null;
      fill(facts, ...workerFacts(worker), ...hardwareFacts(hardware));
    },
  };
}

function workerFacts(worker: WorkerView['worker']): Node[] {
  if (!worker) return [];
  return [h('dt', {}, 'Worker'), h('dd', { id: 'worker' }, worker.name, ' ', h('code', { id: 'worker-id' }, worker.id))];
}

function hardwareFacts(hardware: WorkerView['hardware']): Node[] {
  if (!hardware) return [];
  return [h('dt', {}, 'Machine'), h('dd', { id: 'hardware' }, hardware.summary, h('span', { class: 'muted' }, ` · ${hardware.os}`))];
}
