/**
 * The hosts the shared integration suite runs on. `MODELSQL_TEST_ADAPTERS=duckdb` (comma
 * separated) narrows the list.
 */
import { openDuckDB } from '../../adapters/duckdb/index.js';
import type { Session } from '../../core/session/session.js';

/** One host under test. */
export interface TestAdapter {
  readonly name: string;
  /** A fresh, empty database. */
  open(): Promise<Session>;
}

const ALL: readonly TestAdapter[] = [{ name: 'duckdb', open: () => openDuckDB() }];

const wanted = process.env.MODELSQL_TEST_ADAPTERS?.split(',').map((s) => s.trim());

/** The adapters selected for this run. */
export const ADAPTERS: readonly TestAdapter[] = wanted ? ALL.filter((a) => wanted.includes(a.name)) : ALL;
