/**
 * Keys and tickets in the pages. A link may carry one in the URL fragment (`/#key=…`,
 * `/#ticket=…`): the fragment is never sent to a server, and the page removes it from the address
 * bar at once. Keys are kept in sessionStorage — gone when the tab closes — and sent only to this
 * host's API.
 */
import { byId } from './dom.ts';

/**
 * Takes the named parameters out of the URL fragment: returns them and rewrites the address
 * without them (so they are not bookmarked or shared by accident).
 */
export function takeFromFragment(names: readonly string[]): Map<string, string> {
  const params = new URLSearchParams(location.hash.slice(1));
  const taken = new Map<string, string>();
  for (const name of names) {
    const value = params.get(name);
    if (value !== null && value !== '') taken.set(name, value);
    params.delete(name);
  }
  if (taken.size > 0) {
    const rest = params.toString();
    history.replaceState(null, '', `${location.pathname}${location.search}${rest === '' ? '' : `#${rest}`}`);
  }
  return taken;
}

/** A value kept for this tab. */
export function remembered(name: string): string | undefined {
  try {
    return sessionStorage.getItem(name) ?? undefined;
  } catch {
    return undefined;
  }
}

/** Keeps a value for this tab (silently not, where storage is disabled). */
export function remember(name: string, value: string): void {
  try {
    sessionStorage.setItem(name, value);
  } catch {
    // Storage can be disabled; the page still works until it is reloaded.
  }
}

/** Forgets a kept value. */
export function forget(name: string): void {
  try {
    sessionStorage.removeItem(name);
  } catch {
    // As above.
  }
}

/**
 * Wires a key-protected page's sign-in form (`#sign-in-form` with `#key`) and its sign-out button:
 * a key from the URL fragment or this tab's storage opens the page at once; otherwise
 * `whenSignedOut` shows the form. Signing out forgets the key and reloads `path`.
 */
export function wireSignIn(options: { storeKey: string; path: string; open(key: string): Promise<void>; whenSignedOut(): void }): void {
  byId<HTMLFormElement>('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = byId<HTMLInputElement>('key').value.trim();
    if (key !== '') void options.open(key);
  });
  byId('sign-out').addEventListener('click', () => {
    forget(options.storeKey);
    location.replace(options.path);
  });
  const key = takeFromFragment(['key']).get('key') ?? remembered(options.storeKey);
  if (key === undefined) options.whenSignedOut();
  else void options.open(key);
}
