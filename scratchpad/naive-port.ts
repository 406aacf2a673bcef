// The seed's Python class ported naively: the check and the count are two
// steps (Ref.get, then Ref.set) and the line is printed in a third, with no
// lock around them. Under a tiny yield budget the fibers interleave between
// the steps and the lines stop adding up. The same scenario on a
// CoroutinePool, under the same budget, prints the seed's lines.
//
//   npx node scratchpad/naive-port.ts
import { Console, Effect, Fiber, Ref, Scheduler, Stream } from "effect"
import { CoroutinePool } from "../src/index.ts"

const makeNaivePool = (max: number) =>
  Effect.map(Ref.make(0), (active) => ({
    acquire: (id: number) =>
      Effect.gen(function* () {
        const now = yield* Ref.get(active)
        if (now >= max) {
          yield* Console.log(`Worker ${id}: rejected (${now}/${max} active)`)
          return false
        }
        yield* Ref.set(active, now + 1)
        yield* Console.log(`Worker ${id}: acquired (${yield* Ref.get(active)}/${max} active)`)
        return true
      }),
    release: (id: number) =>
      Effect.gen(function* () {
        yield* Ref.set(active, (yield* Ref.get(active)) - 1)
        yield* Console.log(`Worker ${id}: released (${yield* Ref.get(active)}/${max} active)`)
      })
  }))

// The Python's scenario: four threads, two permits; a rejected worker gives up.
const naive = Effect.gen(function* () {
  const pool = yield* makeNaivePool(2)
  yield* Effect.forEach(
    [0, 1, 2, 3],
    (id) =>
      Effect.gen(function* () {
        if (!(yield* pool.acquire(id))) return
        yield* Effect.sleep("100 millis")
        yield* pool.release(id)
      }),
    { concurrency: "unbounded", discard: true }
  )
})

// The same scenario on the pool, printed from its event stream.
const atomic = Effect.gen(function* () {
  const pool = yield* CoroutinePool.make({ max: 2 })
  const events = yield* pool.subscribe
  const printer = yield* Effect.forkChild(
    Stream.runForEach(Stream.take(events, 6), (event) => Console.log(CoroutinePool.formatEvent(event)))
  )
  yield* Effect.forEach(
    [0, 1, 2, 3],
    (id) =>
      pool
        .withPermit(Effect.sleep("100 millis"), { worker: id })
        .pipe(Effect.catchTag("PoolRejected", () => Effect.void)),
    { concurrency: "unbounded", discard: true }
  )
  yield* Fiber.join(printer)
}).pipe(Effect.scoped)

const program = Effect.gen(function* () {
  for (const budget of [2048, 3]) {
    yield* Console.log(`\nnaive port, MaxOpsBeforeYield ${budget}:`)
    yield* Effect.provideService(naive, Scheduler.MaxOpsBeforeYield, budget)
  }
  yield* Console.log("\nCoroutinePool, MaxOpsBeforeYield 3:")
  yield* Effect.provideService(atomic, Scheduler.MaxOpsBeforeYield, 3)
})

Effect.runPromise(program)
