// Cases built to stop at a given check of DESIGN 1.4, with any later faults added on top, for the
// property-based security suite (security.property.test.ts): what each case is made of, and
// runTargeted, which builds, sends and checks one case (counted in the census). The faults
// themselves are generated in property-faults.ts.
import { signEnvelope } from '@signet/server/testing';
import fc from 'fast-check';
import { expect } from 'vitest';
import {
  freshOffsetArb,
  idArb,
  inject,
  invalidArgsArb,
  nonceArb,
  orderArb,
  renderPoison,
  validArgsArb,
} from './property-arbitraries.ts';
import {
  describeOutcome,
  expectForgeryRefused,
  expectRan,
  expectSignedRefusal,
} from './property-expect.ts';
import {
  type F1,
  type F2,
  type F3,
  FAULTS,
  type Fault,
  f1Arb,
  f2Arb,
  f3Arb,
  staleArb,
  wrongServerArb,
} from './property-faults.ts';
import {
  ALL_SIGNERS,
  alice1,
  type CallSpec,
  draftFor,
  FULL_SIGNERS,
  MAX_BODY_BYTES,
  type Outcome,
  ordered,
  type PostTool,
  post,
  put,
  QUICK_TOOLS,
  restricted,
  SERVER_ID,
  type Signer,
  unique,
} from './property-server.ts';

// ---------------------------------------------------------------------------------------------
// Cases built to stop at a given check (DESIGN 1.4), with any later faults added on top

interface Targeted {
  target: number;
  faults: readonly Fault[];
  tool: PostTool;
  signer: Signer;
  /** Invalid for the tool if fault 8 is set, else valid. */
  args: unknown;
  sendKid: boolean;
  requestId: string;
  nonce: string;
  tsOffset: number;
  order: readonly string[];
  // How each fault is injected (undefined where the fault is not).
  f1: F1 | undefined;
  f2: F2 | undefined;
  f3: F3 | undefined;
  wrongServer: string | undefined;
  stale: { offset?: number; at?: number } | undefined;
  replay: 'prime' | 'twice' | 'concurrent' | undefined;
  copies: number;
}

/** Who calls what. start_long_task only where a fault other than replay refuses every copy. */
function callerFor(
  faults: readonly Fault[],
  toolPick: number,
  signerPick: number,
): { tool: PostTool; signer: Signer } {
  if (faults.includes(7)) {
    const choices: PostTool[] = ['batch_sum', 'poll_job', 'cancel_job', 'start_long_task'];
    return { tool: choices[toolPick % choices.length]!, signer: restricted };
  }
  const choices: PostTool[] = [...QUICK_TOOLS];
  if (faults.some((f) => f !== 6)) choices.push('start_long_task');
  const tool = choices[toolPick % choices.length]!;
  const signers = tool === 'server_identity' ? ALL_SIGNERS : FULL_SIGNERS;
  return { tool, signer: signers[signerPick % signers.length]! };
}

/** A case that must stop at check `target` (9 = valid): fault `target`, plus later ones. */
export function targetedArb(target: number): fc.Arbitrary<Targeted> {
  return fc
    .tuple(fc.subarray(FAULTS.filter((f) => f > target)), fc.nat(), fc.nat())
    .chain(([later, toolPick, signerPick]) => {
      const faults: Fault[] = target <= 8 ? [target as Fault, ...later] : [];
      const has = (fault: Fault) => faults.includes(fault);
      const only = <T>(fault: Fault, arb: fc.Arbitrary<T>) =>
        has(fault) ? arb : fc.constant(undefined);
      const { tool, signer } = callerFor(faults, toolPick, signerPick);
      return fc.record({
        target: fc.constant(target),
        faults: fc.constant(faults),
        tool: fc.constant(tool),
        signer: fc.constant(signer),
        args: has(8) ? invalidArgsArb(tool) : validArgsArb[tool],
        sendKid: fc.boolean(),
        requestId: idArb,
        nonce: nonceArb,
        tsOffset: freshOffsetArb,
        order: orderArb,
        f1: only(1, f1Arb),
        f2: only(2, f2Arb),
        f3: only(3, f3Arb),
        wrongServer: only(4, wrongServerArb),
        stale: only(5, staleArb),
        replay: only(6, fc.constantFrom('prime' as const, 'twice' as const, 'concurrent' as const)),
        copies: fc.integer({ min: 2, max: 4 }),
      });
    });
}

/** Builds, sends and checks one targeted case; every response is counted in the census. */
export async function runTargeted(c: Targeted): Promise<void> {
  const has = (fault: Fault) => c.faults.includes(fault);
  const expected = c.faults.length > 0 ? Math.min(...c.faults) : 9;
  const { tool, signer, args, f1, f2, f3 } = c;

  const now = Date.now();
  const nonce = unique(c.nonce);
  const draft = draftFor(signer, c.sendKid, tool, args, {
    request_id: c.requestId,
    ts_ms: c.stale ? (c.stale.at ?? now + c.stale.offset!) : now + c.tsOffset,
    server_id: c.wrongServer ?? SERVER_ID,
    nonce,
  });

  let secret = signer.secret;
  if (f3) {
    switch (f3.kind) {
      case 'wrongSecret':
        secret = f3.secret;
        break;
      case 'otherClientsKey':
        secret = ALL_SIGNERS.find((s) => s.clientId !== signer.clientId)!.secret;
        break;
      case 'unknownClient':
        draft.client_id = f3.clientId;
        break;
      case 'otherKid':
        // A key the client really has, but not the one that signed.
        if (signer.clientId === alice1.clientId) draft.kid = signer === alice1 ? 'k2' : 'k1';
        else draft.kid = `${signer.kid}-old`;
        break;
      case 'unknownKid':
        draft.kid = f3.kid;
        break;
      default:
        break;
    }
  }
  if (f2) {
    switch (f2.kind) {
      case 'version':
        draft.v = f2.v;
        break;
      case 'toolMismatch':
        draft.tool = f2.tool === tool ? `${tool}_` : f2.tool;
        break;
      case 'unknownField':
        put(draft, f2.name, f2.value);
        break;
      case 'badField':
        if (f2.field !== 'signature') put(draft, f2.field, f2.value);
        break;
      case 'missing':
        if (f2.field !== 'signature') delete draft[f2.field];
        break;
    }
  }

  const envelope: Record<string, unknown> = signEnvelope(draft, secret);
  if (f3?.kind === 'flip') {
    const s = envelope.signature as string;
    const hex = '0123456789abcdef';
    const flipped = hex[(hex.indexOf(s[f3.pos]!) + f3.step) % 16]!;
    envelope.signature = s.slice(0, f3.pos) + flipped + s.slice(f3.pos + 1);
  } else if (f3?.kind === 'signedOther') {
    envelope.signature = signEnvelope({ ...draft, nonce: `${nonce}x` }, secret).signature;
  }
  if (f2?.kind === 'badField' && f2.field === 'signature') {
    envelope.signature = f2.value;
  } else if (f2?.kind === 'missing' && f2.field === 'signature') {
    delete envelope.signature;
  }

  let body = JSON.stringify(ordered(envelope, c.order));
  let contentType: string | null = 'application/json';
  if (f1) {
    switch (f1.kind) {
      case 'inject': {
        const argsEmpty =
          typeof args !== 'object' || args === null || Object.keys(args).length === 0;
        body = inject(body, renderPoison(f1.poison), f1.top, argsEmpty);
        break;
      }
      case 'truncate':
        body = body.slice(0, f1.pick % body.length);
        break;
      case 'suffix':
        body += f1.text;
        break;
      case 'contentType':
        contentType = f1.type;
        break;
      case 'tooLarge':
        body += ' '.repeat(MAX_BODY_BYTES + f1.extra - Buffer.byteLength(body));
        break;
    }
  }

  const expectAt = (o: Outcome, check: number) => {
    expect(o.check, `expected check ${check}: ${describeOutcome(o)}`).toBe(check);
    if (check === 9) {
      const spec: CallSpec = {
        tool,
        args: args as Record<string, unknown>,
        signer,
        sendKid: c.sendKid,
        requestId: c.requestId,
        nonce,
        tsOffset: 0,
        order: c.order,
      };
      expectRan(spec, draft, o);
    } else if (check >= 4) {
      expectSignedRefusal(o, signer, draft);
    } else {
      expectForgeryRefused(o);
    }
  };

  if (!has(6)) {
    expectAt(await post(tool, body, contentType), expected);
    return;
  }

  // Check 6: the nonce has been used already.
  const afterNonce = c.faults.filter((f) => f > 6);
  const firstUse = afterNonce.length > 0 ? Math.min(...afterNonce) : 9;
  if (expected < 6 || c.replay === 'prime') {
    // Another valid call of the same client spends the nonce first.
    const primeDraft = draftFor(
      signer,
      true,
      'server_identity',
      {},
      {
        request_id: `prime-${c.requestId}`,
        ts_ms: now,
        nonce,
      },
    );
    const prime = await post(
      'server_identity',
      JSON.stringify(signEnvelope(primeDraft, signer.secret)),
    );
    expect(prime.status, describeOutcome(prime)).toBe(200);
    expectAt(await post(tool, body, contentType), expected);
  } else if (c.replay === 'twice') {
    expectAt(await post(tool, body, contentType), firstUse);
    expectAt(await post(tool, body, contentType), 6);
  } else {
    // The same envelope, several times at once: exactly one gets past check 6.
    const outcomes = await Promise.all(
      Array.from({ length: c.copies }, () => post(tool, body, contentType)),
    );
    const first = outcomes.filter((o) => o.check !== 6);
    expect(first.length, outcomes.map(describeOutcome).join('\n')).toBe(1);
    for (const o of outcomes) expectAt(o, o === first[0] ? firstUse : 6);
  }
}
