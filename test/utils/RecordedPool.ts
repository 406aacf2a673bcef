// A pool in a scope of its own, with every event it publishes recorded from
// the start. `events` and `lines` complete once `close` has ended the stream.
import { Effect, Exit, Fiber, Scope, Stream } from "effect"
import { CoroutinePool } from "../../src/index.ts"

export const make = (max: number, waiting: Omit<CoroutinePool.Options, "max"> = {}) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const pool = yield* CoroutinePool.make({ max, ...waiting }).pipe(Scope.provide(scope))
    const recorder = yield* Effect.forkChild(Stream.runCollect(yield* pool.subscribe))
    const events = Fiber.join(recorder)
    return {
      pool,
      scope,
      close: Scope.close(scope, Exit.void),
      events,
      lines: Effect.map(events, (all) => all.map(CoroutinePool.formatEvent))
    }
  })

/** The worker an event is about; `Resized` and `Warming` are about the pool. */
export const workerOf = (event: CoroutinePool.PoolEvent): CoroutinePool.WorkerId | undefined =>
  "worker" in event ? event.worker : undefined
