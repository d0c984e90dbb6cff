/**
 * Catalog snapshots as SQL scripts (core/catalog/catalog-script.ts): versions in order with
 * their numbers, dropped versions recreated and dropped, the default version, grants,
 * secrets, and scripts that parse back to the same models.
 */
import { snapshotToScript } from '../../../core/catalog/catalog-script.js';
import type { SnapshotModel, SnapshotVersion } from '../../../core/catalog/catalog-snapshot.js';
import { parseScript } from '../../../core/sql/parser.js';

const version = (n: number, extra: Partial<SnapshotVersion> = {}): SnapshotVersion => ({
  version: n,
  provider: 'openai',
  input: [{ name: 'q', type: 'STRING' }],
  output: [{ name: 'a', type: 'STRING' }],
  options: [['provider', 'openai'], ['model', `m${n}`], ['api-key', '******']],
  createdAt: '2026-01-01 00:00:00',
  secrets: [],
  artifacts: [],
  metrics: [],
  ...extra,
});

const model = (versions: SnapshotVersion[], extra: Partial<SnapshotModel> = {}): SnapshotModel => ({
  name: 'Chat',
  defaultVersion: versions[versions.length - 1]!.version,
  owner: 'ann',
  createdAt: '2026-01-01 00:00:00',
  updatedAt: '2026-01-01 00:00:00',
  grants: [],
  versions,
  ...extra,
});

describe('snapshotToScript', () => {
  it('recreates dropped versions and drops them again, then sets the default version', () => {
    const script = snapshotToScript({ layout: 2, models: [model([version(2), version(4)], { defaultVersion: 2, schema: 'ops' })] });
    const statements = parseScript(script);
    expect(statements.map((s) => s.kind)).toEqual(['create-model', 'create-model', 'create-model', 'create-model', 'drop-model', 'drop-model', 'alter-model']);
    const creates = statements.filter((s) => s.kind === 'create-model');
    expect(creates.map((s) => s.orReplace)).toEqual([false, true, true, true]);
    expect(creates.map((s) => s.options.find((o) => o.key === 'model')!.value)).toEqual(['m2', 'm2', 'm4', 'm4']);
    expect(script).toContain('CREATE MODEL ops."Chat"\n');
    expect(script).toContain('DROP MODEL ops."Chat"$1;\nDROP MODEL ops."Chat"$3;\nALTER MODEL ops."Chat" SET (\'default-version\' = \'2\');');
  });

  it('writes a literal secret only when the snapshot holds its value, and grants as GRANT statements', () => {
    const withValue = version(1, { secrets: [{ key: 'api-key', digest: 'd', value: "sk-it's" }] });
    const script = snapshotToScript({ layout: 2, models: [model([withValue], { grants: [{ role: 'Analysts', privilege: 'USAGE' }] })] });
    expect(script).toContain("'api-key' = 'sk-it''s'");
    expect(script).toContain('GRANT USAGE ON MODEL "Chat" TO "Analysts";');
    expect(snapshotToScript({ layout: 2, models: [model([version(1, { secrets: [{ key: 'api-key', digest: 'd' }] })])] })).toContain("'api-key' = '******'");
  });

  it('writes a trained model as its CREATE MODEL ... AS statement, without INPUT and OUTPUT', () => {
    const trained = version(1, { provider: 'internal', options: [['algorithm', 'linear_regression'], ['label', 'y']], asQuery: 'SELECT x, y FROM t' });
    const [statement] = parseScript(snapshotToScript({ layout: 2, models: [model([trained])] }));
    expect(statement).toMatchObject({ kind: 'create-model', asQuery: { text: 'SELECT x, y FROM t' } });
    expect(statement).not.toHaveProperty('input');
    expect(statement).not.toHaveProperty('output');
  });
});
