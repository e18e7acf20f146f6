/** Whether jobs may run now and why, in one sentence, with the owner's pause controls. */
import type { ControlAction } from '../../protocol/control.js';
import { changeTracker, fill, h } from '../dom.js';
import { activityTitle } from '../words.js';
import type { Section, Ui } from './section.js';

export function activitySection(ui: Ui): Section {
  const title = h('h2', { id: 'activity-title' });
  const reason = h('p', { id: 'activity-reason' });
  const buttons = h('div', { class: 'buttons' });
  const error = h('p', { id: 'activity-error', class: 'form-error', role: 'alert' });
  const el = h('section', { class: 'activity', 'aria-labelledby': 'activity-title' }, title, reason, buttons, error);
  const changed = changeTracker();

  const button = (label: string, action: ControlAction, primary = false) => {
    const b = h('button', { type: 'button', 'data-action': action.action, class: primary ? 'primary' : undefined }, label);
    b.addEventListener('click', async () => {
      for (const other of buttons.querySelectorAll('button')) other.disabled = true;
      const failed = await ui.perform((bridge) => bridge.act(action));
      for (const other of buttons.querySelectorAll('button')) other.disabled = false;
      error.textContent = failed?.message ?? '';
    });
    return b;
  };

  return {
    el,
    update(view) {
      const { policy } = view;
      const connection = view.connection.state;
      const jobRunning = view.jobs.running.length > 0;
      if (!changed({ policy, connection, jobRunning })) return;
      title.textContent = activityTitle(policy, connection);
      title.className = policy.run ? 'running' : 'paused';
      reason.textContent = policy.reason;
      const active = policy.control.state === 'active';
      fill(
        buttons,
        active ? button('Pause', { action: 'pause' }) : button('Resume', { action: 'resume' }, true),
        button('Snooze 1 hour', { action: 'snooze', minutes: 60 }),
        active && jobRunning && button('Finish current job, then pause', { action: 'finish' }),
      );
    },
  };
}
