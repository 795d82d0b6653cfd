import {
  createSignetClient,
  jobHandle,
  type SignetCredentials,
  type SignetRouter,
  signetReason,
  signRequest,
  verifyRefusal,
  verifyResponse,
} from '@signet/client';
import type { RequestEnvelope } from '@signet/protocol';
import { type Tools, tools } from '@signet/server-app/contracts';
import { progressPrinter } from './progress-bar.ts';

export interface AgentOptions extends SignetCredentials {
  url: string;
  out?: NodeJS.WriteStream;
}

export interface AgentReport {
  identity: { server_id: string; fingerprint: string };
  sum: { count: number; total: number };
  jobId: string;
  progressSeen: number;
  output: Record<string, unknown>;
  tampered: { status: number; reason: string };
  replayed: { status: number; reason: string };
}

/** The tutorial's flow, over HTTP, with every call signed and every answer verified. */
export async function runAgent(opts: AgentOptions): Promise<AgentReport> {
  const out = opts.out ?? process.stdout;
  const say = (line: string) => out.write(`${line}\n`);
  const client = createSignetClient<SignetRouter<Tools>>(opts);

  const identity = await client.server_identity.mutate({});
  say(`1. server_identity: ${identity.server_id}, contracts ${identity.fingerprint.slice(0, 19)}…`);
  say(`   tools: ${identity.capabilities.tools.join(', ')}`);

  const sum = await client.batch_sum.mutate({ numbers: [1, 2, 3, 4.5] });
  say(`2. batch_sum [1, 2, 3, 4.5] → count ${sum.count}, total ${sum.total}`);

  const payload = { report: 'quarterly', rows: 42, tags: ['signed', 'async'] };
  const ticket = await client.start_long_task.mutate({ seconds: 3, payload });
  const job = jobHandle(client, ticket);
  say(`3. start_long_task (3 s) → job ${job.id}; watching its progress:`);
  const bar = progressPrinter(out);
  let progressSeen = 0;
  const output = await job.result({
    onProgress: (progress) => {
      progressSeen++;
      bar.update(progress);
    },
  });
  bar.done();
  say(`   done → ${JSON.stringify(output)}`);

  say('4. an attacker changes a signed call in transit:');
  const tampered = await sendRaw(opts, 'batch_sum', { numbers: [1, 2, 3] }, (envelope) => ({
    ...envelope,
    args: { numbers: [1000, 2000, 3000] },
  }));
  say(`   refused: HTTP ${tampered.status} ${tampered.reason}`);

  say('5. an attacker replays a captured call:');
  const captured = signed(opts, 'batch_sum', { numbers: [7] });
  await post(opts, 'batch_sum', captured);
  const replayed = await post(opts, 'batch_sum', captured);
  say(`   refused: HTTP ${replayed.status} ${replayed.reason}`);

  return {
    identity,
    sum,
    jobId: job.id,
    progressSeen,
    output,
    tampered,
    replayed,
  };
}

/** A call signed as the typed client signs it (the raw HTTP below shows what attackers do). */
function signed(opts: AgentOptions, tool: string, args: Record<string, unknown>) {
  return signRequest(opts, tool, args, { now: Date.now() });
}

/** POSTs a call; a signed answer is verified as the typed client verifies it (for this call). */
async function post(opts: AgentOptions, tool: string, request: RequestEnvelope) {
  const response = await fetch(`${opts.url}/trpc/${tool}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request),
  });
  const json = (await response.json()) as {
    result?: { data: unknown };
    error?: { data: { reason?: string; envelope?: unknown } };
  };
  if (json.result) verifyResponse(opts, request, json.result.data);
  else if (json.error?.data.envelope) verifyRefusal(opts, request, json.error.data);
  return { status: response.status, reason: json.error?.data.reason ?? 'accepted' };
}

async function sendRaw(
  opts: AgentOptions,
  tool: string,
  args: Record<string, unknown>,
  change: (envelope: RequestEnvelope) => RequestEnvelope,
) {
  return post(opts, tool, change(signed(opts, tool, args)));
}

export { signetReason, tools };
