/**
 * Node entry of the client library: the same client with the `ws` package as its WebSocket
 * (Node 20 has no global WebSocket), so an API key can go in the Authorization header.
 */
import WebSocket from 'ws';
import { connect as connectWith, type ChatClient, type ConnectOptions, type WebSocketLike } from './client.ts';

export * from './client.ts';

/** Connects from Node. See {@link connectWith} for the options. */
export function connect(options: Omit<ConnectOptions, 'createSocket'>): Promise<ChatClient> {
  return connectWith({
    ...options,
    createSocket: (url, headers) => new WebSocket(url, { headers }) as unknown as WebSocketLike,
  });
}
