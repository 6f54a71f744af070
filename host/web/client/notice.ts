/**
 * Notices the consoles show: an error with its meaning (describe.ts) and the host's message, or a
 * short confirmation. And a two-step button for destructive actions (a native confirm() dialog
 * blocks the page and is easy to click through).
 */
import { ApiError } from './api.ts';
import { describeError } from './describe.ts';
import { h } from './dom.ts';

/** An error notice: title, hint, and the code with the host's message. */
export function errorNotice(error: unknown, context?: string): HTMLElement {
  const code = error instanceof ApiError ? error.code : 'INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  const view = error instanceof ApiError ? describeError(code) : { title: 'Could not do that', hint: '' };
  return h(
    'div',
    { class: 'notice error', role: 'alert', 'data-code': code },
    h('strong', {}, context === undefined ? view.title : `${context}: ${view.title}`),
    view.hint === '' ? null : h('p', {}, view.hint),
    h('p', { class: 'detail' }, error instanceof ApiError ? h('code', {}, code) : null, ' ', message),
  );
}

/** A confirmation notice. */
export function okNotice(text: string): HTMLElement {
  return h('div', { class: 'notice ok', role: 'status' }, text);
}

/**
 * A button that asks to be clicked again (within 4 s) before it acts.
 * @example confirmButton('Delete', 'Delete for good?', () => remove(id))
 */
export function confirmButton(label: string, confirmLabel: string, action: () => Promise<void> | void): HTMLButtonElement {
  let armed: ReturnType<typeof setTimeout> | undefined;
  const button = h('button', { type: 'button', class: 'ghost danger-text' }, label);
  button.addEventListener('click', () => {
    if (armed === undefined) {
      button.textContent = confirmLabel;
      button.classList.add('armed');
      armed = setTimeout(() => {
        armed = undefined;
        button.textContent = label;
        button.classList.remove('armed');
      }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = undefined;
    button.disabled = true;
    void Promise.resolve(action()).finally(() => {
      button.disabled = false;
      button.textContent = label;
      button.classList.remove('armed');
    });
  });
  return button;
}
