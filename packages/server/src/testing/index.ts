// Test fixtures shared by the packages' and apps' test suites (not part of the runtime API).
export * from './job-tools.ts';
export * from './processes.ts';
export * from './sse.ts';
