/**
 * Builds DOM nodes without innerHTML: data only ever lands in text nodes and
 * attribute values, so nothing the worker reports can become markup (and the
 * CSP forbids inline scripts and styles anyway).
 *
 *   const row = h('p', { class: 'muted' }, 'Worker ', h('code', {}, view.worker.id));
 */
export type Child = Node | string | null | undefined | false;
export type Attrs = Record<string, string | boolean | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : value);
  }
  el.append(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
  return el;
}

/** Replaces an element's children; strings become text nodes. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
}

/**
 * Remembers the last value it saw: `changed(x)` is true the first time and
 * whenever x differs (structurally) from the previous call. Sections use it to
 * rebuild only what the once-a-second poll actually changed.
 */
export function changeTracker(): (value: unknown) => boolean {
  let last: string | undefined;
  return (value) => {
    const next = JSON.stringify(value);
    if (next === last) return false;
    last = next;
    return true;
  };
}
