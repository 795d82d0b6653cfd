export * from './canonical.ts';
export * from './envelope.ts';
export * from './error-shape.ts';
export * from './i-json.ts';
export * from './jobs.ts';
export * from './key-files.ts';
export * from './reasons.ts';
export * from './signing.ts';
