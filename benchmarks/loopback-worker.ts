/**
 * Runs the loopback OpenAI server of the benchmarks in a worker thread, so that its own
 * CPU time does not count against the client being measured. Messages: the worker posts
 * `{ url }` once listening, and answers `'count'` with `{ requests }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startOpenAIServer } from '../test/providers/openai-server.js';

const { apiKey, latencyMs } = workerData as { apiKey: string; latencyMs: number };
const server = await startOpenAIServer({ apiKey, latencyMs });
// Requests are counted; their bodies are not kept (a benchmark sends tens of thousands).
const keep = server.requests.push.bind(server.requests);
let count = 0;
server.requests.push = (...items) => {
  count += items.length;
  void keep;
  return count;
};
server.answered.push = () => 0;
parentPort!.on('message', (message: string) => {
  if (message === 'count') parentPort!.postMessage({ requests: count });
  if (message === 'close') void server.close().then(() => process.exit(0));
});
parentPort!.postMessage({ url: server.url });
