export * from './app.ts';
export * from './audit-report.ts';
export * from './config.ts';
export * from './tools/contracts.ts';
export * from './tools/handlers.ts';
