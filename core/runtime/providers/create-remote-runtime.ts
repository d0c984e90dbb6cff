/**
 * Creates and checks the runtimes of remote models. Each provider's file (and so its SDK)
 * is loaded only when a model of that provider runs.
 */
import { AccessPolicy } from '../access-policy.js';
import type { ModelRuntime } from '../model-runtime.js';
import { parseRemoteModel, resolveApiKey, type RemoteProvider } from './remote-options.js';
import type { ModelColumn } from '../../model-types.js';

type Options = readonly (readonly [string, string])[];

/**
 * Checks a remote model at CREATE / ALTER time: options against INPUT/OUTPUT, and the
 * endpoint against the access policy. Sends no request and resolves no `${env:...}`
 * reference: an unset variable (or a missing `model`) is a notice, the run fails on it.
 *
 * @throws InvalidOptionError (22023), AccessDeniedError (42501)
 */
export async function checkRemoteModel(
  provider: RemoteProvider,
  options: Options,
  input: readonly ModelColumn[] | undefined,
  output: readonly ModelColumn[] | undefined,
  policy: AccessPolicy = new AccessPolicy(),
): Promise<{ input: readonly ModelColumn[]; output: readonly ModelColumn[]; notices: readonly string[] }> {
  const notices: string[] = [];
  const config = parseRemoteModel(provider, options, input, output, notices);
  // The endpoint before anything about `${env:...}`: on a server that refuses the endpoint,
  // a notice about a variable would tell the caller whether that variable exists.
  policy.checkUrl(config.endpoint, 'endpoint');
  return { input: input!, output: output!, notices };
}

/**
 * The runtime of a remote model version. The api-key is resolved and the endpoint checked
 * against `policy` here, before any request; every request then goes through the policy's
 * checked `fetch`.
 */
export async function createRemoteRuntime(
  provider: RemoteProvider,
  options: Options,
  input: readonly ModelColumn[],
  output: readonly ModelColumn[],
  secrets: readonly (readonly [string, string])[] | undefined,
  policy: AccessPolicy = new AccessPolicy(),
): Promise<ModelRuntime> {
  const config = parseRemoteModel(provider, options, input, output);
  policy.checkUrl(config.endpoint, 'endpoint');
  const literal = secrets?.find(([k]) => k.toLowerCase() === 'api-key')?.[1];
  const apiKey = resolveApiKey(config, literal);
  switch (provider) {
    case 'openai':
      return (await import('./openai-runtime.js')).createOpenAIRuntime(config, apiKey, input.length, policy.fetch);
    case 'gemini':
      return (await import('./gemini-runtime.js')).createGeminiRuntime(config, apiKey, input.length, policy.fetch);
    case 'anthropic':
      return (await import('./anthropic-runtime.js')).createAnthropicRuntime(config, apiKey, input.length, policy.fetch);
  }
}
