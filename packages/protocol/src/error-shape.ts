import type { ResponseEnvelope } from './envelope.ts';
import type { ReasonCode } from './reasons.ts';

/** A Signet server's tRPC error (DESIGN 1.2): the reason code, and the signed envelope once authenticated. */
export interface SignetErrorShape {
  message: string;
  code: number;
  data: {
    code: string;
    httpStatus: number;
    path?: string;
    reason: ReasonCode;
    envelope?: ResponseEnvelope;
    details?: unknown;
  };
}
