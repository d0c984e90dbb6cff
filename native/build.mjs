// Builds the proxy's native relay (native-relay.cc) into native/build/native-relay.node at
// `npm install`, with the C++ compiler already on the machine and the Node-API headers of
// the `node-api-headers` package: no download. Silent on success; on any failure (no
// compiler, not Linux, a compile error) it prints nothing either and exits 0: the proxy
// then keeps its JavaScript relay (its debug log says which relay runs). Set
// MODELSQL_NATIVE_BUILD_VERBOSE=1 to see the compiler's output.
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const verbose = process.env.MODELSQL_NATIVE_BUILD_VERBOSE === '1';
const out = join(here, 'build', 'native-relay.node');

function build() {
  // epoll and eventfd: Linux only.
  if (process.platform !== 'linux') return 'not Linux';
  let include;
  try {
    include = createRequire(import.meta.url)('node-api-headers').include_dir;
  } catch {
    return 'node-api-headers is not installed';
  }
  const compiler = process.env.CXX || 'g++';
  mkdirSync(dirname(out), { recursive: true });
  const partial = `${out}.${process.pid}.tmp`;
  const args = ['-std=c++17', '-O2', '-shared', '-fPIC', '-fvisibility=hidden', '-pthread', '-Wall', `-I${include}`, join(here, 'native-relay.cc'), '-o', partial];
  const result = spawnSync(compiler, args, { stdio: verbose ? 'inherit' : 'ignore' });
  if (result.error || result.status !== 0) {
    rmSync(partial, { force: true });
    return result.error ? `${compiler}: ${result.error.message}` : `${compiler} exited with ${result.status}`;
  }
  renameSync(partial, out);
  return undefined;
}

const problem = build();
if (problem && verbose) console.error(`modelsql: native relay not built (${problem}); the proxy uses its JavaScript relay`);
