export type { JobTicket, SignetRouter } from '@signet/contracts';
export { createSignetClient, type SignetClientOptions } from './client.ts';
export {
  CredentialsError,
  credentialsFromEnv,
  credentialsFromKeyring,
  loadCredentials,
} from './credentials.ts';
export {
  type Ed25519Key,
  type HmacKey,
  type ServerPublicKey,
  type SignetCredentials,
  signRequest,
  verifyRefusal,
  verifyResponse,
} from './envelopes.ts';
export {
  JobFailedError,
  type ResponseProblem,
  SignetResponseError,
  signetReason,
} from './errors.ts';
export { jobSeq } from './job-sequence.ts';
export { type JobControlClient, JobHandle, jobHandle, type WaitOptions } from './jobs.ts';
export { type SignetLinkOptions, signetLink } from './link.ts';
