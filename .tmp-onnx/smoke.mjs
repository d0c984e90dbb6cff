import * as ort from 'onnxruntime-node';
import * as m from '/work/main/dist/test/support/onnx-models.js';
import { inspectOnnx, bindOnnxSignature } from '/work/main/dist/core/runtime/onnx-model.js';
import { createOnnxRuntime } from '/work/main/dist/core/runtime/onnx-runtime.js';
const bytes = m.linearRegressorModel([1,2,3,4], 0.5);
const sig = await inspectOnnx(bytes);
const ins = ['a','b','c','d'].map(n=>({name:n,type:'DOUBLE'}));
const binding = bindOnnxSignature(sig, ins, [{name:'y', type:'DOUBLE'}]);
console.log(JSON.stringify(binding));
const N = 4_000_000;
const cols = [0,1,2,3].map(j => { const a = new Float64Array(N); for (let i=0;i<N;i++) a[i] = (i*(j+1))%97/10; return a; });
for (const workers of [1,2]) for (const bs of [16384, 32768, 65536, 131072, 16384, 32768, 65536, 131072]) {
  const rt = await createOnnxRuntime(bytes, binding, { batchSize: bs, workers });
  const t0 = performance.now();
  const inflight = [];
  let sum = 0;
  for (let off = 0; off < N; off += bs) {
    const n = Math.min(bs, N-off);
    const p = rt.predictBatch({ rowCount: n, columns: cols.map(c => ({kind:'number', values: c.subarray(off, off+n)})) }).then(r => { sum += r.columns[0].values[0]; });
    inflight.push(p);
    if (inflight.length >= 2) await inflight.shift();
  }
  await Promise.all(inflight);
  const dt = performance.now()-t0;
  console.log(`workers=${workers} bs=${bs} ${(N/dt*1000/1e6).toFixed(2)}M rows/s (${dt.toFixed(0)} ms)`);
  await rt.close();
}
// plain main-thread
const s = await ort.InferenceSession.create(bytes);
for (const bs of [16384, 32768, 65536, 16384, 32768, 65536]) {
  const t0 = performance.now();
  for (let off = 0; off < N; off += bs) {
    const n = Math.min(bs, N-off);
    const x = new Float32Array(n*4);
    for (let j=0;j<4;j++){ const c = cols[j]; for (let i=0;i<n;i++) x[i*4+j] = c[off+i]; }
    const r = await s.run({x: new ort.Tensor('float32', x, [n,4])});
    const y = Float64Array.from(r.y.data);
  }
  const dt = performance.now()-t0;
  console.log(`main-thread bs=${bs} ${(N/dt*1000/1e6).toFixed(2)}M rows/s`);
}
