// Test fixtures shared by the packages' and apps' test suites (not part of the runtime API); the
// envelope kit (envelopes.ts) is also for users testing their own tools over HTTP.

export * from './audit-log.ts';
export * from './envelopes.ts';
export * from './job-tools.ts';
export * from './processes.ts';
export * from './sse.ts';
