/**
 * The signature of a loaded onnxruntime session: what `inspectOnnx` reports on the main
 * thread, and what an ONNX worker reports once its session is loaded (so that loading a
 * model for prediction creates no session on the main thread).
 */
import type * as ort from 'onnxruntime-node';
import type { OnnxSignature, OnnxValueInfo } from './onnx-model.js';

/** The inputs and outputs of `session`, as {@link OnnxSignature}. */
export function signatureOf(session: ort.InferenceSession): OnnxSignature {
  const convert = (m: ort.InferenceSession.ValueMetadata): OnnxValueInfo =>
    m.isTensor ? { name: m.name, elementType: m.type, shape: m.shape.length === 0 ? null : [...m.shape] } : { name: m.name, elementType: 'non-tensor', shape: null };
  return { inputs: session.inputMetadata.map(convert), outputs: session.outputMetadata.map(convert) };
}
