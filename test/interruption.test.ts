import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scheduler, Schema } from "effect"
import { TestClock } from "effect/testing"
import type { CoroutinePool } from "../src/index.ts"
import * as RecordedPool from "./utils/RecordedPool.ts"
import * as Stepper from "./utils/Stepper.ts"

const tags = (events: ReadonlyArray<CoroutinePool.PoolEvent>) =>
  events.map((event) => `${event._tag} ${RecordedPool.workerOf(event)}`)

describe("interrupting a worker at every step of withPermit", () => {
  it.effect("returns the permit and publishes its release whenever the interrupt lands", () =>
    Effect.gen(function* () {
      const outcomes: Array<boolean> = []
      for (let steps = 0; steps < 12; steps++) {
        const { close, events, pool } = yield* RecordedPool.make(1)
        const stepper = Stepper.make()
        // A little work before the call, so the sweep starts before the acquisition.
        const worker = yield* Effect.yieldNow.pipe(
          Effect.andThen(pool.withPermit(Effect.never, { worker: 0 })),
          Effect.provideService(Scheduler.Scheduler, stepper.scheduler),
          Effect.forkChild
        )
        yield* Effect.yieldNow
        for (let i = 0; i < steps; i++) stepper.step()
        worker.interruptUnsafe()
        while (worker.pollUnsafe() === undefined) {
          if (!stepper.step()) yield* Effect.yieldNow
        }
        assert.isTrue(Exit.hasInterrupts(worker.pollUnsafe() as Exit.Exit<never>), `after ${steps} steps`)
        assert.strictEqual(yield* pool.active, 0, `after ${steps} steps`)
        yield* close
        // An interrupt that lands before the acquisition leaves no trace; one
        // that lands later ends the work, and the permit comes back.
        const log = tags(yield* events)
        assert.oneOf(log.join(", "), ["", "Acquired 0, Released 0"], `after ${steps} steps`)
        outcomes.push(log.length > 0)
      }
      // The sweep really crossed the acquisition: interrupted before it, then after it.
      const firstAcquired = outcomes.indexOf(true)
      assert.isAbove(firstAcquired, 0)
      assert.deepStrictEqual(
        outcomes.slice(firstAcquired),
        outcomes.slice(firstAcquired).map(() => true)
      )
    })
  )
})

const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

describe("interruption racing the work, any scheduling", () => {
  it.effect.prop(
    "interrupts and timeouts landing at any instant, even the holder's own release instant, leak nothing",
    {
      max: between(1, 3),
      workers: Schema.Array(
        Schema.Struct({
          hold: between(0, 30),
          // Undefined: left alone; otherwise interrupted, or timed out, at that instant.
          cut: Schema.UndefinedOr(Schema.Struct({ at: between(0, 30), by: Schema.Literals(["interrupt", "timeout"]) }))
        })
      ).check(Schema.isMinLength(1), Schema.isMaxLength(6)),
      budget: Schema.Literals([3, 4, 5, 2048])
    },
    ({ budget, max, workers }) =>
      Effect.gen(function* () {
        const { close, events, pool } = yield* RecordedPool.make(max)
        const fibers = yield* Effect.forEach(workers, ({ cut, hold }, worker) => {
          const work = pool.withPermit(Effect.sleep(hold), { worker: worker })
          return Effect.forkChild(cut?.by === "timeout" ? Effect.timeout(work, cut.at) : work)
        })
        yield* Effect.forEach(workers, ({ cut }, worker) =>
          cut?.by === "interrupt"
            ? Effect.forkChild(
                Effect.andThen(Effect.sleep(cut.at), Fiber.interrupt(fibers[worker] as Fiber.Fiber<void>))
              )
            : Effect.void
        )
        yield* TestClock.adjust("31 millis")
        yield* Fiber.awaitAll(fibers)
        assert.strictEqual(yield* pool.active, 0)
        yield* close
        const log = yield* events
        workers.forEach((_, worker) => {
          const mine = tags(log.filter((event) => RecordedPool.workerOf(event) === worker))
          assert.oneOf(mine.join(", "), [`Acquired ${worker}, Released ${worker}`, `Rejected ${worker}`, ""])
        })
      }).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, budget)),
    { arbitrary: { runs: 150 } }
  )
})

describe("closing the pool's scope with workers running", () => {
  it.effect("leaves no fiber, no permit and no unmatched event behind", () =>
    Effect.gen(function* () {
      const { close, events, pool, scope } = yield* RecordedPool.make(2)
      // Seed-style workers that retry until admitted, forked into the pool's scope.
      const worker = (id: number): Effect.Effect<void> =>
        pool
          .withPermit(Effect.sleep("100 millis"), { worker: id })
          .pipe(Effect.catchTag("PoolRejected", () => Effect.andThen(Effect.sleep("30 millis"), worker(id))))
      const fibers = yield* Effect.forEach([0, 1, 2, 3, 4], (id) => Effect.forkIn(worker(id), scope))
      yield* TestClock.adjust("150 millis")
      assert.strictEqual(yield* pool.active, 2)
      yield* close
      for (const fiber of fibers) assert.isDefined(fiber.pollUnsafe(), "every worker fiber has ended")
      assert.strictEqual(yield* pool.active, 0)
      const log = yield* events
      for (const id of [0, 1, 2, 3, 4]) {
        const mine = log.filter((event) => RecordedPool.workerOf(event) === id)
        const acquired = mine.filter((event) => event._tag === "Acquired").length
        assert.strictEqual(mine.filter((event) => event._tag === "Released").length, acquired)
      }
      assert.strictEqual(log.at(-1)?.active, 0)
    })
  )

  it.effect("interrupts holders forked elsewhere and waits for their releases", () =>
    Effect.gen(function* () {
      const { close, events, pool } = yield* RecordedPool.make(2)
      const released: Array<number> = []
      const holders = yield* Effect.forEach([0, 1], (id) =>
        pool.withPermit(Effect.never, { worker: id }).pipe(
          Effect.onInterrupt(() => Effect.sync(() => released.push(id))),
          Effect.forkChild({ startImmediately: true })
        )
      )
      yield* close
      assert.deepStrictEqual(released, [0, 1])
      for (const holder of holders) assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(holder)))
      assert.deepStrictEqual(tags(yield* events), ["Acquired 0", "Acquired 1", "Released 0", "Released 1"])
    })
  )
})
