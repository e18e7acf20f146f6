/**
 * Entry of the status window bundle (scripts/build-renderer.mjs makes
 * dist/renderer/renderer.js of it): pick the host's bridge and start.
 *
 *   <script src="renderer.js" defer></script>   in index.html; nothing inline (the CSP forbids it)
 */
import { pickBridge } from './bridge.js';
import { startApp } from './app.js';
import { h } from './dom.js';

const root = document.getElementById('app');
if (root) {
  const bridge = pickBridge(window);
  if (bridge) startApp(root, bridge);
  else
    root.replaceChildren(
      h(
        'p',
        { id: 'notice', class: 'notice' },
        'This page needs its access token: open the status address the worker printed, the one that ends in #token=….',
      ),
    );
}
