import type { Readable, Writable } from 'node:stream';
import {
  StdioServerTransport,
  serveStdio as serveMcpStdio,
} from '@modelcontextprotocol/server/stdio';
import type { SignetBridge } from './bridge.ts';

export interface StdioBridgeOptions {
  /** Default `process.stdin`. */
  stdin?: Readable;
  /** Default `process.stdout`: it carries JSON-RPC and nothing else. */
  stdout?: Writable;
  /** The largest JSON-RPC message read, in bytes (default 4 MiB); past it the connection ends. */
  maxMessageBytes?: number;
  onerror?: (error: Error) => void;
}

export interface StdioBridge {
  /** Settles when stdin ends: the host closed the connection. */
  readonly ended: Promise<void>;
  /** Ends the connection; calls still running are aborted (and their jobs cancelled). */
  close(): Promise<void>;
}

/**
 * Serves the bridge over stdio, as a host that launches it as a child process expects. The SDK
 * aborts a call's handler on `notifications/cancelled` and when the connection closes; the
 * bridge then cancels the call's Signet job.
 */
export function serveStdio(bridge: SignetBridge, options: StdioBridgeOptions = {}): StdioBridge {
  const stdin = options.stdin ?? process.stdin;
  const stdout = options.stdout ?? process.stdout;
  const ended = new Promise<void>((resolve) => {
    stdin.once('end', resolve);
    stdin.once('close', resolve);
  });
  const transport = new StdioServerTransport(stdin, stdout, {
    maxBufferSize: options.maxMessageBytes ?? 4 * 1024 * 1024,
  });
  const handle = serveMcpStdio(() => bridge.createServer(), {
    transport,
    ...(options.onerror ? { onerror: options.onerror } : {}),
  });
  return { ended, close: () => handle.close() };
}
