import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Option, Schema, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { CoroutinePool, PoolStore, SharedPool } from "../src/index.ts"
import * as RecordedPool from "./utils/RecordedPool.ts"

describe("make", () => {
  const invalid: ReadonlyArray<unknown> = [0, -1, 1.5, Number.NaN, Infinity, -Infinity, 2 ** 53, "2", null, undefined]

  it.effect("rejects every max that is not a positive safe integer with InvalidPoolSize carrying it", () =>
    Effect.gen(function* () {
      for (const max of invalid) {
        const exit = yield* Effect.exit(CoroutinePool.make({ max: max as number }))
        assert.isTrue(Exit.isFailure(exit), `max ${String(max)} must fail`)
        const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
        assert.strictEqual(error?._tag, "Some", `max ${String(max)} must fail with an error, not a defect`)
        if (error?._tag !== "Some") continue
        assert.instanceOf(error.value, CoroutinePool.InvalidPoolSize)
        assert.isTrue(Object.is(error.value.max, max), `carries ${String(max)}`)
      }
    })
  )

  it.effect("explains the invalid value in its message", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(CoroutinePool.make({ max: "2" as unknown as number }))
      assert.strictEqual(error.message, 'Invalid pool size: max must be a positive safe integer, got "2"')
    })
  )

  it.effect("accepts 1 and the largest safe integer", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* (yield* CoroutinePool.make({ max: 1 })).max, 1)
      const huge = yield* CoroutinePool.make({ max: Number.MAX_SAFE_INTEGER })
      assert.strictEqual(yield* huge.max, Number.MAX_SAFE_INTEGER)
      assert.isTrue(yield* huge.tryAcquire(1, { worker: 0 }))
    })
  )
})

describe("tryAcquire and release", () => {
  it.effect("admits up to max, rejects the rest at once, and publishes each decision", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(2)
      const decisions = [
        yield* pool.tryAcquire(1, { worker: 0 }),
        yield* pool.tryAcquire(1, { worker: 1 }),
        yield* pool.tryAcquire(1, { worker: 2 })
      ]
      assert.deepStrictEqual(decisions, [true, true, false])
      assert.strictEqual(yield* pool.active, 2)
      yield* pool.release(1, { worker: 1 })
      assert.isTrue(yield* pool.tryAcquire(1, { worker: "api" }))
      yield* pool.release(1, { worker: 0 })
      yield* pool.release(1, { worker: "api" })
      assert.strictEqual(yield* pool.active, 0)
      yield* close
      assert.deepStrictEqual(yield* lines, [
        "Worker 0: acquired (1/2 active)",
        "Worker 1: acquired (2/2 active)",
        "Worker 2: rejected (2/2 active)",
        "Worker 1: released (1/2 active)",
        "Worker api: acquired (2/2 active)",
        "Worker 0: released (1/2 active)",
        "Worker api: released (0/2 active)"
      ])
    })
  )

  it.effect("release without a permit fails with PermitNotHeld and changes nothing", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(2)
      const never = yield* Effect.flip(pool.release(1, { worker: 7 }))
      assert.instanceOf(never, CoroutinePool.PermitNotHeld)
      assert.strictEqual(never.worker, 7)
      assert.strictEqual(never.message, "Worker 7 holds no permit to release")
      assert.isTrue(yield* pool.tryAcquire(1, { worker: 1 }))
      yield* pool.release(1, { worker: 1 })
      // The seed's Python would count down to -1 here.
      const twice = yield* Effect.flip(pool.release(1, { worker: 1 }))
      assert.strictEqual(twice._tag, "PermitNotHeld")
      assert.strictEqual(yield* pool.active, 0)
      yield* close
      assert.deepStrictEqual(yield* lines, ["Worker 1: acquired (1/2 active)", "Worker 1: released (0/2 active)"])
    })
  )

  it.effect("counts several permits held by one worker", () =>
    Effect.gen(function* () {
      const pool = yield* CoroutinePool.make({ max: 3 })
      assert.isTrue(yield* pool.tryAcquire(1, { worker: "batch" }))
      assert.isTrue(yield* pool.tryAcquire(1, { worker: "batch" }))
      yield* pool.release(1, { worker: "batch" })
      yield* pool.release(1, { worker: "batch" })
      assert.strictEqual((yield* Effect.flip(pool.release(1, { worker: "batch" })))._tag, "PermitNotHeld")
      assert.strictEqual(yield* pool.active, 0)
    })
  )

  it.effect("release cannot return a permit that withPermit holds", () =>
    Effect.gen(function* () {
      const pool = yield* CoroutinePool.make({ max: 1 })
      const stolen = yield* pool.withPermit(Effect.flip(pool.release(1, { worker: 0 })), { worker: 0 })
      assert.strictEqual(stolen._tag, "PermitNotHeld")
      assert.strictEqual(yield* pool.active, 0)
    })
  )
})

describe("withPermit", () => {
  it.effect("runs the effect holding a permit and returns its value", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(2)
      const inside = yield* pool.withPermit(pool.active, { worker: 0 })
      assert.strictEqual(inside, 1)
      assert.strictEqual(yield* pool.active, 0)
      yield* close
      assert.deepStrictEqual(yield* lines, ["Worker 0: acquired (1/2 active)", "Worker 0: released (0/2 active)"])
    })
  )

  it.effect("fails with PoolRejected, without running the effect, when the pool is full", () =>
    Effect.gen(function* () {
      const pool = yield* CoroutinePool.make({ max: 1 })
      assert.isTrue(yield* pool.tryAcquire(1, { worker: 0 }))
      let ran = false
      const error = yield* Effect.flip(
        pool.withPermit(
          Effect.sync(() => (ran = true)),
          { worker: 1 }
        )
      )
      assert.isFalse(ran)
      assert.instanceOf(error, CoroutinePool.PoolRejected)
      assert.deepStrictEqual([error.worker, error.reason, error.active, error.max], [1, "full", 1, 1])
      assert.strictEqual(error.message, "Worker 1: rejected, all 1 permits are taken")
      assert.strictEqual(yield* pool.active, 1)
    })
  )

  it.effect("returns the permit on failure and on defect, keeping the cause", () =>
    Effect.gen(function* () {
      const pool = yield* CoroutinePool.make({ max: 1 })
      const failed = yield* Effect.exit(pool.withPermit(Effect.fail("boom"), { worker: 0 }))
      assert.deepStrictEqual(failed, Exit.fail("boom"))
      assert.strictEqual(yield* pool.active, 0)
      const died = yield* Effect.exit(pool.withPermit(Effect.die("bug"), { worker: 0 }))
      assert.isTrue(Exit.hasDies(died))
      assert.strictEqual(yield* pool.active, 0)
    })
  )

  it.effect("returns the permit when interrupted while holding it", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(2)
      const fiber = yield* Effect.forkChild(pool.withPermit(Effect.never, { worker: 0 }), { startImmediately: true })
      assert.strictEqual(yield* pool.active, 1)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* pool.active, 0)
      yield* close
      assert.deepStrictEqual(yield* lines, ["Worker 0: acquired (1/2 active)", "Worker 0: released (0/2 active)"])
    })
  )

  it.effect("under Effect.timeout leaks nothing", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(1)
      const fiber = yield* Effect.forkChild(
        pool.withPermit(Effect.sleep("1 second"), { worker: 0 }).pipe(Effect.timeout("100 millis"))
      )
      yield* TestClock.adjust("100 millis")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit) && Cause.findErrorOption(exit.cause)._tag === "Some")
      assert.strictEqual(yield* pool.active, 0)
      // The permit is really back: another worker gets it.
      assert.isTrue(yield* pool.tryAcquire(1, { worker: 1 }))
      yield* pool.release(1, { worker: 1 })
      yield* close
      assert.deepStrictEqual(yield* lines, [
        "Worker 0: acquired (1/1 active)",
        "Worker 0: released (0/1 active)",
        "Worker 1: acquired (1/1 active)",
        "Worker 1: released (0/1 active)"
      ])
    })
  )

  it.effect("works data-first and data-last through the module functions", () =>
    Effect.gen(function* () {
      const pool = yield* CoroutinePool.make({ max: 1 })
      assert.strictEqual(yield* Effect.succeed(1).pipe(CoroutinePool.withPermit(pool, { worker: "a" })), 1)
      assert.strictEqual(yield* CoroutinePool.withPermit(Effect.succeed(2), pool, { worker: "b" }), 2)
      assert.isTrue(yield* CoroutinePool.tryAcquire(pool, 1, { worker: "c" }))
      assert.isFalse(yield* CoroutinePool.tryAcquire(1, { worker: "d" })(pool))
      yield* CoroutinePool.release(1, { worker: "c" })(pool)
      assert.strictEqual((yield* Effect.flip(CoroutinePool.release(pool, 1, { worker: "c" })))._tag, "PermitNotHeld")
    })
  )
})

describe("module functions (0.4), data-first and data-last", () => {
  it.effect("withPermit, withPermits, withPermitIfAvailable, withPermitsIfAvailable, with and without options", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(3)
      const me = yield* Effect.withFiber((fiber) => Effect.succeed(fiber.id))
      const results = [
        yield* Effect.succeed("a").pipe(CoroutinePool.withPermit(pool, { worker: "a" })),
        yield* CoroutinePool.withPermit(Effect.succeed("b"), pool, { worker: "b" }),
        yield* Effect.succeed("c").pipe(CoroutinePool.withPermit(pool)),
        yield* CoroutinePool.withPermit(Effect.succeed("d"), pool),
        yield* Effect.succeed("e").pipe(CoroutinePool.withPermits(pool, 2, { worker: "e" })),
        yield* CoroutinePool.withPermits(Effect.succeed("f"), pool, 3, { worker: "f" }),
        yield* Effect.succeed("g").pipe(CoroutinePool.withPermitIfAvailable(pool, { worker: "g" })),
        yield* CoroutinePool.withPermitIfAvailable(Effect.succeed("h"), pool),
        yield* Effect.succeed("i").pipe(CoroutinePool.withPermitsIfAvailable(pool, 2, { worker: "i" })),
        yield* CoroutinePool.withPermitsIfAvailable(Effect.succeed("j"), pool, 3, { worker: "j" })
      ]
      assert.deepStrictEqual(results, [
        "a",
        "b",
        "c",
        "d",
        "e",
        "f",
        Option.some("g"),
        Option.some("h"),
        Option.some("i"),
        Option.some("j")
      ])
      // Turned away: a rejection from one, None from the other, in both forms.
      assert.isTrue(yield* pool.tryAcquire(3, { worker: "full" }))
      assert.strictEqual(
        (yield* Effect.flip(Effect.void.pipe(CoroutinePool.withPermits(pool, 1, { worker: "k" }))))._tag,
        "PoolRejected"
      )
      assert.deepStrictEqual(
        yield* CoroutinePool.withPermitsIfAvailable(Effect.void, pool, 1, { worker: "l" }),
        Option.none()
      )
      assert.deepStrictEqual(
        yield* Effect.flip(CoroutinePool.withPermits(Effect.void, pool, 4, { worker: "m" })),
        new CoroutinePool.InvalidPermits({ permits: 4, max: 3 })
      )
      yield* pool.release(3, { worker: "full" })
      yield* close
      assert.deepStrictEqual(yield* lines, [
        "Worker a: acquired (1/3 active)",
        "Worker a: released (0/3 active)",
        "Worker b: acquired (1/3 active)",
        "Worker b: released (0/3 active)",
        `Worker ${me}: acquired (1/3 active)`,
        `Worker ${me}: released (0/3 active)`,
        `Worker ${me}: acquired (1/3 active)`,
        `Worker ${me}: released (0/3 active)`,
        "Worker e: acquired 2 permits (2/3 active)",
        "Worker e: released 2 permits (0/3 active)",
        "Worker f: acquired 3 permits (3/3 active)",
        "Worker f: released 3 permits (0/3 active)",
        "Worker g: acquired (1/3 active)",
        "Worker g: released (0/3 active)",
        `Worker ${me}: acquired (1/3 active)`,
        `Worker ${me}: released (0/3 active)`,
        "Worker i: acquired 2 permits (2/3 active)",
        "Worker i: released 2 permits (0/3 active)",
        "Worker j: acquired 3 permits (3/3 active)",
        "Worker j: released 3 permits (0/3 active)",
        "Worker full: acquired 3 permits (3/3 active)",
        "Worker k: rejected (3/3 active)",
        "Worker l: rejected (3/3 active)",
        "Worker full: released 3 permits (0/3 active)"
      ])
    })
  )

  it.effect("acquire, tryAcquire and release, with and without a count and options", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(4)
      const me = yield* Effect.withFiber((fiber) => Effect.succeed(fiber.id))
      const inScope = yield* Effect.scoped(
        Effect.gen(function* () {
          yield* CoroutinePool.acquire(pool)
          yield* CoroutinePool.acquire()(pool)
          yield* CoroutinePool.acquire(pool, 1, { worker: "s" })
          yield* CoroutinePool.acquire(1, { worker: "t" })(pool)
          return yield* pool.active
        })
      )
      assert.strictEqual(inScope, 4)
      const sized = yield* Effect.scoped(
        Effect.andThen(
          Effect.andThen(CoroutinePool.acquire(pool, 2), CoroutinePool.acquire(2, { worker: "u" })(pool)),
          pool.active
        )
      )
      assert.strictEqual(sized, 4)
      assert.deepStrictEqual(
        [
          yield* CoroutinePool.tryAcquire(pool),
          yield* CoroutinePool.tryAcquire()(pool),
          yield* CoroutinePool.tryAcquire(pool, 2, { worker: "v" }),
          yield* CoroutinePool.tryAcquire(1, { worker: "v" })(pool)
        ],
        [true, true, true, false]
      )
      yield* CoroutinePool.release(pool)
      yield* CoroutinePool.release()(pool)
      yield* CoroutinePool.release(pool, 1, { worker: "v" })
      yield* CoroutinePool.release(1, { worker: "v" })(pool)
      assert.deepStrictEqual(
        yield* Effect.flip(CoroutinePool.release(pool, 1, { worker: "v" })),
        new CoroutinePool.PermitNotHeld({ worker: "v" })
      )
      assert.deepStrictEqual(
        yield* Effect.flip(CoroutinePool.release(0)(pool)),
        new CoroutinePool.InvalidPermits({ permits: 0, max: 4 })
      )
      assert.deepStrictEqual(
        yield* Effect.flip(CoroutinePool.tryAcquire(pool, 5)),
        new CoroutinePool.InvalidPermits({ permits: 5, max: 4 })
      )
      assert.deepStrictEqual(
        yield* Effect.flip(Effect.scoped(CoroutinePool.acquire(5)(pool))),
        new CoroutinePool.InvalidPermits({ permits: 5, max: 4 })
      )
      yield* close
      assert.deepStrictEqual(yield* lines, [
        `Worker ${me}: acquired (1/4 active)`,
        `Worker ${me}: acquired (2/4 active)`,
        "Worker s: acquired (3/4 active)",
        "Worker t: acquired (4/4 active)",
        // The scope gives them back last in, first out.
        "Worker t: released (3/4 active)",
        "Worker s: released (2/4 active)",
        `Worker ${me}: released (1/4 active)`,
        `Worker ${me}: released (0/4 active)`,
        `Worker ${me}: acquired 2 permits (2/4 active)`,
        "Worker u: acquired 2 permits (4/4 active)",
        "Worker u: released 2 permits (2/4 active)",
        `Worker ${me}: released 2 permits (0/4 active)`,
        `Worker ${me}: acquired (1/4 active)`,
        `Worker ${me}: acquired (2/4 active)`,
        "Worker v: acquired 2 permits (4/4 active)",
        "Worker v: rejected (4/4 active)",
        `Worker ${me}: released (3/4 active)`,
        `Worker ${me}: released (2/4 active)`,
        "Worker v: released (1/4 active)",
        "Worker v: released (0/4 active)"
      ])
    })
  )

  it.effect("take a shared pool as well", () =>
    Effect.gen(function* () {
      const shared = yield* SharedPool.make({ key: "module", max: 2 })
      const value = yield* Effect.succeed("shared").pipe(CoroutinePool.withPermits(shared, 2, { worker: "w" }))
      assert.strictEqual(value, "shared")
      assert.isTrue(yield* CoroutinePool.tryAcquire(shared, 2, { worker: "w" }))
      assert.deepStrictEqual(yield* CoroutinePool.withPermitIfAvailable(Effect.void, shared), Option.none())
      yield* CoroutinePool.release(2, { worker: "w" })(shared)
      const stats = yield* shared.stats
      assert.deepStrictEqual([stats.acquired, stats.rejected, stats.released, stats.active], [2, 1, 2, 0])
    }).pipe(Effect.provide(PoolStore.layerStoreMemory))
  )
})

describe("events", () => {
  it.effect("formatEvent renders the seed's lines", () =>
    Effect.sync(() => {
      assert.strictEqual(
        CoroutinePool.formatEvent({ _tag: "Acquired", worker: 0, active: 1, max: 2, waiting: 0 }),
        "Worker 0: acquired (1/2 active)"
      )
      assert.strictEqual(
        CoroutinePool.formatEvent({ _tag: "Rejected", worker: "w-3", active: 2, max: 2, waiting: 0 }),
        "Worker w-3: rejected (2/2 active)"
      )
      assert.strictEqual(
        CoroutinePool.formatEvent({ _tag: "Released", worker: 1, active: 0, max: 2, waiting: 0 }),
        "Worker 1: released (0/2 active)"
      )
    })
  )

  it.effect("round-trip through the PoolEvent schema", () =>
    Effect.gen(function* () {
      const event: CoroutinePool.PoolEvent = { _tag: "Rejected", worker: 3, active: 2, max: 2, waiting: 0 }
      const json = yield* Schema.encodeEffect(Schema.fromJsonString(CoroutinePool.PoolEvent))(event)
      assert.deepStrictEqual(yield* Schema.decodeEffect(Schema.fromJsonString(CoroutinePool.PoolEvent))(json), event)
    })
  )

  it.effect("events reaches every subscriber and ends when the pool closes", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = yield* CoroutinePool.make({ max: 1 }).pipe(Scope.provide(scope))
      // Started immediately, each consumer has subscribed when its fork returns.
      const first = yield* Effect.forkChild(Stream.runCollect(pool.events), { startImmediately: true })
      const second = yield* Effect.forkChild(Stream.runCollect(Stream.map(pool.events, (event) => event._tag)), {
        startImmediately: true
      })
      yield* pool.withPermit(Effect.void, { worker: 0 })
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* Fiber.join(first), [
        { _tag: "Acquired", worker: 0, active: 1, max: 1, waiting: 0 },
        { _tag: "Released", worker: 0, active: 0, max: 1, waiting: 0 }
      ])
      assert.deepStrictEqual(yield* Fiber.join(second), ["Acquired", "Released"])
    })
  )
})

describe("a subscriber that falls behind", () => {
  it.effect("holds at most 4,096 events: the oldest go, counted in stats.dropped, and the stream still ends", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = yield* CoroutinePool.make({ max: 1 }).pipe(Scope.provide(scope))
      // Subscribed, never read while the pool works: it used to buffer every
      // event (+352 MB per million calls).
      const stalled = yield* pool.subscribe
      for (let i = 0; i < 2500; i++) yield* pool.withPermit(Effect.void, { worker: i })
      const stats = yield* pool.stats
      assert.deepStrictEqual([stats.acquired + stats.released, stats.dropped], [5000, 5000 - 4096])
      yield* Scope.close(scope, Exit.void)
      const seen = yield* Stream.runCollect(stalled)
      assert.strictEqual(seen.length, 4096)
      // The newest 4,096: from the 905th event (worker 452's admission) on.
      assert.deepStrictEqual(seen[0], { _tag: "Acquired", worker: 452, active: 1, max: 1, waiting: 0 })
      assert.deepStrictEqual(seen.at(-1), { _tag: "Released", worker: 2499, active: 0, max: 1, waiting: 0 })
    })
  )

  it.effect("costs nothing to a subscriber that keeps up", () =>
    Effect.gen(function* () {
      const { close, events, pool } = yield* RecordedPool.make(1)
      for (let i = 0; i < 5000; i++) yield* pool.withPermit(Effect.yieldNow, { worker: i })
      yield* close
      assert.deepStrictEqual([(yield* events).length, (yield* pool.stats).dropped], [10_000, 0])
    })
  )
})

describe("closing the pool", () => {
  it.effect("interrupts holders, returns every permit and publishes every release before the stream ends", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* RecordedPool.make(3)
      const holders = yield* Effect.forEach([0, 1], (worker) =>
        Effect.forkChild(pool.withPermit(Effect.never, { worker: worker }), { startImmediately: true })
      )
      assert.isTrue(yield* pool.tryAcquire(1, { worker: 2 }))
      assert.strictEqual(yield* pool.active, 3)
      yield* close
      for (const holder of holders) assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(holder)))
      assert.strictEqual(yield* pool.active, 0)
      assert.deepStrictEqual(yield* lines, [
        "Worker 0: acquired (1/3 active)",
        "Worker 1: acquired (2/3 active)",
        "Worker 2: acquired (3/3 active)",
        "Worker 0: released (2/3 active)",
        "Worker 1: released (1/3 active)",
        "Worker 2: released (0/3 active)"
      ])
    })
  )

  it.effect("admits nobody afterwards", () =>
    Effect.gen(function* () {
      const { close, pool } = yield* RecordedPool.make(2)
      yield* close
      assert.isFalse(yield* pool.tryAcquire(1, { worker: 0 }))
      const error = yield* Effect.flip(pool.withPermit(Effect.void, { worker: 0 }))
      assert.deepStrictEqual([error.reason, error.message], ["closed", "Worker 0: rejected, the pool is closed"])
      assert.strictEqual(yield* pool.active, 0)
    })
  )

  it.effect("answers every method as closed: resize changes nothing either", () =>
    Effect.gen(function* () {
      const { close, pool } = yield* RecordedPool.make(2, { maxWaiting: 1 })
      yield* close
      // It used to succeed and change stats.max.
      yield* pool.resize(5)
      assert.deepStrictEqual([yield* pool.max, (yield* pool.stats).max], [2, 2])
      assert.strictEqual((yield* Effect.flip(pool.resize(0)))._tag, "InvalidPoolSize")
    })
  )

  it.effect("does not wait for the closing fiber's own permit", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const pool = yield* CoroutinePool.make({ max: 1 }).pipe(Scope.provide(scope))
      yield* pool.withPermit(Scope.close(scope, Exit.void), { worker: 0 })
      assert.strictEqual(yield* pool.active, 0)
    })
  )
})

describe("layer", () => {
  it.effect("provides one pool to the whole program", () =>
    Effect.gen(function* () {
      const sameAcrossUses = Effect.gen(function* () {
        const a = yield* CoroutinePool.CoroutinePool
        const b = yield* CoroutinePool.CoroutinePool
        assert.isTrue(yield* a.tryAcquire(1, { worker: 0 }))
        return [a === b, yield* b.active, yield* b.max] as const
      })
      assert.deepStrictEqual(yield* Effect.provide(sameAcrossUses, CoroutinePool.layer({ max: 4 })), [true, 1, 4])
    })
  )

  it.effect("fails to build with InvalidPoolSize", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Layer.build(CoroutinePool.layer({ max: 0 })))
      assert.instanceOf(error, CoroutinePool.InvalidPoolSize)
      assert.strictEqual(error.max, 0)
    })
  )
})
