export * from './agent.ts';
export * from './progress-bar.ts';
