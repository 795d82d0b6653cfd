export * from './client.ts';
export * from './envelopes.ts';
export * from './errors.ts';
export * from './jobs.ts';
export * from './link.ts';
