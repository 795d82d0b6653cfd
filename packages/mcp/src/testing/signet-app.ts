// The example Signet server (`pnpm serve`'s app: batch_sum, start_long_task) started in-process
// for the bridge's tests, on a free port with the memory store, and the credentials files a
// bridge is given: the client's own, and one whose secret the server does not know.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient, jobHandle, type SignetCredentials } from '@signet/client';
import type { ContractSetOf, SignetRouter } from '@signet/contracts';
import { credentialsOf } from '@signet/protocol';
import { generateKeyringFile, generateSecret } from '@signet/server';
import { type AppServer, loadConfig, startApp } from '@signet/server-app';
import pino from 'pino';

export const SERVER_ID = 'mcp-bridge-test';
export const CLIENT_ID = 'client-001';

export interface TestSignet {
  url: string;
  credentials: SignetCredentials;
  /** SIGNET_CREDENTIALS for the client. */
  credentialsPath: string;
  /** The same client with a secret the server does not know. */
  wrongCredentialsPath: string;
  /**
   * Follows a job with a Signet client of the same credentials (another process than the
   * bridge's) until it ends: its output, or the JobFailedError it ended with.
   */
  jobEnd(jobId: string): Promise<unknown>;
  /** Cancels a job as its owner, from outside the bridge. */
  cancel(jobId: string): Promise<void>;
  close(): Promise<void>;
}

function writePrivate(path: string, value: unknown): string {
  writeFileSync(path, JSON.stringify(value), { mode: 0o600 });
  return path;
}

export async function startTestSignet(): Promise<TestSignet> {
  const dir = mkdtempSync(join(tmpdir(), 'signet-mcp-'));
  const keyring = generateKeyringFile({ serverId: SERVER_ID, clientIds: [CLIENT_ID] });
  const keyringPath = writePrivate(join(dir, 'keyring.json'), keyring);
  let server: AppServer;
  try {
    server = await startApp(
      loadConfig({
        SIGNET_STORE: 'memory:',
        SIGNET_PORT: '0',
        SIGNET_KEYRING: keyringPath,
        SIGNET_AUDIT: 'off',
      }),
      pino({ level: 'silent' }),
    );
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const file = credentialsOf(keyring, CLIENT_ID)!;
  const wrong = { ...file, key: { ...file.key, secret: generateSecret() } };
  const credentials = { serverId: file.server_id, clientId: file.client_id, key: file.key };
  const client = createSignetClient<SignetRouter<ContractSetOf<[]>>>({
    url: server.url,
    ...credentials,
  });
  return {
    url: server.url,
    credentials,
    jobEnd: (jobId) =>
      jobHandle(client, { job_id: jobId })
        .result()
        .catch((error: unknown) => error),
    cancel: async (jobId) => {
      await jobHandle(client, { job_id: jobId }).cancel();
    },
    credentialsPath: writePrivate(join(dir, 'credentials.json'), file),
    wrongCredentialsPath: writePrivate(join(dir, 'wrong-credentials.json'), wrong),
    async close() {
      await server.close({ graceMs: 0 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
