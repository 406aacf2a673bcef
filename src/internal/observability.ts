// Spans and Debug logs of a pool's transitions, shared by the in-process pool
// and SharedPool.

import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"

// Spans are built only when a tracing backend is installed. With Effect's
// default tracer nobody reads them (see `Tracer.nativeTracer`), and a span
// costs microseconds: several times a whole uncontended `withPermit`.
export const isTracing = (fiber: Fiber.Fiber<unknown, unknown> | undefined): boolean => {
  const tracer = fiber?.cache.tracer
  return tracer !== undefined && tracer !== Tracer.nativeTracer && fiber?.cache.tracerEnabled === true
}

// `ok`, `failed` (the work failed), `interrupted`, `lost` (a shared pool's
// lease), or `rejected` with the reason.
const outcome = (exit: Exit.Exit<unknown, unknown>): Record<string, string> => {
  if (Exit.isSuccess(exit)) return { "coroutine_pool.outcome": "ok" }
  const error = Option.getOrUndefined(Cause.findErrorOption(exit.cause)) as
    | { readonly _tag?: unknown; readonly reason?: unknown }
    | undefined
  if (error?._tag === "PoolRejected") {
    return { "coroutine_pool.outcome": "rejected", "coroutine_pool.reason": String(error.reason) }
  }
  if (error?._tag === "LeaseLost") return { "coroutine_pool.outcome": "lost" }
  return { "coroutine_pool.outcome": Exit.hasInterrupts(exit) ? "interrupted" : "failed" }
}

// Runs `effect` in a span named `span`, annotated with its outcome.
export const spanned = <A, E, R>(
  span: string,
  pool: string,
  worker: number | string,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  effect.pipe(
    Effect.onExit((exit) => Effect.annotateCurrentSpan(outcome(exit))),
    Effect.withSpan(
      span,
      { attributes: { "coroutine_pool.name": pool, "coroutine_pool.worker": worker } },
      { captureStackTrace: false }
    )
  )

// Logs every event at Debug, annotated, from a detached fiber that ends with
// the stream (the pool awaits it when it closes).
export const logEvents = <A extends object>(
  events: Stream.Stream<A>,
  pool: string,
  format: (event: A) => string
): Effect.Effect<Fiber.Fiber<void>> =>
  Effect.forkDetach(
    Stream.runForEach(events, (event) => Effect.logDebug(format(event)).pipe(Effect.annotateLogs({ pool, ...event }))),
    { startImmediately: true }
  )
