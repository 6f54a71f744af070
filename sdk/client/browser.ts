/**
 * The browser build's entry (`npm run build` bundles it, msgpackr included, to
 * `build/sdk/client.js`; the host serves it at `GET /sdk/client.js`). A page imports it as an ES
 * module, no bundler needed:
 *
 * ```html
 * <script type="module">
 *   import { connect } from 'http://127.0.0.1:8787/sdk/client.js';
 *   const client = await connect({ url: 'http://127.0.0.1:8787', getTicket: () => fetch('/chat-ticket').then((r) => r.text()) });
 * </script>
 * ```
 *
 * Browsers cannot put an API key on a WebSocket (and must never hold one): they connect with
 * tickets, which the page's own backend gets from `POST /v1/tickets` (see node.ts `requestTicket`).
 */
export { connect, ChatError, CLIENT_ERROR_CATALOG, backoffDelayMs } from './client.ts';
export type {
  AskHandle,
  AskResult,
  BackoffOptions,
  ChatClient,
  ChatErrorCode,
  ClientErrorCode,
  ClientStatus,
  ClosedInfo,
  ConnectOptions,
  HeartbeatOptions,
  ReconnectOptions,
  Source,
} from './client.ts';
