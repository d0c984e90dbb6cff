/**
 * Grants of models as catalog exports carry them (SPEC §5: `GRANT USAGE ON MODEL m TO
 * role` on Postgres). Every export and import of grants goes through this file, so that
 * a catalog layout that stores grants needs changes here only.
 *
 * The current layout stores a model's owner (`ml_catalog.models.owner`, exported with the
 * model) and no grants: {@link readModelGrants} finds none; a snapshot that carries
 * grants (from a catalog that stores them) has them written as GRANT statements in SQL
 * exports ({@link grantStatements}), and {@link importModelGrants} reports them as not
 * imported.
 */
import type { Host } from '../host.js';
import { quoteIdentifier } from '../sql/format.js';

/** One privilege on a model given to a role. */
export interface ModelGrant {
  readonly role: string;
  /** `USAGE`, the one model privilege. */
  readonly privilege: 'USAGE';
}

/**
 * The grants of every model of `host`, keyed by `JSON.stringify([schema, name])`. Empty
 * while the catalog layout stores no grants.
 */
export async function readModelGrants(_host: Host): Promise<ReadonlyMap<string, readonly ModelGrant[]>> {
  return new Map();
}

/** The statements that give `grants` on the model named `label` (already quoted), for scripts and imports. */
export function grantStatements(label: string, grants: readonly ModelGrant[]): string[] {
  return grants.map((g) => `GRANT ${g.privilege} ON MODEL ${label} TO ${quoteIdentifier(g.role)}`);
}

/**
 * Writes the grants of an imported model into the target catalog; returns a warning for
 * each grant it could not write. The current layout stores no grants: every grant is
 * reported.
 */
export async function importModelGrants(_host: Host, label: string, grants: readonly ModelGrant[]): Promise<string[]> {
  return grants.map((g) => `model ${label}: ${g.privilege} to ${g.role} not imported (this catalog stores no grants); give it with GRANT ${g.privilege} ON MODEL ${label} TO ${quoteIdentifier(g.role)}`);
}
