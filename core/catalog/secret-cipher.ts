/**
 * Literal model secrets at rest (SPEC §5): sealed with AES-256-GCM
 * (https://nodejs.org/api/crypto.html#class-cipher) under a key the serving process holds,
 * never the database. A role that can read the catalog (a grantee, a backup, a copied
 * DuckDB file) reads ciphertext; a modelsql process with the key opens it to run the
 * model. Each sealed value is bound to its model's owner and option key (GCM additional
 * data), so a ciphertext copied into another role's model does not open there.
 *
 * The key: the `secretKey` option of a session, else the environment variable
 * `MODELSQL_SECRET_KEY`; 32 bytes written as 64 hex digits or in base64. No message of
 * this module holds key material.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ModelSqlError } from '../errors.js';

/** The environment variable holding the key. */
export const SECRET_KEY_SETTING = 'MODELSQL_SECRET_KEY';

/** How a sealed value starts (and how a layout-3 plaintext secret is told apart). */
const PREFIX = 'modelsql-sealed:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Where a sealed value belongs: its model's owner and option key. */
export interface SecretContext {
  readonly owner: string;
  readonly option: string;
}

/** Whether a stored value is sealed (as opposed to a plaintext secret of catalog layout 3). */
export function isSealed(value: string): boolean {
  return value.startsWith(PREFIX);
}

/**
 * Seals and opens literal secrets with one key.
 *
 * @example
 * const cipher = SecretCipher.fromSetting(undefined); // MODELSQL_SECRET_KEY
 * const stored = cipher.seal('sk-live-1', { owner: 'alice', option: 'api-key' });
 * cipher.open(stored, { owner: 'alice', option: 'api-key' }); // 'sk-live-1'
 */
export class SecretCipher {
  private constructor(private readonly key: Buffer | undefined) {}

  /**
   * The cipher of `option` (a session's `secretKey`), else of `MODELSQL_SECRET_KEY`.
   *
   * @throws ModelSqlError 22023 when the key given is not 32 bytes in hex or base64 (no key material in the message).
   */
  static fromSetting(option: string | undefined, env: NodeJS.ProcessEnv = process.env): SecretCipher {
    const text = (option ?? env[SECRET_KEY_SETTING] ?? '').trim();
    return new SecretCipher(text === '' ? undefined : parseKey(text));
  }

  /** Whether this process holds a key. */
  get hasKey(): boolean {
    return this.key !== undefined;
  }

  /** The stored form of a literal secret. @throws ModelSqlError 55000 without a key. */
  seal(plain: string, context: SecretContext): string {
    const key = this.requireKey('store a literal secret');
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(additionalData(context));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /**
   * The literal secret of a stored value.
   *
   * @throws ModelSqlError 55000 without a key; 22023 when the value was sealed by another
   *   key, for another model's owner or option, or is not sealed at all.
   */
  open(stored: string, context: SecretContext): string {
    const key = this.requireKey('use a literal secret');
    const refused = () =>
      new ModelSqlError('22023', `the stored secret '${context.option}' of a model owned by ${context.owner} does not open with this process's ${SECRET_KEY_SETTING} (sealed with another key, or not by modelsql)`);
    if (!isSealed(stored)) throw refused();
    const bytes = Buffer.from(stored.slice(PREFIX.length), 'base64');
    if (bytes.length < IV_BYTES + TAG_BYTES) throw refused();
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
      decipher.setAAD(additionalData(context));
      decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw refused();
    }
  }

  private requireKey(what: string): Buffer {
    if (this.key === undefined) throw missingKeyError(what);
    return this.key;
  }
}

/** 55000: the process has no key; names the settings that give one. */
export function missingKeyError(what: string): ModelSqlError {
  return new ModelSqlError(
    '55000',
    `cannot ${what}: literal model secrets are stored encrypted and this process has no key; set ${SECRET_KEY_SETTING} (32 bytes as 64 hex digits or base64), the secretKey session option, or the proxy's --secret-key-file`,
  );
}

function additionalData(context: SecretContext): Buffer {
  return Buffer.from(JSON.stringify(['modelsql-secret', context.owner, context.option.toLowerCase()]), 'utf8');
}

function parseKey(text: string): Buffer {
  const bytes = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : /^[A-Za-z0-9+/]{43}=?$/.test(text) ? Buffer.from(text, 'base64') : undefined;
  if (bytes?.length !== 32) throw new ModelSqlError('22023', `${SECRET_KEY_SETTING} (or the secretKey option) must be 32 bytes written as 64 hex digits or in base64 (e.g. the output of: openssl rand -hex 32)`);
  return bytes;
}
