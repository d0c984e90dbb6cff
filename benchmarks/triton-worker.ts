/**
 * Runs the loopback Open Inference Protocol server of the Triton benchmark in a worker
 * thread (its CPU time then does not count against the client measured). Messages: the
 * worker posts `{ url }` once listening, answers `'count'` with `{ requests }` and
 * `'lateness'` with the server's lateness since the last ask (`TritonServer.lateness`), and
 * exits on `'close'`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startTritonServer } from '../test/providers/triton-server.js';

const { latencyMs } = workerData as { latencyMs: number };
const server = await startTritonServer({ latencyMs, record: false });
parentPort!.on('message', (message: string) => {
  if (message === 'count') parentPort!.postMessage({ requests: server.served() });
  if (message === 'lateness') parentPort!.postMessage(server.lateness());
  if (message === 'close') void server.close().then(() => process.exit(0));
});
parentPort!.postMessage({ url: server.url });
