/**
 * Grants of models as catalog exports carry them (SPEC §5: `GRANT USAGE ON MODEL m TO
 * role`, Postgres). Every export and import of grants goes through this file.
 *
 * {@link readModelGrants} reads `ml_catalog.model_grants` (catalog layout 3; a host
 * without roles has none); SQL exports write them as GRANT statements
 * ({@link grantStatements}); {@link importModelGrants} gives them on the target as a GRANT
 * statement would, and reports the ones it cannot give (a host without roles, a role the
 * target database does not have).
 */
import { ModelSqlError } from '../errors.js';
import type { Host } from '../host.js';
import { quoteIdentifier } from '../sql/format.js';
import { parseScript } from '../sql/parser.js';
import type { ModelCatalog } from './model-catalog.js';

/** One privilege on a model given to a role. */
export interface ModelGrant {
  readonly role: string;
  /** `USAGE`, the one model privilege. */
  readonly privilege: 'USAGE';
}

/** The grants of every model of `host` (those the current role may see), keyed by `JSON.stringify([schema, name])`. */
export async function readModelGrants(host: Host): Promise<ReadonlyMap<string, readonly ModelGrant[]>> {
  const grants = new Map<string, ModelGrant[]>();
  if (!host.dialect.roles) return grants;
  const r = await host.execute('SELECT DISTINCT schema_name, model_name, grantee FROM ml_catalog.model_grants ORDER BY schema_name, model_name, grantee');
  for (const [schema, name, role] of r.rows) {
    const key = JSON.stringify([String(schema), String(name)]);
    grants.set(key, [...(grants.get(key) ?? []), { role: String(role), privilege: 'USAGE' }]);
  }
  return grants;
}

/** The statements that give `grants` on the model named `label` (already quoted), for scripts and imports. */
export function grantStatements(label: string, grants: readonly ModelGrant[]): string[] {
  return grants.map((g) => `GRANT ${g.privilege} ON MODEL ${label} TO ${g.role === 'public' ? 'PUBLIC' : quoteIdentifier(g.role)}`);
}

/**
 * Gives the grants of an imported model (named `label`, already quoted) on the target, each
 * as its GRANT statement would (the trained model's function follows); returns a warning
 * for each grant it could not give: on a host without roles, or to a role the target lacks.
 */
export async function importModelGrants(host: Host, catalog: ModelCatalog, label: string, grants: readonly ModelGrant[]): Promise<string[]> {
  const warnings: string[] = [];
  for (const [i, text] of grantStatements(label, grants).entries()) {
    const skipped = (why: string) => warnings.push(`model ${label}: USAGE to ${grants[i]!.role} not imported (${why}); give it with ${text}`);
    if (!host.dialect.roles) {
      skipped(`${host.name} has no roles`);
      continue;
    }
    try {
      await catalog.execute(parseScript(text)[0] as Parameters<ModelCatalog['execute']>[0], text);
    } catch (error) {
      // 42704: no such role in the target database.
      if (!(error instanceof ModelSqlError && error.sqlstate === '42704')) throw error;
      skipped(error.message);
    }
  }
  return warnings;
}
