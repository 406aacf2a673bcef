// Why the pool is not an Effect Semaphore beside a Ref counter: the
// Semaphore's decision, the Ref's count and the printed line are three steps.
// Under a tiny yield budget other fibers run between them, so lines report
// counts the decision never saw ("rejected (1/2 active)") or come out in
// another order than the transitions. A lock around the three would fix it at
// the price of a second semaphore per transition; the pool makes one
// synchronous transition that decides, counts and publishes.
//
//   npx node scratchpad/semaphore-plus-ref.ts
import { Console, Effect, Exit, Fiber, Ref, Scheduler, Scope, Semaphore, Stream } from "effect"
import { CoroutinePool } from "../src/index.ts"

const max = 2

// Six workers, each taking a permit three times, printing as the seed does.
const scenario = Effect.gen(function* () {
  const permits = yield* Semaphore.make(max)
  const active = yield* Ref.make(0)
  const lines: Array<string> = []
  const print = (line: string) => Effect.sync(() => lines.push(line))
  yield* Effect.forEach(
    [0, 1, 2, 3, 4, 5],
    (id) =>
      Effect.gen(function* () {
        for (let round = 0; round < 3; round++) {
          if (!(yield* permits.takeIfAvailable(1))) {
            yield* print(`Worker ${id}: rejected (${yield* Ref.get(active)}/${max} active)`)
            continue
          }
          yield* print(`Worker ${id}: acquired (${yield* Ref.updateAndGet(active, (n) => n + 1)}/${max} active)`)
          yield* Effect.yieldNow
          yield* permits.release(1)
          yield* print(`Worker ${id}: released (${yield* Ref.updateAndGet(active, (n) => n - 1)}/${max} active)`)
        }
      }),
    { concurrency: "unbounded", discard: true }
  )
  return lines
})

// The same workers on a CoroutinePool, its lines taken from its event stream.
// The pool gets a scope of its own: closing it ends the stream while the
// subscription, in the outer scope, is still there to deliver every event.
const onPool = Effect.gen(function* () {
  const poolScope = yield* Scope.make()
  const pool = yield* Scope.provide(CoroutinePool.make({ max }), poolScope)
  const events = yield* pool.subscribe
  const printed = yield* Effect.forkChild(Stream.runCollect(Stream.map(events, CoroutinePool.formatEvent)))
  yield* Effect.forEach(
    [0, 1, 2, 3, 4, 5],
    (id) =>
      Effect.forEach([0, 1, 2], () => Effect.ignore(pool.withPermit(Effect.yieldNow, { worker: id })), {
        discard: true
      }),
    { concurrency: "unbounded", discard: true }
  )
  yield* Scope.close(poolScope, Exit.void)
  return yield* Fiber.join(printed)
}).pipe(Effect.scoped)

// The lines that do not follow from the line before them.
const inconsistencies = (lines: ReadonlyArray<string>) => {
  let previous = 0
  return lines.flatMap((line) => {
    const [, kind, count] = /: (\w+) \((\d+)\//.exec(line) ?? []
    const now = Number(count)
    const expected = kind === "acquired" ? previous + 1 : kind === "released" ? previous - 1 : previous
    const ok = now === expected && (kind !== "rejected" || now === max)
    previous = now
    return ok ? [] : [`${line}   <- after ${lines[lines.indexOf(line) - 1] ?? "nothing"}`]
  })
}

Effect.runPromise(
  Effect.gen(function* () {
    for (const budget of [2048, 3, 4, 5, 6, 7, 8]) {
      const lines = yield* Effect.provideService(scenario, Scheduler.MaxOpsBeforeYield, budget)
      const wrong = inconsistencies(lines)
      yield* Console.log(
        `\nSemaphore + Ref, MaxOpsBeforeYield ${budget}: ${wrong.length} of ${lines.length} lines wrong`
      )
      for (const line of wrong.slice(0, 5)) yield* Console.log(`  ${line}`)
    }
    for (const budget of [2048, 3, 4, 5, 6, 7, 8]) {
      const lines = yield* Effect.provideService(onPool, Scheduler.MaxOpsBeforeYield, budget)
      yield* Console.log(
        `CoroutinePool, MaxOpsBeforeYield ${budget}: ${inconsistencies(lines).length} of ${lines.length} lines wrong`
      )
    }
  })
)
