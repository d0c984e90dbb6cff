/**
 * How the rows of a language model (`openai`, `gemini`, `anthropic`) become requests and
 * its answers OUTPUT rows: each row's prompt from the template (cut to `max-context-size`),
 * one message per request (packed rows answer as `{"answers": [...]}`), embeddings as texts,
 * structured output checked against OUTPUT. The executor (remote-executor.ts) does the rest.
 */
import { createHash } from 'node:crypto';
import type { RowCodec, RowPayload } from '../remote-executor.js';
import { valueAt } from '../remote-executor.js';
import { fitContext } from './prompt-template.js';
import { packedMessage, structuredMessage, type ProviderReply, type ProviderRequest } from './provider-client.js';
import type { RemoteModelConfig } from './remote-options.js';
import { AnswerError, answerValues, packedSchema, parseJsonText, preview, rowSchema } from './structured-output.js';
import type { ColumnBatch } from '../../model-types.js';

/**
 * The {@link RowCodec} of a language model.
 *
 * @example new RemoteRuntime(config, client, input.length, new PromptCodec(config));
 */
export class PromptCodec implements RowCodec {
  readonly fingerprint: string;
  readonly width: number;
  readonly errorString?: number;
  readonly httpStatus?: number;

  constructor(private readonly config: RemoteModelConfig) {
    const c = config;
    // Everything that changes an answer, and nothing that does not (timeouts, retries, packing).
    // A cached answer is a whole OUTPUT row: where each answer column sits, and how wide the
    // row is (the error columns), are part of it.
    this.fingerprint = JSON.stringify([
      c.provider, c.baseUrl, c.apiVersion ?? null, c.model, c.task, c.systemPrompt, c.temperature ?? null, c.topP ?? null, c.stop ?? null,
      c.maxTokens ?? null, c.presencePenalty ?? null, c.frequencyPenalty ?? null, c.seed ?? null, c.responseFormat ?? null, c.dimension ?? null,
      c.output.mode, c.output.width, c.output.answers.map((a) => [a.index, a.name, a.type.name, a.type.elements?.map((e) => e.name) ?? null]),
    ]);
    this.width = c.output.width;
    this.errorString = c.output.errorString;
    this.httpStatus = c.output.httpStatus;
  }

  /** Each row's prompt after the template and `max-context-size`; no text for NULL inputs and skipped rows. */
  payloads(batch: ColumnBatch): RowPayload[] {
    const out: RowPayload[] = [];
    for (let row = 0; row < batch.rowCount; row++) {
      const values = batch.columns.map((c) => valueAt(c, row));
      const rendered = this.config.template.render(values);
      if (rendered === undefined) {
        out.push({ skipped: false });
        continue;
      }
      const fitted = fitContext(rendered, this.config.maxContextSize, this.config.contextOverflowAction);
      out.push({ text: fitted.text, skipped: fitted.text === undefined });
    }
    return out;
  }

  cacheKey(payload: RowPayload): string | null {
    return payload.text === undefined ? null : createHash('sha256').update(this.fingerprint).update('\u0000').update(payload.text).digest('hex');
  }

  /** The request for some rows: embeddings take texts; chat takes one message, with a schema when structured or packed. */
  request(rows: readonly RowPayload[]): ProviderRequest {
    const texts = rows.map((r) => r.text!);
    const plan = this.config.output;
    if (plan.mode === 'embedding') return { texts };
    if (texts.length === 1) {
      if (plan.mode === 'text') return { message: texts[0]! };
      const schema = rowSchema(plan);
      return { message: structuredMessage(texts[0]!, schema), schema };
    }
    return { message: packedMessage(texts, plan.mode === 'json'), schema: packedSchema(plan, texts.length) };
  }

  /** Splits and checks a reply: one OUTPUT row (answer columns in place) per row of the pack. */
  answers(reply: ProviderReply, count: number): unknown[][] {
    const plan = this.config.output;
    let items: unknown[];
    if (plan.mode === 'embedding') {
      items = [...(reply.vectors ?? [])];
      if (items.length !== count) throw new AnswerError(`expected ${count} embeddings, got ${items.length}`);
      if (this.config.dimension !== undefined) {
        for (const v of items) {
          if (!Array.isArray(v) || v.length !== this.config.dimension) {
            throw new AnswerError(`expected embeddings of dimension ${this.config.dimension}, got ${Array.isArray(v) ? v.length : typeof v}`);
          }
        }
      }
    } else if (count === 1) {
      items = [reply.text ?? ''];
    } else {
      const parsed = parseJsonText(reply.text ?? '');
      const answers = (parsed as { answers?: unknown } | null)?.answers;
      if (!Array.isArray(answers)) throw new AnswerError(`expected {"answers": [...]} for a pack of ${count} rows, got ${preview(reply.text)}`);
      if (answers.length !== count) throw new AnswerError(`expected ${count} answers, got ${answers.length}`);
      items = answers;
    }
    return items.map((item) => {
      const values = answerValues(plan, plan.mode === 'json' && typeof item === 'string' ? parseJsonText(item) : item);
      const row = new Array<unknown>(plan.width).fill(null);
      plan.answers.forEach((a, i) => (row[a.index] = values[i]));
      return row;
    });
  }
}
