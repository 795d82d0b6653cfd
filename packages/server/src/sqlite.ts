// `@signet/server/sqlite`: the durable embedded store. Needs the optional peer `better-sqlite3`.
export { SqliteFile, SqliteStore } from './stores/sqlite.ts';
