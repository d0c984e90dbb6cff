/**
 * The embedding table a text model's graph looks token ids up in, read from its initializers
 * (core/runtime/text/onnx-embedding-table.ts): found through the ways exporters write the
 * lookup, and unknown (never a guess) otherwise.
 */
import { embeddingTable } from '../../../core/runtime/text/onnx-embedding-table.js';
import { floatTensor, model, node, valueInfo } from '../../support/onnx-models.js';
import { bertGraph, TEST_VOCAB } from '../../support/text-models.js';

const table = (rows: number) => floatTensor('emb', [rows, 2], new Array<number>(rows * 2).fill(0.5));
const ids = valueInfo('input_ids', 'int64', ['N', 'T']);
const out = valueInfo('out', 'float', ['N', 'T', 2]);

describe('embeddingTable', () => {
  test("the test BERT's word embeddings: one row per token of its vocabulary", () => {
    expect(embeddingTable(bertGraph())).toEqual({ name: 'word_emb', rows: TEST_VOCAB.length });
    expect(embeddingTable(bertGraph({ labels: ['a', 'b'] }))).toEqual({ name: 'word_emb', rows: TEST_VOCAB.length });
  });

  test('through a Cast of the ids and a DequantizeLinear of the table; a fused EmbedLayerNormalization', () => {
    const cast = model({ name: 'cast', nodes: [node('Cast', ['input_ids'], ['ids32'], { to: 6 }), node('Gather', ['emb', 'ids32'], ['out'])], inputs: [ids], outputs: [out], initializers: [table(7)] });
    expect(embeddingTable(cast)).toEqual({ name: 'emb', rows: 7 });
    const quantized = model({
      name: 'q',
      nodes: [node('DequantizeLinear', ['emb', 'scale'], ['emb_f']), node('Gather', ['emb_f', 'input_ids'], ['out'])],
      inputs: [ids],
      outputs: [out],
      initializers: [table(9), floatTensor('scale', [], [1])],
    });
    expect(embeddingTable(quantized)).toEqual({ name: 'emb', rows: 9 });
    const fused = model({ name: 'f', nodes: [node('EmbedLayerNormalization', ['input_ids', '', 'emb'], ['out'], {}, 'com.microsoft')], inputs: [ids], outputs: [out], initializers: [table(11)] });
    expect(embeddingTable(fused)).toEqual({ name: 'emb', rows: 11 });
  });

  test('unknown when the graph does not say: a table fed at run time, a Gather on another axis, not an ONNX graph', () => {
    const fed = model({ name: 'fed', nodes: [node('Gather', ['emb', 'input_ids'], ['out'])], inputs: [ids, valueInfo('emb', 'float', [5, 2])], outputs: [out] });
    expect(embeddingTable(fed)).toBeUndefined();
    const axis1 = model({ name: 'a', nodes: [node('Gather', ['emb', 'input_ids'], ['out'], { axis: 1 })], inputs: [ids], outputs: [out], initializers: [table(5)] });
    expect(embeddingTable(axis1)).toBeUndefined();
    expect(embeddingTable(new Uint8Array([0x3a, 0xff, 0xff, 0x01]))).toBeUndefined();
    expect(embeddingTable(new TextEncoder().encode('not a graph at all'))).toBeUndefined();
    expect(embeddingTable(new Uint8Array(0))).toBeUndefined();
  });
});
