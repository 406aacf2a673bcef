import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Layer, Option, Scope } from "effect"
import { TestClock } from "effect/testing"
import { CoroutinePool } from "../src/index.ts"
import * as RecordedPool from "./utils/RecordedPool.ts"

// Holds the permit for `millis` of virtual time, noting when it started.
const work = (log: Array<string>, worker: number, millis: number) =>
  Effect.gen(function* () {
    log.push(`${worker} starts at ${yield* Clock.currentTimeMillis}`)
    yield* Effect.sleep(Duration.millis(millis))
  })

const fork = <A, E>(effect: Effect.Effect<A, E>) => Effect.forkChild(effect, { startImmediately: true })

describe("withPermit, waiting as the pool allows", () => {
  it.effect("queues in strict FIFO order up to maxWaiting, then rejects with queue-full", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(1, { maxWaiting: 2 })
      const log: Array<string> = []
      const fibers = [
        yield* fork(pool.withPermit(work(log, 0, 100), { worker: 0 })),
        yield* fork(pool.withPermit(work(log, 1, 10), { worker: 1 })),
        yield* fork(pool.withPermit(work(log, 2, 10), { worker: 2 }))
      ]
      const rejected = yield* Effect.flip(pool.withPermit(Effect.void, { worker: 3 }))
      assert.deepStrictEqual([rejected.reason, rejected.active, rejected.max], ["queue-full", 1, 1])
      assert.deepStrictEqual(yield* pool.stats, {
        active: 1,
        waiting: 2,
        max: 1,
        maxWaiting: 2,
        acquired: 1,
        rejected: 1,
        released: 0,
        queued: 2,
        timedOut: 0,
        abandoned: 0,
        dropped: 0
      })
      yield* TestClock.adjust("120 millis")
      yield* Fiber.joinAll(fibers)
      yield* close
      assert.deepStrictEqual(log, ["0 starts at 0", "1 starts at 100", "2 starts at 110"])
      assert.deepStrictEqual(yield* lines, [
        "Worker 0: acquired (1/1 active)",
        "Worker 1: queued (1/1 active, 1 waiting)",
        "Worker 2: queued (1/1 active, 2 waiting)",
        "Worker 3: rejected (1/1 active, 2 waiting)",
        "Worker 0: released (0/1 active, 2 waiting)",
        "Worker 1: acquired (1/1 active, 1 waiting)",
        "Worker 1: released (0/1 active, 1 waiting)",
        "Worker 2: acquired (1/1 active)",
        "Worker 2: released (0/1 active)"
      ])
    })
  )

  // 0.3 compared withPermitWaiting with the never-waiting withPermit; in 0.4
  // the never-waiting call is withPermitIfAvailable, which answers None.
  it.effect(
    "with maxWaiting 0 never waits: the same transcript as withPermitIfAvailable, a rejection for its None",
    () =>
      Effect.gen(function* () {
        const transcript = <A>(
          call: (pool: CoroutinePool.CoroutinePool, worker: number) => Effect.Effect<A, CoroutinePool.PoolRejected>
        ) =>
          Effect.gen(function* () {
            const { close, lines, pool } = yield* RecordedPool.make(1)
            const holder = yield* fork(call(pool, 0))
            const turnedAway = yield* Effect.exit(call(pool, 1))
            yield* TestClock.adjust("10 millis")
            yield* Fiber.join(holder)
            yield* close
            return { turnedAway, lines: yield* lines, stats: yield* pool.stats }
          })
        const hold = Effect.sleep("10 millis")
        const waiting = yield* transcript((pool, worker) => pool.withPermit(hold, { worker }))
        const ifAvailable = yield* transcript((pool, worker) => pool.withPermitIfAvailable(hold, { worker }))
        assert.deepStrictEqual(waiting.lines, ifAvailable.lines)
        assert.deepStrictEqual(waiting.stats, ifAvailable.stats)
        assert.deepStrictEqual(
          waiting.turnedAway,
          Exit.fail(new CoroutinePool.PoolRejected({ worker: 1, reason: "full", active: 1, max: 1 }))
        )
        assert.deepStrictEqual(ifAvailable.turnedAway, Exit.succeed(Option.none()))
        assert.deepStrictEqual(waiting.lines, [
          "Worker 0: acquired (1/1 active)",
          "Worker 1: rejected (1/1 active)",
          "Worker 0: released (0/1 active)"
        ])
        assert.deepStrictEqual([waiting.stats.acquired, waiting.stats.rejected, waiting.stats.released], [1, 1, 1])
      })
  )

  it.effect("fails with reason full when maxWaiting is 0", () =>
    Effect.gen(function* () {
      const pool = yield* CoroutinePool.make({ max: 1 })
      yield* pool.tryAcquire(1, { worker: 0 })
      const error = yield* Effect.flip(pool.withPermit(Effect.void, { worker: 1 }))
      assert.deepStrictEqual([error.reason, error.message], ["full", "Worker 1: rejected, all 1 permits are taken"])
    })
  )

  it.effect("gives up after maxWait with reason timeout and a TimedOut event, not one milli earlier", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(1, { maxWaiting: 1, maxWait: "50 millis" })
      yield* pool.tryAcquire(1, { worker: 0 })
      const waiter = yield* fork(pool.withPermit(Effect.succeed("ran"), { worker: 1 }))
      yield* TestClock.adjust("49 millis")
      assert.isUndefined(waiter.pollUnsafe(), "still waiting at 49 ms")
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(waiter)
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(Fiber.join(waiter))
      assert.deepStrictEqual([error._tag, error.reason], ["PoolRejected", "timeout"])
      // The queue is empty again: the next caller queues as the first.
      const next = yield* fork(pool.withPermit(Effect.void, { worker: 2 }))
      yield* pool.release(1, { worker: 0 })
      yield* Fiber.join(next)
      yield* close
      assert.deepStrictEqual(yield* lines, [
        "Worker 0: acquired (1/1 active)",
        "Worker 1: queued (1/1 active, 1 waiting)",
        "Worker 1: timed out (1/1 active)",
        "Worker 2: queued (1/1 active, 1 waiting)",
        "Worker 0: released (0/1 active, 1 waiting)",
        "Worker 2: acquired (1/1 active)",
        "Worker 2: released (0/1 active)"
      ])
      assert.strictEqual((yield* pool.stats).timedOut, 1)
    })
  )

  it.effect("a permit freed at the very instant maxWait ends is either taken or passed on, never lost", () =>
    Effect.gen(function* () {
      // Both orders of the two equal deadlines: the holder's sleep registered
      // before the waiter's timer, and after it.
      const taken: Array<boolean> = []
      for (const holderFirst of [true, false]) {
        const { close, events, pool } = yield* RecordedPool.make(1, { maxWaiting: 2, maxWait: "50 millis" })
        const hold = pool.withPermit(Effect.sleep("50 millis"), { worker: 0 })
        const holder = holderFirst ? yield* fork(hold) : undefined
        if (!holderFirst) yield* pool.tryAcquire(1, { worker: 0 })
        const waiter = yield* fork(pool.withPermit(Effect.succeed("ran"), { worker: 1 }).pipe(Effect.exit))
        const lastHolder = holderFirst
          ? undefined
          : yield* fork(Effect.delay(pool.release(1, { worker: 0 }), "50 millis"))
        yield* TestClock.adjust("50 millis")
        const exit = yield* Fiber.join(waiter)
        if (holder) yield* Fiber.join(holder)
        if (lastHolder) yield* Fiber.join(lastHolder)
        assert.strictEqual(yield* pool.active, 0, `holder first: ${holderFirst}`)
        assert.isTrue(yield* pool.tryAcquire(1, { worker: 9 }), "the permit is free")
        yield* close
        const tags = (yield* events).map((event) => `${event._tag} ${RecordedPool.workerOf(event)}`)
        taken.push(Exit.isSuccess(exit))
        if (Exit.isSuccess(exit)) {
          assert.deepStrictEqual(tags.slice(-5), ["Released 0", "Acquired 1", "Released 1", "Acquired 9", "Released 9"])
        } else {
          assert.deepStrictEqual(tags.slice(-4), ["TimedOut 1", "Released 0", "Acquired 9", "Released 9"])
        }
      }
      // The TestClock wakes equal deadlines in registration order, so both outcomes were exercised.
      assert.deepStrictEqual(taken, [true, false])
    })
  )
})

describe("no barging", () => {
  // 0.4: withPermit waits as the pool allows (here it would queue behind 1);
  // the calls that never wait are tryAcquire and withPermitIfAvailable.
  it.effect(
    "a released permit goes to the head waiter; tryAcquire and withPermitIfAvailable are turned away at that moment",
    () =>
      Effect.gen(function* () {
        const { close, lines, pool } = yield* RecordedPool.make(1, { maxWaiting: 1 })
        yield* pool.tryAcquire(1, { worker: 0 })
        const waiter = yield* fork(pool.withPermit(Effect.sleep("10 millis"), { worker: 1 }))
        // Release and try again in one synchronous step: the waiter has not run yet.
        const [barged, ifAvailable] = yield* Effect.gen(function* () {
          yield* pool.release(1, { worker: 0 })
          return [
            yield* pool.tryAcquire(1, { worker: 2 }),
            yield* pool.withPermitIfAvailable(Effect.void, { worker: 3 })
          ] as const
        })
        assert.isFalse(barged)
        assert.deepStrictEqual(ifAvailable, Option.none())
        yield* TestClock.adjust("10 millis")
        yield* Fiber.join(waiter)
        yield* close
        assert.deepStrictEqual(yield* lines, [
          "Worker 0: acquired (1/1 active)",
          "Worker 1: queued (1/1 active, 1 waiting)",
          "Worker 0: released (0/1 active, 1 waiting)",
          "Worker 1: acquired (1/1 active)",
          "Worker 2: rejected (1/1 active)",
          "Worker 3: rejected (1/1 active)",
          "Worker 1: released (0/1 active)"
        ])
      })
  )
})

describe("leaving the queue", () => {
  it.effect("an interrupted waiter leaves from the middle of the queue; the order of the rest holds", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(1, { maxWaiting: 3 })
      yield* pool.tryAcquire(1, { worker: 0 })
      const log: Array<string> = []
      const [first, middle, last] = [
        yield* fork(pool.withPermit(work(log, 1, 0), { worker: 1 })),
        yield* fork(pool.withPermit(work(log, 2, 0), { worker: 2 })),
        yield* fork(pool.withPermit(work(log, 3, 0), { worker: 3 }))
      ] as const
      yield* Fiber.interrupt(middle)
      assert.strictEqual((yield* pool.stats).waiting, 2)
      yield* pool.release(1, { worker: 0 })
      yield* Fiber.joinAll([first, last])
      yield* close
      assert.deepStrictEqual(log, ["1 starts at 0", "3 starts at 0"])
      assert.deepStrictEqual(yield* lines, [
        "Worker 0: acquired (1/1 active)",
        "Worker 1: queued (1/1 active, 1 waiting)",
        "Worker 2: queued (1/1 active, 2 waiting)",
        "Worker 3: queued (1/1 active, 3 waiting)",
        "Worker 2: abandoned (1/1 active, 2 waiting)",
        "Worker 0: released (0/1 active, 2 waiting)",
        "Worker 1: acquired (1/1 active, 1 waiting)",
        "Worker 1: released (0/1 active, 1 waiting)",
        "Worker 3: acquired (1/1 active)",
        "Worker 3: released (0/1 active)"
      ])
    })
  )

  it.effect("closing the pool turns waiters away with reason closed and Abandoned events", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(1, { maxWaiting: 2 })
      const holder = yield* fork(pool.withPermit(Effect.never, { worker: 0 }))
      const waiter = yield* fork(pool.withPermit(Effect.void, { worker: 1 }))
      yield* close
      const error = yield* Effect.flip(Fiber.join(waiter))
      assert.deepStrictEqual([error.reason, error.message], ["closed", "Worker 1: rejected, the pool is closed"])
      assert.isTrue(Exit.hasInterrupts((yield* Fiber.await(holder)) as Exit.Exit<never>))
      assert.strictEqual((yield* Effect.flip(pool.withPermit(Effect.void, { worker: 2 }))).reason, "closed")
      assert.deepStrictEqual(yield* lines, [
        "Worker 0: acquired (1/1 active)",
        "Worker 1: queued (1/1 active, 1 waiting)",
        "Worker 1: abandoned (1/1 active)",
        "Worker 0: released (0/1 active)"
      ])
    })
  )
})

describe("acquire", () => {
  it.effect("holds the permit until the scope closes, waiting its turn first", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(1, { maxWaiting: 1 })
      const scope = yield* Scope.make()
      yield* pool.acquire(1, { worker: 0 }).pipe(Scope.provide(scope))
      assert.strictEqual(yield* pool.active, 1)
      const second = yield* fork(Effect.scoped(Effect.andThen(pool.acquire(1, { worker: 1 }), pool.active)))
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* Fiber.join(second), 1)
      assert.strictEqual(yield* pool.active, 0)
      yield* close
      assert.deepStrictEqual(yield* lines, [
        "Worker 0: acquired (1/1 active)",
        "Worker 1: queued (1/1 active, 1 waiting)",
        "Worker 0: released (0/1 active, 1 waiting)",
        "Worker 1: acquired (1/1 active)",
        "Worker 1: released (0/1 active)"
      ])
    })
  )

  it.effect("a permit still held when the pool closes is returned once, not again by its scope", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(1)
      const scope = yield* Scope.make()
      yield* pool.acquire(1, { worker: 0 }).pipe(Scope.provide(scope))
      yield* close
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* pool.active, 0)
      assert.deepStrictEqual(yield* lines, ["Worker 0: acquired (1/1 active)", "Worker 0: released (0/1 active)"])
      assert.strictEqual((yield* pool.stats).released, 1)
    })
  )
})

describe("resize", () => {
  it.effect("growing admits waiters at once; shrinking admits nobody until active is below the new max", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(1, { maxWaiting: 3 })
      const holders = [
        yield* fork(pool.withPermit(Effect.sleep("10 millis"), { worker: 0 })),
        yield* fork(pool.withPermit(Effect.sleep("20 millis"), { worker: 1 })),
        yield* fork(pool.withPermit(Effect.sleep("30 millis"), { worker: 2 })),
        yield* fork(pool.withPermit(Effect.sleep("10 millis"), { worker: 3 }))
      ]
      yield* pool.resize(3)
      assert.deepStrictEqual([yield* pool.active, yield* pool.max, (yield* pool.stats).waiting], [3, 3, 1])
      yield* pool.resize(1)
      yield* TestClock.adjust("10 millis") // 0 leaves: 2 active, above the new max
      assert.deepStrictEqual([yield* pool.active, (yield* pool.stats).waiting], [2, 1])
      yield* TestClock.adjust("10 millis") // 1 leaves: 1 active, still not below max
      assert.deepStrictEqual([yield* pool.active, (yield* pool.stats).waiting], [1, 1])
      yield* TestClock.adjust("10 millis") // 2 leaves: 3 gets its turn
      assert.deepStrictEqual([yield* pool.active, (yield* pool.stats).waiting], [1, 0])
      yield* TestClock.adjust("10 millis")
      yield* Fiber.joinAll(holders)
      yield* close
      assert.deepStrictEqual(yield* lines, [
        "Worker 0: acquired (1/1 active)",
        "Worker 1: queued (1/1 active, 1 waiting)",
        "Worker 2: queued (1/1 active, 2 waiting)",
        "Worker 3: queued (1/1 active, 3 waiting)",
        "Pool: resized from 1 to 3 (1/3 active, 3 waiting)",
        "Worker 1: acquired (2/3 active, 2 waiting)",
        "Worker 2: acquired (3/3 active, 1 waiting)",
        "Pool: resized from 3 to 1 (3/1 active, 1 waiting)",
        "Worker 0: released (2/1 active, 1 waiting)",
        "Worker 1: released (1/1 active, 1 waiting)",
        "Worker 2: released (0/1 active, 1 waiting)",
        "Worker 3: acquired (1/1 active)",
        "Worker 3: released (0/1 active)"
      ])
    })
  )

  it.effect("rejects a bad size with InvalidPoolSize and changes nothing", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(2)
      for (const max of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        const error = yield* Effect.flip(pool.resize(max))
        assert.instanceOf(error, CoroutinePool.InvalidPoolSize)
        assert.isTrue(Object.is(error.max, max))
      }
      assert.strictEqual(yield* pool.max, 2)
      yield* close
      assert.deepStrictEqual(yield* lines, [])
    })
  )
})

describe("make's waiting options", () => {
  it.effect("rejects a bad maxWaiting or maxWait with InvalidPoolOption carrying it", () =>
    Effect.gen(function* () {
      const bad: ReadonlyArray<[option: "maxWaiting" | "maxWait", value: unknown]> = [
        ["maxWaiting", -1],
        ["maxWaiting", 1.5],
        ["maxWaiting", Number.NaN],
        ["maxWaiting", Number.POSITIVE_INFINITY],
        ["maxWaiting", "3"],
        ["maxWait", "-1 seconds"],
        ["maxWait", "soon"],
        ["maxWait", -5],
        // Duration.fromInput takes each of these for 0.
        ["maxWait", Number.NaN],
        ["maxWait", { millis: -1 }],
        ["maxWait", {}],
        ["maxWait", { seconds: 1, fortnights: 2 }]
      ]
      for (const [option, value] of bad) {
        const error = yield* Effect.flip(CoroutinePool.make({ max: 1, [option]: value as never }))
        assert.instanceOf(error, CoroutinePool.InvalidPoolOption, `${option}: ${String(value)}`)
        assert.strictEqual(error.option, option)
        assert.isTrue(Object.is(error.value, value))
      }
      const error = yield* Effect.flip(CoroutinePool.make({ max: 1, maxWaiting: -1 }))
      assert.strictEqual(error.message, "Invalid maxWaiting: expected a safe integer of zero or more, got -1")
      // No options at all was a TypeError with a stack trace.
      for (const options of [undefined, null, 5]) {
        const missing = yield* Effect.flip(CoroutinePool.make(options as never))
        assert.deepStrictEqual(
          missing,
          new CoroutinePool.InvalidPoolOption({
            option: "options",
            value: options,
            expected: "an object such as { max: 2 }"
          })
        )
      }
    })
  )

  it.effect("accepts zero, infinite and the default, and the layer takes them too", () =>
    Effect.gen(function* () {
      for (const maxWait of [0, "0 millis", Duration.infinity, undefined] as const) {
        const pool = yield* CoroutinePool.make({ max: 1, maxWaiting: 1, maxWait })
        assert.strictEqual((yield* pool.stats).maxWaiting, 1)
      }
      const stats = yield* Effect.provide(
        Effect.flatMap(CoroutinePool.CoroutinePool, (pool) => pool.stats),
        Layer.fresh(CoroutinePool.layer({ max: 2, maxWaiting: 5 }))
      )
      assert.deepStrictEqual([stats.max, stats.maxWaiting], [2, 5])
    })
  )
})

describe("a long queue", () => {
  it.effect("20,000 waiters with instant work run in FIFO order without growing the stack", () =>
    Effect.gen(function* () {
      const pool = yield* CoroutinePool.make({ max: 1, maxWaiting: 20_000 })
      yield* pool.tryAcquire(1, { worker: "holder" })
      const order: Array<number> = []
      const waiters = yield* Effect.forEach(
        Array.from({ length: 20_000 }, (_, i) => i),
        (i) =>
          fork(
            pool.withPermit(
              Effect.sync(() => order.push(i)),
              { worker: i }
            )
          )
      )
      assert.strictEqual((yield* pool.stats).waiting, 20_000)
      // Each resumed waiter releases at once, waking the next: a naive wake
      // would nest 20,000 deep here.
      yield* pool.release(1, { worker: "holder" })
      yield* Fiber.joinAll(waiters)
      assert.strictEqual(order.length, 20_000)
      assert.isTrue(
        order.every((worker, index) => worker === index),
        "admitted in the order they queued"
      )
      assert.deepStrictEqual([yield* pool.active, (yield* pool.stats).acquired], [0, 20_001])
    })
  )
})

describe("module functions", () => {
  it.effect("withPermit and acquire read well in a pipe", () =>
    Effect.gen(function* () {
      const pool = yield* CoroutinePool.make({ max: 1, maxWaiting: 1 })
      const value = yield* Effect.succeed(42).pipe(CoroutinePool.withPermit(pool, { worker: "pipe" }))
      const active = yield* Effect.scoped(
        Effect.andThen(CoroutinePool.acquire(pool, 1, { worker: "scoped" }), pool.active)
      )
      const dataFirst = yield* CoroutinePool.withPermit(Effect.succeed("first"), pool, { worker: "data-first" })
      assert.deepStrictEqual([value, active, dataFirst, yield* pool.active], [42, 1, "first", 0])
    })
  )
})
