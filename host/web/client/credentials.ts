/**
 * Keys and tickets in the pages. A link may carry one in the URL fragment (`/#key=…`,
 * `/#ticket=…`): the fragment is never sent to a server, and the page removes it from the address
 * bar at once. Keys are kept in sessionStorage — gone when the tab closes — and sent only to this
 * host's API.
 */

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
