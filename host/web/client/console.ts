/**
 * The tenant console (`/console`), for a tenant's administrator: sign in with the tenant's API
 * key, then upload documents and see the corpus, upload plugins and read their vetting reports,
 * watch the cache and the recent asks with their timings by stage, edit the settings, and open
 * the chat with a fresh ticket. Everything goes through the same HTTP API as any client.
 */
import { api } from './api.ts';
import { loadAsks, loadCache, loadSettings, setupCache, setupSettings } from './console-activity.ts';
import { setupDocuments, type PanelContext } from './console-documents.ts';
import { loadPluginLog, loadPlugins } from './console-plugins.ts';
import { forget, remember, wireSignIn } from './credentials.ts';
import { byId, replace } from './dom.ts';
import { errorNotice } from './notice.ts';

const KEY_STORE = 'ctx.console.key';
/** How often the recent asks and cache counters refresh while the page is visible. */
const REFRESH_MS = 5000;

const signIn = byId('sign-in');
const panels = byId('panels');

/** Checks the key with a cheap authenticated call, then shows the panels. */
async function open(key: string): Promise<void> {
  try {
    await api('/v1/config', { key });
  } catch (error) {
    forget(KEY_STORE);
    show(false);
    replace(byId('sign-in-status'), errorNotice(error, 'Sign-in'));
    return;
  }
  remember(KEY_STORE, key);
  show(true);
  const context: PanelContext = { key, refreshAll: () => void refresh() };
  const reloadCorpus = setupDocuments(context);
  setupCache(context);
  setupSettings(context);
  byId('open-chat').addEventListener('click', () => void openChat(key));
  const refresh = async (): Promise<void> => {
    await Promise.all([reloadCorpus(), loadPlugins(context), loadPluginLog(context), loadCache(context), loadAsks(context)]);
  };
  await Promise.all([refresh(), loadSettings(context)]);
  setInterval(() => {
    if (document.visibilityState === 'visible') void Promise.all([loadAsks(context), loadCache(context), loadPluginLog(context)]);
  }, REFRESH_MS);
}

/** Mints a single-use ticket and opens the chat page with it (the key itself never leaves this tab). */
async function openChat(key: string): Promise<void> {
  try {
    const { ticket } = await api<{ ticket: string }>('/v1/tickets', { method: 'POST', key });
    window.open(`/#ticket=${encodeURIComponent(ticket)}`, '_blank', 'noopener');
  } catch (error) {
    replace(byId('upload-result'), errorNotice(error, 'Open chat'));
  }
}

function show(signedIn: boolean): void {
  signIn.hidden = signedIn;
  panels.hidden = !signedIn;
  byId('open-chat').hidden = !signedIn;
  byId('sign-out').hidden = !signedIn;
}

wireSignIn({ storeKey: KEY_STORE, path: '/console', open, whenSignedOut: () => { show(false); } });
