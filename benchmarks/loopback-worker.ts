/**
 * Runs the loopback OpenAI server of the benchmarks in a worker thread, so that its own
 * CPU time does not count against the client being measured. It keeps no record of the
 * requests (a benchmark sends tens of thousands), only their count. Messages: the worker
 * posts `{ url }` once listening, and answers `'count'` with `{ requests, failed }`.
 *
 * `failEvery: n` (optional) answers every n-th request with a real OpenAI error instead,
 * alternately a 500 `server_error` and a 429 `rate_limit_exceeded` with `retry-after-ms: 20`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Fault } from '../test/providers/loopback-server.js';
import { startOpenAIServer } from '../test/providers/openai-server.js';

const { apiKey, latencyMs, failEvery } = workerData as { apiKey: string; latencyMs: number; failEvery?: number };
let seen = 0;
let failed = 0;
const fault = (): Fault | undefined => {
  if (!failEvery || ++seen % failEvery !== 0) return undefined;
  failed++;
  return failed % 2 === 1
    ? { kind: 'status', status: 500, message: 'The server had an error while processing your request.' }
    : { kind: 'status', status: 429, message: 'Rate limit reached for requests.', headers: { 'retry-after-ms': '20' } };
};
const server = await startOpenAIServer({ apiKey, latencyMs, fault, record: false });
parentPort!.on('message', (message: string) => {
  if (message === 'count') parentPort!.postMessage({ requests: server.served(), failed });
  if (message === 'close') void server.close().then(() => process.exit(0));
});
parentPort!.postMessage({ url: server.url });
