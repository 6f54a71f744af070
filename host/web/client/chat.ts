/**
 * The chat page (`/`). It connects with a ticket — from the URL (`/#ticket=…`, what a tenant's own
 * app would hand its user), or minted with a tenant key (`/#key=…`, the demo and the console's
 * "Open chat") — and streams each answer as it comes, then shows its sources with their snippets,
 * whether it came from the cache (and how similar the cached question was), and thumbs for
 * feedback. Every failure is shown with what it means; nothing fails silently.
 */
import { ChatError, connect, type AskResult, type ChatClient, type ClientStatus } from '../../../sdk/client/browser.ts';
import { LIMITS } from '../../limits.ts';
import { api, ApiError } from './api.ts';
import { forget, remember, remembered, takeFromFragment } from './credentials.ts';
import { describeError } from './describe.ts';
import { byId, formatMs, h, icon, replace } from './dom.ts';

const KEY_STORE = 'ctx.chat.key';

const statusEl = byId('status');
const messagesEl = byId('messages');
const connectEl = byId('connect');
const questionEl = byId<HTMLTextAreaElement>('question');
const sendEl = byId<HTMLButtonElement>('send');
const newChatEl = byId<HTMLButtonElement>('new-chat');
questionEl.maxLength = LIMITS.askTextCharsMax;

let client: ChatClient | undefined;
let key: string | undefined;
let ticket: string | undefined;

function setStatus(state: 'offline' | 'connecting' | 'ready', text: string): void {
  statusEl.dataset['state'] = state;
  statusEl.textContent = text;
  const ready = state === 'ready';
  questionEl.disabled = !ready;
  sendEl.disabled = !ready;
  newChatEl.disabled = state === 'connecting' || key === undefined;
}

/** An error bubble: what happened, what to do, and the host's own words. */
function errorView(error: unknown): HTMLElement {
  const code = error instanceof ChatError || error instanceof ApiError ? error.code : 'INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  const view = describeError(code);
  return h('div', { class: 'notice error', role: 'alert', 'data-code': code }, h('strong', {}, view.title), h('p', {}, view.hint), h('p', { class: 'detail' }, h('code', {}, code), ' ', message));
}

/** A fresh single-use ticket, minted with the key (every connection and reconnection needs one). */
async function mintTicket(): Promise<string> {
  if (key === undefined) throw new ChatError('AUTH_MISSING_KEY', 'no key to mint a ticket with');
  return (await api<{ ticket: string }>('/v1/tickets', { method: 'POST', key })).ticket;
}

/**
 * Connects: with the key, the client mints a ticket per connection and so can reconnect after a
 * drop by itself; with only a ticket from the URL, it connects once.
 */
async function start(): Promise<void> {
  setStatus('connecting', 'Connecting…');
  connectEl.hidden = true;
  const once = ticket;
  ticket = undefined;
  // Status reports start during connect(), before it resolves: until then `connected` is undefined.
  let connected: ChatClient | undefined;
  try {
    connected = await connect({
      url: location.origin,
      ...(key !== undefined ? { getTicket: mintTicket } : once !== undefined ? { ticket: once } : {}),
      onStatus: (status) => onStatus(connected, status),
    });
    client = connected;
    setStatus('ready', 'Connected');
    questionEl.focus();
  } catch (error) {
    setStatus('offline', 'Not connected');
    if (error instanceof ApiError && error.code.startsWith('AUTH_')) {
      key = undefined;
      forget(KEY_STORE);
    }
    messagesEl.append(errorView(error), reconnectButton());
  }
}

/** Follows the client's state; `connected` is undefined until the first connection resolved. */
function onStatus(connected: ChatClient | undefined, status: ClientStatus): void {
  if (connected !== undefined && client !== connected) return;
  if (status.state === 'ready') setStatus('ready', status.reconnected ? 'Reconnected · new session' : 'Connected');
  else if (status.state === 'reconnecting') setStatus('connecting', `Reconnecting (attempt ${status.attempt})…`);
  else if (connected !== undefined) {
    client = undefined;
    setStatus('offline', 'Disconnected');
    if (status.error !== undefined && status.error.code !== 'CLIENT_CLOSED') messagesEl.append(errorView(status.error));
    else messagesEl.append(errorView(new ChatError('CLIENT_CLOSED', `the connection closed (${status.code}${status.reason === '' ? '' : ` ${status.reason}`})`)));
    messagesEl.append(reconnectButton());
  }
}

/** A button to connect again with the key, or the connect form when there is no key. */
function reconnectButton(): HTMLElement {
  if (key === undefined) {
    connectEl.hidden = false;
    return h('span');
  }
  const button = h('button', { type: 'button', class: 'ghost', onclick: () => {
    button.remove();
    void start();
  } }, 'Reconnect');
  return button;
}

/** Asks one question: the user's bubble, then the answer streaming into its own. */
async function ask(text: string, active: ChatClient): Promise<void> {
  messagesEl.append(h('div', { class: 'msg user' }, h('div', { class: 'bubble' }, text)));
  const textEl = h('div', { class: 'text' });
  const inner = h('div', { class: 'bubble' }, textEl);
  const bubble = h('div', { class: 'msg assistant', 'data-state': 'streaming' }, inner);
  messagesEl.append(bubble);
  bubble.scrollIntoView({ block: 'end' });
  const handle = active.ask(text);
  try {
    for await (const token of handle.tokens) {
      textEl.append(token);
      bubble.scrollIntoView({ block: 'end' });
    }
    const answer = await handle.result;
    bubble.dataset['state'] = 'done';
    replace(textEl, ...renderAnswer(answer));
    bubble.append(meta(answer), sourcesList(answer), feedback(active, handle.id));
  } catch (error) {
    bubble.dataset['state'] = 'error';
    // Whatever streamed before the failure stays visible, marked as cut short.
    if (textEl.textContent !== '') textEl.classList.add('cut');
    else inner.remove();
    bubble.append(errorView(error));
  }
  bubble.scrollIntoView({ block: 'end' });
}

/** The answer text with its `[chunkId]` citations turned into numbered links to the sources. */
function renderAnswer(answer: AskResult): (Node | string)[] {
  if (answer.answer.trim() === '') return [h('em', {}, 'No answer was given.')];
  const numbers = new Map(answer.sources.map((source, index) => [source.chunkId, index + 1]));
  const parts: (Node | string)[] = [];
  let last = 0;
  for (const match of answer.answer.matchAll(/\[([^[\]\s]{1,256})\]/g)) {
    const number = numbers.get(match[1] ?? '');
    if (number === undefined) continue;
    parts.push(answer.answer.slice(last, match.index));
    parts.push(h('a', { class: 'cite', href: `#source-${answer.id}-${number}`, title: match[1] }, String(number)));
    last = match.index + match[0].length;
  }
  parts.push(answer.answer.slice(last));
  return parts;
}

function meta(answer: AskResult): HTMLElement {
  const hit = answer.cache === 'hit';
  const similarity = answer.similarity ?? 1;
  const badge = hit
    ? h('span', { class: 'badge hit', 'data-similarity': similarity.toFixed(3), title: 'Served from the semantic cache' },
        `Cached · ${answer.cacheMatch === 'semantic' ? `${(similarity * 100).toFixed(1)}% similar question` : 'same question'}`)
    : h('span', { class: 'badge', title: 'Made for this question' }, 'Fresh answer');
  const total = answer.timings['totalMs'];
  return h('div', { class: 'meta' }, badge, total === undefined ? null : h('span', { class: 'timing' }, formatMs(total)));
}

function sourcesList(answer: AskResult): HTMLElement {
  if (answer.sources.length === 0) return h('p', { class: 'sources-empty' }, 'No sources.');
  return h(
    'details',
    { class: 'sources', open: true },
    h('summary', {}, `Sources (${answer.sources.length})`),
    h(
      'ol',
      {},
      ...answer.sources.map((source, index) =>
        h(
          'li',
          { id: `source-${answer.id}-${index + 1}`, 'data-chunk': source.chunkId },
          h('div', { class: 'source-head' }, h('span', { class: 'source-title' }, source.title === '' ? source.docId : source.title), h('code', { class: 'source-id' }, source.chunkId)),
          source.snippet === undefined || source.snippet === '' ? null : h('p', { class: 'snippet' }, source.snippet),
        ),
      ),
    ),
  );
}

function feedback(active: ChatClient, askId: string): HTMLElement {
  const box = h('div', { class: 'feedback' }, h('span', {}, 'Was this helpful?'));
  const rate = (rating: 1 | -1): void => {
    replace(box, h('span', {}, 'Sending…'));
    active.feedback(askId, rating).then(
      () => replace(box, h('span', { class: 'thanks', 'data-rating': rating }, rating === 1 ? 'Thanks — glad it helped.' : 'Thanks — noted.')),
      (error: unknown) => replace(box, errorView(error)),
    );
  };
  box.append(
    h('button', { type: 'button', class: 'icon', 'aria-label': 'Helpful', title: 'Helpful', onclick: () => rate(1) }, icon('up')),
    h('button', { type: 'button', class: 'icon', 'aria-label': 'Not helpful', title: 'Not helpful', onclick: () => rate(-1) }, icon('down')),
  );
  return box;
}

byId<HTMLFormElement>('ask-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = questionEl.value.trim();
  if (text === '' || client === undefined) return;
  questionEl.value = '';
  void ask(text, client);
});
questionEl.addEventListener('keydown', (event) => {
  // Enter sends, Shift+Enter breaks the line, as in most chat apps.
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    byId<HTMLFormElement>('ask-form').requestSubmit();
  }
});
byId<HTMLFormElement>('connect-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const value = byId<HTMLInputElement>('credential').value.trim();
  if (value === '') return;
  if (value.startsWith('tkt_')) ticket = value;
  else {
    key = value;
    remember(KEY_STORE, value);
  }
  replace(messagesEl);
  void start();
});
newChatEl.addEventListener('click', () => {
  // A new session: fresh plugin instances and no history on the host, so a first turn again.
  const old = client;
  client = undefined;
  old?.close();
  replace(messagesEl);
  void start();
});

const fragment = takeFromFragment(['key', 'ticket']);
ticket = fragment.get('ticket');
key = fragment.get('key') ?? (ticket === undefined ? remembered(KEY_STORE) : undefined);
if (fragment.has('key') && key !== undefined) remember(KEY_STORE, key);
if (key !== undefined || ticket !== undefined) void start();
else {
  setStatus('offline', 'Not connected');
  connectEl.hidden = false;
}
