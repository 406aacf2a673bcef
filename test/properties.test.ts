import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scheduler, Schema, Scope, Stream } from "effect"
import { CoroutinePool, Demo } from "../src/index.ts"
import * as RecordedPool from "./utils/RecordedPool.ts"
import * as Transcript from "./utils/Transcript.ts"
import * as VirtualTime from "./utils/VirtualTime.ts"

// 3 is the finest budget with which fibers still make progress; the rest mix
// fine and coarse slicing with the default.
const Budget = Schema.Literals([3, 4, 5, 7, 16, 2048])
const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

describe("Demo.run, any options, any scheduling", () => {
  it.effect.prop(
    "keeps every invariant and prints the same lines as under the default budget",
    { workers: between(1, 12), max: between(1, 5), hold: between(0, 250), retry: between(1, 250), budget: Budget },
    ({ budget, hold, max, retry, workers }) =>
      Effect.gen(function* () {
        const options = { workers, max, hold, retry }
        // Admissions come at most hold + retry apart while anybody waits.
        const within = workers * (hold + retry) + hold
        const adversarial = yield* VirtualTime.run(Demo.run(options), within).pipe(
          Effect.provideService(Scheduler.MaxOpsBeforeYield, budget)
        )
        Transcript.assertConsistent(Transcript.parse(adversarial.lines), workers, max)
        const reference = yield* VirtualTime.run(Demo.run(options), within)
        assert.deepStrictEqual(adversarial.lines, reference.lines)
      }),
    { arbitrary: { runs: 60 } }
  )
})

// Each fiber is one worker running a random script against a shared pool.
const Op = Schema.Literals(["try", "release", "with", "yield"])

describe("CoroutinePool under concurrent random use", () => {
  it.effect.prop(
    "events tell the true story: counts step by one, rejections only when full, outcomes match a model",
    {
      max: between(1, 4),
      scripts: Schema.Array(Schema.Array(Op).check(Schema.isMaxLength(12))).check(Schema.isMaxLength(6)),
      budget: Budget
    },
    ({ budget, max, scripts }) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const pool = yield* CoroutinePool.make({ max }).pipe(Scope.provide(scope))
        const events = yield* pool.subscribe
        const recorder = yield* Effect.forkChild(Stream.runCollect(events))

        // What each worker observed; a worker is the only user of its label, so
        // its own count of held permits predicts every `release`.
        const admitted = yield* Effect.forEach(
          scripts,
          (script, worker) =>
            Effect.gen(function* () {
              let held = 0
              let admissions = 0
              for (const op of script) {
                switch (op) {
                  case "try": {
                    if (yield* pool.tryAcquire(1, { worker: worker })) {
                      held++
                      admissions++
                    }
                    break
                  }
                  case "release": {
                    const exit = yield* Effect.exit(pool.release(1, { worker: worker }))
                    assert.strictEqual(Exit.isSuccess(exit), held > 0, `worker ${worker} release with ${held} held`)
                    if (held > 0) held--
                    break
                  }
                  case "with": {
                    const exit = yield* Effect.exit(pool.withPermit(Effect.yieldNow, { worker: worker }))
                    if (Exit.isSuccess(exit)) admissions++
                    break
                  }
                  case "yield":
                    yield* Effect.yieldNow
                }
              }
              return { held, admissions }
            }),
          { concurrency: "unbounded" }
        ).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, budget))

        const stillHeld = admitted.reduce((sum, worker) => sum + worker.held, 0)
        assert.strictEqual(yield* pool.active, stillHeld)
        // Closing returns the permits still held by `tryAcquire`.
        yield* Scope.close(scope, Exit.void)
        const log = yield* Fiber.join(recorder)

        let active = 0
        for (const event of log) {
          assert.strictEqual(event.max, max)
          if (event._tag === "Rejected") assert.strictEqual(active, max, "rejected only when full")
          const expected = event._tag === "Acquired" ? active + 1 : event._tag === "Released" ? active - 1 : active
          assert.strictEqual(event.active, expected)
          assert.isAtMost(event.active, max)
          assert.isAtLeast(event.active, 0)
          active = event.active
        }
        assert.strictEqual(active, 0)
        admitted.forEach(({ admissions }, worker) => {
          const mine = log.filter((event) => RecordedPool.workerOf(event) === worker)
          assert.strictEqual(mine.filter((event) => event._tag === "Acquired").length, admissions)
          assert.strictEqual(mine.filter((event) => event._tag === "Released").length, admissions)
        })
      }),
    { arbitrary: { runs: 150 } }
  )
})
