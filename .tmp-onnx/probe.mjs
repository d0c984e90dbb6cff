import * as ort from 'onnxruntime-node';
import * as m from '/work/main/dist/test/support/onnx-models.js';
for (const [name, bytes] of Object.entries({
  lin: m.linearRegressorModel([1,2,3],4), linN: m.linearRegressorModel([1,2],0,{outputShape:'N'}),
  cls: m.linearClassifierModel([[1,0],[0,1],[1,1]],[0,0,0],[0,1,2]), clsS: m.linearClassifierModel([[1,0],[0,1]],[0,0],['a','b']),
  multi: m.multiInputModel(), typed: m.typedColumnsModel(), tree: m.treeEnsembleRegressorModel(), fixed: m.fixedBatchModel()})) {
  try {
    const s = await ort.InferenceSession.create(bytes);
    console.log(name, JSON.stringify(s.inputMetadata), JSON.stringify(s.outputMetadata));
  } catch (e) { console.log(name, 'ERR', e.message); }
}
try { await ort.InferenceSession.create(new Uint8Array([1,2,3,4,5])); } catch (e) { console.log('corrupt', e.message); }
const s = await ort.InferenceSession.create(m.treeEnsembleRegressorModel());
const r = await s.run({x: new ort.Tensor('float32', Float32Array.from([0,0, 2,3, 2,6]), [3,2])});
console.log(r.y.data, r.y.dims);
const c = await ort.InferenceSession.create(m.linearClassifierModel([[1,0],[0,1],[1,1]],[0,0,0],[0,1,2]));
const r2 = await c.run({x: new ort.Tensor('float32', Float32Array.from([1,0, 0,2]), [2,2])});
console.log(r2.label.type, r2.label.data, r2.probabilities.data);
const t = await ort.InferenceSession.create(m.typedColumnsModel());
const r3 = await t.run({d: new ort.Tensor('float64', Float64Array.from([1.5]), [1]), i: new ort.Tensor('int64', BigInt64Array.from([5n]), [1]), j: new ort.Tensor('int32', Int32Array.from([7]), [1]), s: new ort.Tensor('string', ['hé'], [1]), flag: new ort.Tensor('bool', Uint8Array.from([1]), [1])});
for (const [k,v] of Object.entries(r3)) console.log(k, v.type, v.data);
