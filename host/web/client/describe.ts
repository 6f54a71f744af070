/**
 * What an error means to the person looking at the page: a short title and what to do, per
 * error code (the host's catalog, plus the chat client's own connection codes). The host's
 * message, which names the limit or setting, is shown beneath it.
 */
import type { ChatErrorCode } from '../../../sdk/client/browser.ts';

/** The host's codes and the chat client's own (sdk/client/errors.ts), and the API helper's network failure. */
type Code = ChatErrorCode | 'NETWORK';

/** How a page shows an error. */
export interface ErrorView {
  title: string;
  hint: string;
}

const VIEWS: Partial<Record<Code, ErrorView>> = {
  AUTH_MISSING_KEY: { title: 'No key given', hint: 'Enter an API key (or, for the chat, a ticket).' },
  AUTH_INVALID_KEY: { title: 'Key not accepted', hint: 'The key or ticket is unknown, revoked or expired. Tickets work once, for 60 seconds.' },
  CONFIG_INVALID: { title: 'Setting refused', hint: 'Nothing was changed; the message names the setting.' },
  TENANT_SESSION_LIMIT: { title: 'Too many open chats', hint: 'This workspace has its maximum number of live chats. Close one, or try again shortly.' },
  TENANT_ASK_RATE_LIMIT: { title: 'Too many questions', hint: 'This workspace asked more questions in the last minute than its quota allows. Wait a moment and ask again.' },
  STORAGE_ENV_LIMIT: { title: 'The host is busy', hint: 'Try again in a moment.' },
  STORAGE_QUOTA: { title: 'Storage quota reached', hint: 'Delete documents or plugin versions to make room.' },
  DOCUMENT_INVALID: { title: 'Document refused', hint: 'Nothing from this batch was stored; the message names the document and the problem.' },
  HTTP_BODY_TOO_LARGE: { title: 'Upload too large', hint: 'Split it into smaller files.' },
  PROTOCOL_TOO_MANY_IN_FLIGHT: { title: 'Still answering', hint: 'Wait for the answers in progress before asking more.' },
  PROTOCOL_RATE_LIMIT: { title: 'Too many messages', hint: 'The host closed the connection after too many messages in a short time. Reconnect to go on.' },
  PROTOCOL_BAD_FRAME: { title: 'Request refused', hint: 'The host did not accept this request.' },
  PLUGIN_FAILED: { title: 'A plugin failed', hint: "The workspace's retrieval or prompt plugin failed on this question, so no answer was made. It restarts fresh for the next question." },
  PLUGIN_FUEL_EXHAUSTED: { title: 'A plugin ran out of time', hint: 'The plugin used its whole CPU budget on this question. It restarts fresh for the next one.' },
  PLUGIN_TIMEOUT: { title: 'A plugin was stopped', hint: 'The plugin ran past its time limit. It restarts fresh for the next question.' },
  PLUGIN_MEMORY_LIMIT: { title: 'A plugin ran out of memory', hint: 'The plugin hit its memory cap. It restarts fresh for the next question.' },
  PLUGIN_BAD_OUTPUT: { title: 'A plugin gave a bad result', hint: 'The plugin returned something the host could not use. It restarts fresh for the next question.' },
  PLUGIN_OUTPUT_LIMIT: { title: 'A plugin gave too much output', hint: 'The plugin returned more than allowed. It restarts fresh for the next question.' },
  PLUGIN_HOST_CALL_LIMIT: { title: 'A plugin made too many calls', hint: 'The plugin called the host too often. It restarts fresh for the next question.' },
  PLUGIN_LOAD_FAILED: { title: 'A plugin could not start', hint: "The workspace's plugin could not be loaded. Its administrator can roll back to an earlier version." },
  PLUGIN_BUSY: { title: 'Plugins are busy', hint: 'Try again in a moment.' },
  PLUGIN_INVALID: { title: 'Plugin refused', hint: 'It failed vetting and was not stored; the message says why.' },
  LEAK_BLOCKED: {
    title: 'Answer blocked by the leak guard',
    hint: 'The context held material that was not resolved for this workspace, so nothing was sent to the model or to you. The incident was recorded for the operator.',
  },
  MODEL_FAILED: { title: 'The model failed', hint: 'The model provider returned an error. Try again.' },
  MODEL_TIMEOUT: { title: 'The model took too long', hint: 'The model provider did not answer in time. Try again.' },
  EMBED_FAILED: { title: 'Search is unavailable', hint: 'The embeddings provider did not answer. Try again shortly.' },
  INTERNAL: { title: 'Something went wrong on the host', hint: 'The host logged the error. Try again.' },
  CLIENT_CONNECT_FAILED: { title: 'Could not connect', hint: 'The host could not be reached or refused the connection: the ticket may have been used already or expired.' },
  CLIENT_CONNECTION_LOST: { title: 'Connection lost', hint: 'The connection dropped while this was in flight; it reconnects by itself. Ask again.' },
  CLIENT_RECONNECT_FAILED: { title: 'Could not reconnect', hint: 'The connection dropped and could not be re-established. Reconnect to go on.' },
  CLIENT_CLOSED: { title: 'Connection closed', hint: 'Reconnect to go on.' },
  CLIENT_STALE_ASK: { title: 'Feedback not sent', hint: 'This answer belongs to a session before the reconnect; the host keeps feedback per session.' },
  CLIENT_BAD_RESPONSE: { title: 'Unreadable answer from the host', hint: 'The host answered with something this page cannot read.' },
  NETWORK: { title: 'The host cannot be reached', hint: 'Check that it is running, then try again.' },
};

/** The view of an error code; unknown codes get a generic one. */
export function describeError(code: string): ErrorView {
  return VIEWS[code as Code] ?? { title: 'Request failed', hint: 'The host refused the request.' };
}
