/**
 * First run: the coordinator's address and an enrollment token. Checked here
 * for the obvious (empty fields) and then by the host; a refusal shows next
 * to the field it is about and nothing is saved.
 */
import { EnrollForm } from '../../protocol/control.js';
import { h } from '../dom.js';
import { fieldForCode } from '../words.js';
import { field, type Field } from './form.js';
import type { Section, Ui } from './section.js';

const EMPTY: Record<'coordinator' | 'token', string> = {
  coordinator: "Enter the coordinator's address, e.g. grid.example.com:8443",
  token: 'Paste the enrollment token your administrator gave you (it starts with gg1.)',
};

export function enrollSection(ui: Ui): Section {
  const fields = {
    coordinator: field('enroll-coordinator', 'Coordinator address', { placeholder: 'grid.example.com:8443' }),
    token: field('enroll-token', 'Enrollment token', { placeholder: 'gg1.…' }),
    name: field('enroll-name', 'Name of this computer (optional)'),
  } satisfies Record<keyof EnrollForm, Field>;
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Enroll');
  const formError = h('p', { id: 'enroll-error', class: 'form-error', role: 'alert' });
  const form = h('form', { id: 'enroll-form', novalidate: true }, fields.coordinator.el, fields.token.el, fields.name.el, h('div', { class: 'buttons' }, submit), formError);
  const el = h(
    'section',
    { class: 'enroll', 'aria-labelledby': 'enroll-title' },
    h('h2', { id: 'enroll-title' }, 'Join a grid'),
    h('p', { class: 'muted' }, "This computer is not part of a grid yet. Ask the grid's administrator for its address and an enrollment token."),
    form,
  );

  const clearErrors = () => {
    for (const f of Object.values(fields)) f.showError(null);
    formError.textContent = '';
  };

  form.addEventListener('submit', async (event) => {
    // Always: the CSP's form-action 'none' would refuse a real submission.
    event.preventDefault();
    clearErrors();
    const name = fields.name.input.value.trim();
    const parsed = EnrollForm.safeParse({
      coordinator: fields.coordinator.input.value,
      token: fields.token.input.value,
      ...(name === '' ? {} : { name }),
    });
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const key = issue.path[0];
        if (key === 'coordinator' || key === 'token') fields[key].showError(fields[key].input.value.trim() === '' ? EMPTY[key] : issue.message);
        else if (key === 'name') fields.name.showError(issue.message);
      }
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Enrolling…';
    const failed = await ui.perform((bridge) => bridge.enroll(parsed.data));
    submit.disabled = false;
    submit.textContent = 'Enroll';
    if (!failed) return;
    const at = fieldForCode(failed.code);
    if (at) fields[at].showError(failed.message);
    else formError.textContent = failed.message;
  });

  return {
    el,
    // The form is built once and keeps what the owner typed; the window shows or hides it.
    update() {},
  };
}
