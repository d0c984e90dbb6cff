/**
 * Runs the loopback OpenAI server of the benchmarks in a worker thread, so that its own
 * CPU time does not count against the client being measured. It keeps no record of the
 * requests (a benchmark sends tens of thousands), only their count. Messages: the worker
 * posts `{ url }` once listening, and answers `'count'` with `{ requests }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startOpenAIServer } from '../test/providers/openai-server.js';

const { apiKey, latencyMs } = workerData as { apiKey: string; latencyMs: number };
const server = await startOpenAIServer({ apiKey, latencyMs, record: false });
parentPort!.on('message', (message: string) => {
  if (message === 'count') parentPort!.postMessage({ requests: server.served() });
  if (message === 'close') void server.close().then(() => process.exit(0));
});
parentPort!.postMessage({ url: server.url });
