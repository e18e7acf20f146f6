/**
 * A labelled field with its own error line beneath, the unit both forms are
 * made of: an error from the host lands next to the field it is about.
 *
 *   const token = field('enroll-token', 'Enrollment token', { placeholder: 'gg1.…' });
 *   token.showError('the token has expired');
 */
import { h, type Attrs } from '../dom.js';

export interface Field {
  readonly el: HTMLDivElement;
  readonly input: HTMLInputElement;
  showError(message: string | null): void;
}

export function field(id: string, label: string, attrs: Attrs = {}, extra?: Node): Field {
  const error = h('p', { id: `${id}-error`, class: 'field-error', role: 'alert' });
  const input = h('input', { id, type: 'text', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': `${id}-error`, ...attrs });
  const el = h('div', { class: 'field' }, h('label', { for: id }, label), extra ? h('div', { class: 'row' }, input, extra) : input, error);
  return {
    el,
    input,
    showError(message) {
      error.textContent = message ?? '';
      input.toggleAttribute('aria-invalid', message !== null);
    },
  };
}
