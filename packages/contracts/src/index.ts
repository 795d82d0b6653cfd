export * from './define.ts';
export * from './manifest.ts';
export * from './tools.ts';
