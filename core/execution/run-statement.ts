/**
 * Executes a statement holding ML calls: drives the planner (core/planner/plan-calls.ts),
 * answering each fact it asks for from the catalog and the host and running the model
 * stages it plans, then hands back the rewritten host SQL, or a write straight into the
 * statement's table. The caller runs the SQL and drops the temporary tables afterwards.
 */
import { positionAt, withoutGeneratedSql } from '../errors.js';
import { directWriteShape } from '../planner/direct-write.js';
import { planCall, planRegion } from '../planner/plan-calls.js';
import type { Plan, PlanAnswers, PlanEnv, PlanRequest } from '../planner/plan-requests.js';
import { spliceCallsMapped, type SplicedText } from '../planner/splice.js';
import type { QueryStatement } from '../sql/ast.js';
import type { DirectWrite, ExecutionContext } from './execution-context.js';
import { runModelStage } from './model-stage.js';
import { textGenerationRelation } from './text-generation-scores.js';

/**
 * How a statement with ML calls runs: its rewritten host SQL (with `scriptOffset`, the
 * offset in the script of an offset in `sql`, for the positions of host errors), or a
 * write straight into its table.
 */
export type StatementPlan =
  | { readonly sql: string; readonly scriptOffset?: (offset: number) => number; readonly write?: undefined }
  | { readonly sql?: undefined; readonly write: DirectWrite };

/**
 * Plans and prepares a statement: the shapes of direct-write.ts, on a host whose one-pass
 * stage can write into the statement's table, become a `DirectWrite`; every other statement
 * is rewritten (its stages run now) into host SQL.
 */
export async function planStatement(statement: QueryStatement, ctx: ExecutionContext): Promise<StatementPlan> {
  const env = planEnv(ctx);
  const shape = ctx.host.openStage && !ctx.describeOnly ? directWriteShape(statement, ctx.scriptText) : undefined;
  if (!shape) return mapped(await drive(planRegion(statement.span, statement.calls, env), (request) => answer(request, ctx)));
  let write: DirectWrite | undefined;
  const relation = await drive(planCall(shape.call, env), async (request) => {
    // Only the statement's own call may write into its table; calls nested in its input run as usual.
    if (request.kind !== 'stage' || request.stage.call !== shape.call) return answer(request, ctx);
    const result = await runModelStage(request.stage, ctx, { shape, statement });
    if (typeof result === 'string') return result;
    // The stage writes the rows itself: a stage of no evaluation is the call's last request.
    write = result;
    return '';
  });
  if (write) return { write };
  return mapped(spliceCallsMapped(ctx.scriptText, statement.span, [shape.call], [relation]));
}

function mapped(spliced: SplicedText): StatementPlan {
  return { sql: spliced.text, scriptOffset: (o) => spliced.originalOffset(o) };
}

/** What the planner knows of this session without asking. */
function planEnv(ctx: ExecutionContext): PlanEnv {
  return { scriptText: ctx.scriptText, dialect: ctx.host.dialect, hostName: ctx.host.name, caps: ctx.loader.caps, describeOnly: ctx.describeOnly };
}

/** Runs a plan to its end, answering each request with `respond`. */
async function drive<T>(plan: Plan<T>, respond: (request: PlanRequest) => Promise<unknown>): Promise<T> {
  let step = plan.next();
  while (!step.done) step = plan.next(await respond(step.value));
  return step.value;
}

/** Answers one planner request from the session's catalog, host and runtimes. */
async function answer(request: PlanRequest, ctx: ExecutionContext): Promise<PlanAnswers[PlanRequest['kind']]> {
  const host = ctx.host;
  switch (request.kind) {
    case 'model':
      return ctx.models(request.name);
    case 'trained':
      return ctx.catalog.trainedModel(request.version);
    case 'describe':
      try {
        return await host.describe(request.query);
      } catch (error) {
        throw withoutGeneratedSql(error, 'in the input of the ML call', positionAt(ctx.scriptText, request.input.span.start));
      }
    case 'stage':
      return runModelStage(request.stage, ctx);
    case 'text-scores':
      return textGenerationRelation(host, request.spec);
    case 'vector-dimensions': {
      let row: readonly unknown[] | undefined;
      try {
        row = (await host.execute(host.dialect.vectors!.dimensions(request.source, request.columns, request.index))).rows[0];
      } catch (error) {
        throw withoutGeneratedSql(error, 'in the table VECTOR_SEARCH searches', request.position);
      }
      return row === undefined || row[0] === null || row[0] === undefined ? undefined : [Number(row[0]), Number(row[1]), row[2] === true, row[3] === null || row[3] === undefined ? 1 : Number(row[3])];
    }
    case 'accepts':
      return host.describe(request.probe).then(
        () => true,
        () => false,
      );
  }
}
