/** Jest globalTeardown: stops the Postgres server globalSetup started, if any. */
import type { PostgresServer } from './global-setup.js';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as Record<string, unknown>).__modelsqlPostgresServer as PostgresServer | undefined;
  await server?.stop();
}
