/**
 * The status window: sections fed by one WorkerView, polled once a second
 * from whichever bridge the host provides, and the owner's actions sent back
 * over it.
 *
 *   const app = startApp(document.getElementById('app')!, bridge);
 *   app.stop();
 */
import type { WorkerView } from '../protocol/control.js';
import { BridgeError, type Bridge } from './bridge.js';
import { h } from './dom.js';
import { activitySection } from './sections/activity.js';
import { enrollSection } from './sections/enroll.js';
import { headerSection } from './sections/header.js';
import { jobsSection } from './sections/jobs.js';
import type { Section, Ui } from './sections/section.js';
import { settingsSection } from './sections/settings.js';

const POLL_MS = 1000;

export interface App {
  stop(): void;
}

export function startApp(root: HTMLElement, bridge: Bridge): App {
  const notice = h('p', { id: 'notice', class: 'notice', role: 'status', hidden: true });
  const footer = h('footer', { class: 'muted' });
  const ui: Ui = {
    async perform(call) {
      try {
        render(await call(bridge));
        return null;
      } catch (e) {
        return asBridgeError(e);
      }
    },
  };
  const header = headerSection();
  const enroll = enrollSection(ui);
  const enrolled: Section[] = [activitySection(ui), jobsSection(), settingsSection(ui)];
  root.replaceChildren(header.el, notice, enroll.el, ...enrolled.map((s) => s.el), footer);
  for (const s of [enroll, ...enrolled]) s.el.hidden = true;

  function render(view: WorkerView): void {
    notice.hidden = true;
    root.setAttribute('aria-busy', 'false');
    const firstRun = view.connection.state === 'not-enrolled' || view.connection.state === 'enrolling';
    enroll.el.hidden = !firstRun;
    header.update(view);
    for (const s of enrolled) {
      s.el.hidden = firstRun;
      if (!firstRun) s.update(view);
    }
    footer.textContent = `GoGrid Worker ${view.appVersion}`;
  }

  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  // One poll at a time: the next starts a second after the last answer, never piling up behind a slow host.
  const poll = async () => {
    try {
      render(await bridge.status());
    } catch (e) {
      notice.textContent = asBridgeError(e).message;
      notice.hidden = false;
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  };
  void poll();

  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function asBridgeError(e: unknown): BridgeError {
  if (e instanceof BridgeError) return e;
  // IPC failures arrive as plain Errors ("Error invoking remote method …").
  return new BridgeError(null, e instanceof Error ? e.message : String(e));
}
