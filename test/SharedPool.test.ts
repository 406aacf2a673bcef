import { assert, describe, it } from "@effect/vitest"
import {
  Cause,
  Clock,
  Config,
  ConfigProvider,
  Effect,
  Exit,
  Fiber,
  Layer,
  Logger,
  Metric,
  Option,
  Ref,
  References,
  Scheduler,
  Schema,
  Scope,
  Stream
} from "effect"
import { Redis } from "effect/persistence"
import { TestClock } from "effect/testing"
import { CoroutinePool, PoolStore, SharedPool } from "../src/index.ts"
import * as RedisScripts from "../src/internal/redisScripts.ts"
import * as RecordingTracer from "./utils/RecordingTracer.ts"

// The memory store with some operations replaced, to stage store behaviour.
const storeWith = (overrides: (store: PoolStore.PoolStore["Service"]) => Partial<PoolStore.PoolStore["Service"]>) =>
  Layer.effect(
    PoolStore.PoolStore,
    Effect.gen(function* () {
      const store = yield* PoolStore.PoolStore
      return PoolStore.PoolStore.of({ ...store, ...overrides(store) })
    })
  ).pipe(Layer.provide(PoolStore.layerStoreMemory))

// What a failed call failed with: a rejection's reason and figures, or the error's tag.
const failure = (error: { readonly _tag: string }) =>
  error instanceof CoroutinePool.PoolRejected ? [error.reason, error.active, error.max] : error._tag

const storeFailing = (reason: PoolStore.PoolStoreError["reason"]) =>
  storeWith(() => ({
    acquire: ({ key }) =>
      Effect.fail(new PoolStore.PoolStoreError({ key, operation: "acquire", reason, detail: "down" }))
  }))

const storeDown = storeFailing("unavailable")

// A pool in a scope of its own, with its events recorded from the start.
const recorded = (options: SharedPool.Options) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const pool = yield* SharedPool.make(options).pipe(Scope.provide(scope))
    const events = yield* Effect.forkChild(Stream.runCollect(pool.events), { startImmediately: true })
    return {
      pool,
      close: Scope.close(scope, Exit.void),
      lines: Effect.map(Fiber.join(events), (all) => all.map(SharedPool.formatEvent))
    }
  })

const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

const fork = <A, E>(effect: Effect.Effect<A, E>) => Effect.forkChild(effect, { startImmediately: true })

describe("SharedPool", () => {
  it.effect("pools with one key share one limit, and events carry the holders of every pool", () =>
    Effect.gen(function* () {
      const a = yield* recorded({ key: "payments", max: 2 })
      const b = yield* recorded({ key: "payments", max: 2 })
      assert.isTrue(yield* a.pool.tryAcquire(1, { worker: 0 }))
      assert.isTrue(yield* b.pool.tryAcquire(1, { worker: 1 }))
      assert.isFalse(yield* a.pool.tryAcquire(1, { worker: 2 }))
      assert.deepStrictEqual(failure(yield* Effect.flip(a.pool.withPermit(Effect.void, { worker: 3 }))), ["full", 2, 2])
      yield* b.pool.release(1, { worker: 1 })
      yield* a.pool.release(1, { worker: 0 })
      assert.deepStrictEqual(yield* a.pool.stats, {
        active: 0,
        waiting: 0,
        max: 2,
        maxWaiting: 0,
        acquired: 1,
        rejected: 2,
        released: 1,
        queued: 0,
        timedOut: 0,
        abandoned: 0,
        lost: 0,
        dropped: 0
      })
      yield* a.close
      yield* b.close
      assert.deepStrictEqual(yield* a.lines, [
        "Worker 0: acquired (1/2 active)",
        "Worker 2: rejected (2/2 active)",
        "Worker 3: rejected (2/2 active)",
        "Worker 0: released (0/2 active)"
      ])
    }).pipe(Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect("the work sees its lease: fencing tokens grow with every grant", () =>
    Effect.gen(function* () {
      const a = yield* SharedPool.make({ key: "fenced", max: 2 })
      const b = yield* SharedPool.make({ key: "fenced", max: 2 })
      const fence = Effect.gen(function* () {
        return (yield* SharedPool.CurrentLease)?.fence
      })
      assert.deepStrictEqual(
        [
          yield* a.withPermit(fence, { worker: "a" }),
          yield* b.withPermit(fence, { worker: "b" }),
          yield* a.withPermit(fence, { worker: "a" }),
          yield* fence
        ],
        [1, 2, 3, undefined]
      )
    }).pipe(Effect.scoped, Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect("a held permit is renewed for as long as it is held, and closing the pool gives it back", () =>
    Effect.gen(function* () {
      const a = yield* recorded({ key: "k", max: 1, ttl: "300 millis" })
      const b = yield* recorded({ key: "k", max: 1, ttl: "300 millis" })
      assert.isTrue(yield* a.pool.tryAcquire(1, { worker: "a" }))
      yield* TestClock.adjust("3 seconds")
      assert.isFalse(yield* b.pool.tryAcquire(1, { worker: "b" }), "renewed: still held after ten TTLs")
      yield* a.close
      assert.isTrue(yield* b.pool.tryAcquire(1, { worker: "b" }))
      yield* b.close
    }).pipe(Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect("a renewal that finds the lease gone interrupts the work and fails with LeaseLost", () =>
    Effect.gen(function* () {
      const { close, lines, pool } = yield* recorded({ key: "k", max: 2, ttl: "300 millis", name: "lease-lost" })
      const interrupted = yield* Ref.make(false)
      const work = Effect.never.pipe(Effect.onInterrupt(() => Ref.set(interrupted, true)))
      const fiber = yield* fork(pool.withPermit(work, { worker: "w" }))
      yield* TestClock.adjust("99 millis")
      assert.isUndefined(fiber.pollUnsafe(), "renewals start at ttl / 3")
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(fiber)
      assert.deepStrictEqual(
        exit,
        Exit.fail(new PoolStore.LeaseLost({ key: "k", worker: "w", fence: 1, reason: "missing" }))
      )
      assert.isTrue(yield* Ref.get(interrupted))
      assert.strictEqual((yield* pool.stats).lost, 1)
      assert.strictEqual(yield* pool.active, 0)
      const series = (metric: Metric.Metric<number, Metric.CounterState<number>>) =>
        Metric.value(Metric.withAttributes(metric, { pool: "lease-lost" }))
      assert.deepStrictEqual(
        [(yield* series(SharedPool.metrics.lost)).count, (yield* series(CoroutinePool.metrics.acquired)).count],
        [1, 1]
      )
      yield* close
      assert.deepStrictEqual(yield* lines, ["Worker w: acquired (1/2 active)", "Worker w: lost its lease (1/2 active)"])
    }).pipe(Effect.provide(storeWith(() => ({ renew: () => Effect.succeed(false) }))))
  )

  it.effect(
    "without a confirmed renewal the lease ends at its deadline, measured from the acquire, and is given back",
    () =>
      Effect.gen(function* () {
        const a = yield* recorded({ key: "k", max: 1, ttl: "300 millis" })
        const b = yield* recorded({ key: "k", max: 1, ttl: "300 millis" })
        const fiber = yield* fork(a.pool.withPermit(Effect.never, { worker: "a" }))
        yield* TestClock.adjust("299 millis")
        assert.isUndefined(fiber.pollUnsafe())
        assert.isFalse(yield* b.pool.tryAcquire(1, { worker: "b" }))
        yield* TestClock.adjust("1 millis")
        const error = yield* Effect.flip(Fiber.join(fiber))
        assert.deepStrictEqual([error._tag, (error as PoolStore.LeaseLost).reason], ["LeaseLost", "deadline"])
        assert.strictEqual(yield* Clock.currentTimeMillis, 300)
        assert.isTrue(yield* b.pool.tryAcquire(1, { worker: "b" }), "the lost lease was given back at once")
        yield* a.close
        yield* b.close
      }).pipe(Effect.provide(storeWith(() => ({ renew: () => Effect.never }))))
  )

  it.effect(
    "a lost lease of a tryAcquire permit is dropped (Lost, then PermitNotHeld); one of acquire interrupts its fiber",
    () =>
      Effect.gen(function* () {
        const { close, lines, pool } = yield* recorded({ key: "k", max: 2, ttl: "300 millis" })
        assert.isTrue(yield* pool.tryAcquire(1, { worker: "manual" }))
        const scoped = yield* fork(Effect.scoped(Effect.andThen(pool.acquire(1, { worker: "scoped" }), Effect.never)))
        yield* TestClock.adjust("100 millis")
        const exit = yield* Fiber.await(scoped)
        assert.isTrue(Exit.hasInterrupts(exit), "the fiber that took the permit is interrupted")
        assert.deepStrictEqual(
          yield* Effect.flip(pool.release(1, { worker: "manual" })),
          new CoroutinePool.PermitNotHeld({ worker: "manual" })
        )
        assert.deepStrictEqual([yield* pool.active, (yield* pool.stats).lost], [0, 2])
        yield* close
        assert.deepStrictEqual(yield* lines, [
          "Worker manual: acquired (1/2 active)",
          "Worker scoped: acquired (2/2 active)",
          "Worker manual: lost its lease (2/2 active)",
          "Worker scoped: lost its lease (2/2 active)"
        ])
      }).pipe(Effect.provide(storeWith(() => ({ renew: () => Effect.succeed(false) }))))
  )

  it.effect("closing the pool turns polling waiters away and returns every lease it holds", () =>
    Effect.gen(function* () {
      const other = yield* recorded({ key: "k", max: 1 })
      const { close, lines, pool } = yield* recorded({ key: "k", max: 1, maxWaiting: 1 })
      assert.isTrue(yield* pool.tryAcquire(1, { worker: "held" }))
      const waiter = yield* fork(pool.withPermit(Effect.void, { worker: "waiter" }))
      yield* TestClock.adjust("20 millis")
      yield* close
      // Answered as the pool closed (see the next test), while its lease was still held.
      assert.deepStrictEqual(failure(yield* Effect.flip(Fiber.join(waiter))), ["closed", 1, 1])
      assert.isTrue(yield* other.pool.tryAcquire(1, { worker: "other" }), "the closed pool's lease came back")
      yield* other.close
      assert.deepStrictEqual(yield* lines, [
        "Worker held: acquired (1/1 active)",
        "Worker waiter: queued (1/1 active, 1 waiting)",
        "Worker waiter: abandoned (1/1 active)",
        "Worker held: released (0/1 active)"
      ])
      assert.deepStrictEqual([(yield* pool.stats).abandoned, (yield* pool.stats).waiting], [1, 0])
    }).pipe(Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect("closing the pool interrupts withPermit work, but only gives back a permit held by acquire", () =>
    Effect.gen(function* () {
      const other = yield* recorded({ key: "k", max: 2 })
      const { close, pool } = yield* recorded({ key: "k", max: 2 })
      const work = yield* fork(pool.withPermit(Effect.never, { worker: "work" }))
      const scoped = yield* fork(Effect.scoped(Effect.andThen(pool.acquire(1, { worker: "scoped" }), Effect.never)))
      yield* close
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(work)))
      assert.isUndefined(scoped.pollUnsafe(), "the scope's owner goes on")
      assert.isTrue(yield* other.pool.tryAcquire(1, { worker: "a" }))
      assert.isTrue(yield* other.pool.tryAcquire(1, { worker: "b" }), "both leases came back")
      yield* Fiber.interrupt(scoped)
      yield* other.close
    }).pipe(Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect("a store that fails: fail closed by default, the work never runs", () =>
    Effect.gen(function* () {
      const pool = yield* SharedPool.make({ key: "k", max: 1 })
      const ran = yield* Ref.make(false)
      const error = yield* Effect.flip(pool.withPermit(Ref.set(ran, true), { worker: "w" }))
      assert.deepStrictEqual([error._tag, yield* Ref.get(ran)], ["PoolStoreError", false])
      assert.strictEqual((yield* Effect.flip(pool.tryAcquire(1, { worker: "w" })))._tag, "PoolStoreError")
      assert.deepStrictEqual([(yield* pool.stats).acquired, yield* pool.active], [0, 0])
    }).pipe(Effect.scoped, Effect.provide(storeDown))
  )

  it.effect("fail open admits without a lease, still bounded by max in this process", () =>
    Effect.gen(function* () {
      const pool = yield* SharedPool.make({ key: "k", max: 1, onStoreError: "allow" })
      const fiber = yield* fork(pool.withPermit(Effect.sleep("1 second"), { worker: "a" }))
      assert.strictEqual(yield* pool.active, 1)
      assert.isFalse(yield* pool.tryAcquire(1, { worker: "b" }))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.isTrue(yield* pool.tryAcquire(1, { worker: "b" }))
      yield* pool.release(1, { worker: "b" })
    }).pipe(Effect.scoped, Effect.provide(storeDown))
  )

  it.effect("fail open applies to an unreachable or silent store only, never to one that refuses", () =>
    Effect.gen(function* () {
      for (const reason of ["timeout", "unavailable"] as const) {
        const pool = yield* SharedPool.make({ key: "k", max: 1, onStoreError: "allow" }).pipe(
          Effect.provide(storeFailing(reason))
        )
        assert.isTrue(yield* pool.tryAcquire(1, { worker: "w" }), reason)
        yield* pool.release(1, { worker: "w" })
      }
      const pool = yield* SharedPool.make({ key: "k", max: 1, onStoreError: "allow" }).pipe(
        Effect.provide(storeFailing("refused"))
      )
      const ran = yield* Ref.make(false)
      const error = yield* Effect.flip(pool.withPermit(Ref.set(ran, true), { worker: "w" }))
      assert.deepStrictEqual([error._tag, (error as PoolStore.PoolStoreError).reason], ["PoolStoreError", "refused"])
      assert.strictEqual((yield* Effect.flip(pool.tryAcquire(1, { worker: "w" })))._tag, "PoolStoreError")
      assert.deepStrictEqual([yield* Ref.get(ran), yield* pool.active, (yield* pool.stats).acquired], [false, 0, 0])
    }).pipe(Effect.scoped)
  )

  it.effect("closing answers a queued caller at once, not at its next poll", () =>
    Effect.gen(function* () {
      const { close, pool } = yield* recorded({ key: "k", max: 1, maxWaiting: 1, poll: "5 seconds" })
      assert.isTrue(yield* pool.tryAcquire(1, { worker: "holder" }))
      const waiter = yield* fork(pool.withPermit(Effect.void, { worker: "waiter" }))
      yield* TestClock.adjust("10 millis")
      assert.isUndefined(waiter.pollUnsafe())
      yield* close
      const exit = waiter.pollUnsafe()
      assert.isDefined(exit, "answered before any time passed")
      // As an in-process pool does: turned away before the holder's permit came back.
      assert.deepStrictEqual(failure(yield* Effect.flip(Fiber.join(waiter))), ["closed", 1, 1])
      assert.strictEqual(yield* Clock.currentTimeMillis, 10)
    }).pipe(Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect("after close both pools answer alike: PermitNotHeld for a returned permit, no call counted", () =>
    Effect.gen(function* () {
      const afterClose = (
        make: Effect.Effect<CoroutinePool.CoroutinePool<unknown, unknown>, unknown, Scope.Scope | PoolStore.PoolStore>
      ) =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          const pool = yield* Scope.provide(make, scope)
          assert.isTrue(yield* pool.tryAcquire(1, { worker: "manual" }))
          yield* pool.withPermit(Effect.void, { worker: "done" })
          yield* Scope.close(scope, Exit.void)
          const answers = [
            yield* Effect.flip(pool.release(1, { worker: "manual" })),
            yield* pool.tryAcquire(1, { worker: "try" }),
            // The call that never waits (0.4) answers None.
            yield* pool.withPermitIfAvailable(Effect.void, { worker: "now" }),
            yield* Effect.flip(pool.withPermit(Effect.void, { worker: "wait" })),
            yield* Effect.flip(Effect.scoped(pool.acquire(1, { worker: "scoped" })))
          ]
          return { answers, stats: yield* pool.stats }
        })
      const local = yield* afterClose(CoroutinePool.make({ max: 2, maxWaiting: 1 }))
      const shared = yield* afterClose(SharedPool.make({ key: "k", max: 2, maxWaiting: 1 }))
      // A shared pool's stats add `lost`.
      const { lost, ...sharedStats } = shared.stats as SharedPool.Stats
      assert.deepStrictEqual({ answers: shared.answers, stats: sharedStats }, local)
      assert.strictEqual(lost, 0)
      assert.deepStrictEqual(local.answers, [
        new CoroutinePool.PermitNotHeld({ worker: "manual" }),
        false,
        Option.none(),
        new CoroutinePool.PoolRejected({ worker: "wait", reason: "closed", active: 0, max: 2 }),
        new CoroutinePool.PoolRejected({ worker: "scoped", reason: "closed", active: 0, max: 2 })
      ])
      assert.deepStrictEqual([local.stats.acquired, local.stats.released, local.stats.rejected], [2, 2, 0])
    }).pipe(Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect("withPermit asks the store again until a permit frees, up to maxWaiting and maxWait", () =>
    Effect.gen(function* () {
      const holder = yield* recorded({ key: "k", max: 1 })
      const { close, lines, pool } = yield* recorded({
        key: "k",
        max: 1,
        maxWaiting: 2,
        maxWait: "500 millis",
        poll: "50 millis"
      })
      assert.isTrue(yield* holder.pool.tryAcquire(1, { worker: "h" }))
      const started = yield* Ref.make(-1)
      const first = yield* fork(
        pool.withPermit(
          Effect.andThen(Clock.currentTimeMillis, (at) =>
            Effect.andThen(Ref.set(started, at), Effect.sleep("1 second"))
          ),
          { worker: 1 }
        )
      )
      const second = yield* fork(pool.withPermit(Effect.void, { worker: 2 }))
      assert.deepStrictEqual(failure(yield* Effect.flip(pool.withPermit(Effect.void, { worker: 3 }))), [
        "queue-full",
        1,
        1
      ])
      yield* TestClock.adjust("120 millis")
      yield* holder.pool.release(1, { worker: "h" })
      yield* TestClock.adjust("30 millis")
      assert.strictEqual(yield* Ref.get(started), 150, "the next poll after the release")
      yield* TestClock.adjust("349 millis")
      assert.isUndefined(second.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(failure(yield* Effect.flip(Fiber.join(second))), ["timeout", 1, 1])
      yield* TestClock.adjust("650 millis")
      yield* Fiber.join(first)
      yield* close
      yield* holder.close
      assert.deepStrictEqual(yield* lines, [
        "Worker 1: queued (1/1 active, 1 waiting)",
        "Worker 2: queued (1/1 active, 2 waiting)",
        "Worker 3: rejected (1/1 active, 2 waiting)",
        "Worker 1: acquired (1/1 active, 1 waiting)",
        "Worker 2: timed out (1/1 active)",
        "Worker 1: released (0/1 active)"
      ])
    }).pipe(Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect("a queued caller takes a permit this process frees at once, not at its next poll", () =>
    Effect.gen(function* () {
      const pool = yield* SharedPool.make({ key: "k", max: 1, maxWaiting: 1, poll: "1 second" })
      assert.isTrue(yield* pool.tryAcquire(1, { worker: "holder" }))
      const waiter = yield* fork(pool.withPermit(Clock.currentTimeMillis, { worker: "waiter" }))
      yield* TestClock.adjust("120 millis")
      yield* pool.release(1, { worker: "holder" })
      assert.strictEqual(yield* Fiber.join(waiter), 120)
    }).pipe(Effect.scoped, Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect("replicas that disagree on max or ttl are refused; resize keeps the shared max", () =>
    Effect.gen(function* () {
      const a = yield* SharedPool.make({ key: "k", max: 2 })
      const b = yield* SharedPool.make({ key: "k", max: 3 })
      const c = yield* SharedPool.make({ key: "k", max: 2, ttl: "300 millis" })
      assert.isTrue(yield* a.tryAcquire(1, { worker: "a" }))
      const error = yield* Effect.flip(b.tryAcquire(1, { worker: "b" }))
      assert.deepStrictEqual(
        error,
        new PoolStore.PoolConfigMismatch({ key: "k", option: "max", stored: 2, requested: 3 })
      )
      assert.strictEqual(error.message, "Pool k: the store holds max 2, this process asked for 3")
      const ttl = yield* Effect.flip(c.withPermit(Effect.void, { worker: "c" }))
      assert.deepStrictEqual(
        ttl,
        new PoolStore.PoolConfigMismatch({ key: "k", option: "ttl", stored: 10_000, requested: 300 })
      )
      assert.strictEqual(ttl.message, "Pool k: the store holds ttl 10000 ms, this process asked for 300 ms")
      assert.deepStrictEqual([yield* c.active, (yield* c.stats).acquired], [0, 0])
      yield* a.resize(2)
      assert.strictEqual((yield* Effect.flip(a.resize(5)))._tag, "PoolConfigMismatch")
      assert.strictEqual((yield* Effect.flip(a.resize(0)))._tag, "InvalidPoolSize")
      yield* a.release(1, { worker: "a" })
    }).pipe(Effect.scoped, Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect("bad keys, ttls and worker ids get typed errors and change nothing", () =>
    Effect.gen(function* () {
      for (const key of ["", "a b", "x{y}", "k".repeat(129), "new\nline"]) {
        const error = yield* Effect.flip(SharedPool.make({ key, max: 1 }))
        assert.deepStrictEqual(error, new PoolStore.InvalidStoreOption({ option: "key", value: key }))
      }
      // The ttl is checked against what a store can take (whole millis from
      // 30 ms to an hour) before anything is asked, never refused later.
      const bad: ReadonlyArray<Partial<SharedPool.Options>> = [
        { ttl: "10 millis" },
        { ttl: "29 millis" },
        { ttl: "Infinity" },
        { ttl: 1e16 },
        { ttl: "100000000000 days" },
        { ttl: "61 minutes" },
        { ttl: Number.NaN },
        { ttl: { millis: 500 } as never },
        { ttl: {} as never },
        { ttl: "soon" as never },
        { poll: "0 millis" },
        { poll: -5 },
        { poll: "2 minutes" },
        { poll: Number.NaN },
        { onStoreError: "fail-open" as never }
      ]
      for (const options of bad) {
        const error = yield* Effect.flip(SharedPool.make({ key: "k", max: 1, ...options }))
        const [option, value] = Object.entries(options)[0] as [string, unknown]
        const expected = {
          ttl: 'a duration from 30 milliseconds to 1 hour, such as "10 seconds"',
          poll: 'a duration from 1 millisecond to 1 minute, such as "50 millis"',
          onStoreError: '"fail" or "allow"'
        }[option] as string
        assert.deepStrictEqual(error, new CoroutinePool.InvalidPoolOption({ option, value, expected }))
      }
      const pool = yield* SharedPool.make({ key: "k", max: 1 })
      for (const worker of ["", "bad\nworker", "w".repeat(257), Number.NaN]) {
        const error = yield* Effect.flip(pool.withPermit(Effect.void, { worker: worker }))
        assert.deepStrictEqual(error, new PoolStore.InvalidStoreOption({ option: "worker", value: worker }))
      }
      assert.deepStrictEqual([(yield* pool.stats).rejected, (yield* pool.stats).acquired], [0, 0])
      assert.isTrue(yield* pool.tryAcquire(1, { worker: "route GET /users/:id" }))
      yield* pool.release(1, { worker: "route GET /users/:id" })
    }).pipe(Effect.scoped, Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect("spans with the outcome (lost when the lease was) and Debug logs, as for the in-process pool", () =>
    Effect.gen(function* () {
      const { spans, tracer } = RecordingTracer.make()
      const logs: Array<string> = []
      const logger = Logger.make(({ message }) => {
        logs.push(String(message))
      })
      yield* Effect.gen(function* () {
        const pool = yield* SharedPool.make({ key: "traced", max: 1, ttl: "300 millis" })
        yield* pool.withPermit(Effect.void, { worker: "a" })
        const lost = yield* fork(pool.withPermit(Effect.never, { worker: "b" }))
        assert.deepStrictEqual(failure(yield* Effect.flip(pool.withPermit(Effect.void, { worker: "c" }))), [
          "full",
          1,
          1
        ])
        assert.deepStrictEqual(yield* pool.withPermitIfAvailable(Effect.void, { worker: "d" }), Option.none())
        assert.isFalse(yield* pool.tryAcquire(1, { worker: "e" }))
        yield* TestClock.adjust("100 millis")
        assert.strictEqual((yield* Effect.flip(Fiber.join(lost)))._tag, "LeaseLost")
      }).pipe(
        Effect.scoped,
        Effect.withTracer(tracer),
        Effect.provide(Logger.layer([logger])),
        Effect.provideService(References.MinimumLogLevel, "Debug")
      )
      assert.deepStrictEqual(
        spans.map((span) => [
          span.name,
          span.attributes.get("coroutine_pool.worker"),
          span.attributes.get("coroutine_pool.outcome")
        ]),
        [
          ["SharedPool.withPermit", "a", "ok"],
          ["SharedPool.withPermit", "b", "lost"],
          // 0.4: withPermit is one span whether or not the pool lets it wait.
          ["SharedPool.withPermit", "c", "rejected"],
          // None and false are answers, not errors.
          ["SharedPool.withPermitIfAvailable", "d", "ok"],
          ["SharedPool.tryAcquire", "e", "ok"]
        ]
      )
      assert.deepStrictEqual(logs, [
        "Worker a: acquired (1/1 active)",
        "Worker a: released (0/1 active)",
        "Worker b: acquired (1/1 active)",
        "Worker c: rejected (1/1 active)",
        "Worker d: rejected (1/1 active)",
        "Worker e: rejected (1/1 active)",
        "Worker b: lost its lease (1/1 active)"
      ])
    }).pipe(Effect.provide(storeWith((store) => ({ renew: (options) => Effect.as(store.renew(options), false) }))))
  )

  it.effect("the Redis store refuses a bad prefix or timeout before it sends anything", () =>
    Effect.gen(function* () {
      const sent: Array<string> = []
      const redis = Layer.succeed(Redis.Redis, {
        send: (command: string) => Effect.sync(() => sent.push(command))
      } as unknown as Redis.Redis["Service"])
      const bad = [
        [{ prefix: "a b" }, "prefix", "a b"],
        // with "eu:pay", the same keys as prefix "shop"
        [{ prefix: "shop:eu" }, "prefix", "shop:eu"],
        [{ timeout: "0 millis" }, "timeout", "0 millis"],
        [{ timeout: "Infinity" }, "timeout", "Infinity"]
      ] as const
      for (const [options, option, value] of bad) {
        const error = yield* Effect.flip(Layer.build(PoolStore.layerStoreRedis(options).pipe(Layer.provide(redis))))
        assert.deepStrictEqual(error, new PoolStore.InvalidStoreOption({ option, value }))
      }
      const fromConfig = yield* Effect.flip(
        Layer.build(
          PoolStore.layerStoreRedisConfig({ prefix: Config.String("POOL_PREFIX") }).pipe(
            Layer.provide(redis),
            Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ POOL_PREFIX: "{slot}" })))
          )
        )
      )
      assert.deepStrictEqual(fromConfig, new PoolStore.InvalidStoreOption({ option: "prefix", value: "{slot}" }))
      assert.deepStrictEqual(sent, [])
    }).pipe(Effect.scoped)
  )

  it.effect.prop(
    "distinct prefix and key pairs that the store accepts never name the same Redis keys",
    {
      pairs: Schema.Array(
        Schema.Tuple([
          Schema.Literals(["a", "b", "a.b", "a-b", "ab"]),
          Schema.Literals(["c", "b:c", "c:d", "b", "a:b"])
        ])
      ).check(Schema.isMinLength(2), Schema.isMaxLength(6))
    },
    ({ pairs }) =>
      Effect.gen(function* () {
        const seen = new Map<string, string>()
        for (const [prefix, key] of pairs) {
          yield* PoolStore.validateName("prefix", prefix)
          yield* PoolStore.validateName("key", key)
          const name = RedisScripts.keysOf(prefix, key).leases
          const pair = `${prefix} + ${key}`
          assert.strictEqual(seen.get(name) ?? pair, pair, `${name} named twice`)
          seen.set(name, pair)
        }
      })
  )

  it.effect("layerConfig reads POOL_KEY, POOL_MAX and POOL_TTL, and a missing key names it", () =>
    Effect.gen(function* () {
      const fromEnv = (env: Record<string, string>) =>
        Effect.gen(function* () {
          const pool = yield* SharedPool.SharedPool
          assert.isTrue(yield* pool.tryAcquire(1, { worker: "a" }))
          assert.isFalse(yield* pool.tryAcquire(1, { worker: "b" }))
          yield* TestClock.adjust("1 second")
          yield* pool.release(1, { worker: "a" })
          return yield* pool.max
        }).pipe(
          Effect.provide(
            SharedPool.layerConfig().pipe(
              Layer.provide(PoolStore.layerStoreMemory),
              Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
            )
          )
        )
      assert.strictEqual(yield* fromEnv({ POOL_KEY: "reports", POOL_MAX: "1", POOL_TTL: "200 millis" }), 1)
      const error = yield* Effect.flip(fromEnv({ POOL_MAX: "1" }))
      assert.include(String(error), "POOL_KEY")
    })
  )

  it.effect.prop(
    "three pools on one key never hold more than max between them, under any budget, interrupted or not",
    {
      max: between(1, 3),
      budget: Schema.Literals([3, 4, 7, 2048]),
      calls: Schema.Array(
        Schema.Struct({
          pool: between(0, 2),
          start: between(0, 40),
          hold: between(0, 60),
          wait: Schema.Boolean,
          interruptAt: Schema.optional(between(0, 80))
        })
      ).check(Schema.isMinLength(1), Schema.isMaxLength(12))
    },
    ({ budget, calls, max }) =>
      Effect.gen(function* () {
        const pools = yield* Effect.forEach([0, 1, 2], () =>
          SharedPool.make({ key: "prop", max, ttl: "90 millis", maxWaiting: 4, poll: "7 millis" })
        )
        let inside = 0
        let most = 0
        const work = (hold: number) =>
          Effect.acquireUseRelease(
            Effect.sync(() => {
              most = Math.max(most, ++inside)
            }),
            () => Effect.sleep(hold),
            () => Effect.sync(() => inside--)
          )
        const fibers = yield* Effect.forEach(calls, (call) => {
          const pool = pools[call.pool] as CoroutinePool.CoroutinePool<SharedPool.SharedPoolError>
          // Waiting as the pool allows, or never (0.4: withPermitIfAvailable).
          const run = call.wait
            ? pool.withPermit(work(call.hold), { worker: call.pool })
            : pool.withPermitIfAvailable(work(call.hold), { worker: call.pool })
          return fork(Effect.delay(run, call.start))
        })
        yield* Effect.forEach(calls, (call, i) =>
          call.interruptAt === undefined
            ? Effect.void
            : fork(Effect.delay(Fiber.interrupt(fibers[i] as Fiber.Fiber<unknown, unknown>), call.interruptAt))
        )
        // In steps, so fibers sliced by a tiny budget keep up with the clock.
        for (let i = 0; i < 200; i++) yield* TestClock.adjust("10 millis")
        for (let i = 0; i < 100; i++) yield* Effect.yieldNow
        const pending = calls.filter((_, i) => (fibers[i] as Fiber.Fiber<unknown, unknown>).pollUnsafe() === undefined)
        assert.deepStrictEqual(pending, [], "every call has ended")
        const exits = yield* Effect.forEach(fibers, Fiber.await)
        assert.isAtMost(most, max)
        for (const exit of exits) {
          if (Exit.isFailure(exit) && !Exit.hasInterrupts(exit)) {
            const error = Cause.findErrorOption(exit.cause)
            assert.isTrue(Option.isSome(error) && error.value._tag === "PoolRejected", Cause.pretty(exit.cause))
          }
        }
        for (const pool of pools) assert.strictEqual(yield* pool.active, 0)
        // Every lease came back: a fresh pool takes all `max` permits.
        const fresh = yield* SharedPool.make({ key: "prop", max, ttl: "90 millis" })
        for (let i = 0; i < max; i++) assert.isTrue(yield* fresh.tryAcquire(1, { worker: i }))
        assert.isFalse(yield* fresh.tryAcquire(1, { worker: max }))
      }).pipe(
        Effect.scoped,
        Effect.provide(PoolStore.layerStoreMemory),
        Effect.provideService(Scheduler.MaxOpsBeforeYield, budget)
      ),
    { arbitrary: { runs: 150 } }
  )
})

describe("SharedPool with weighted leases (memory store)", () => {
  const record = (pool: SharedPool.SharedPool) =>
    Effect.gen(function* () {
      const events = yield* pool.subscribe
      return Fiber.join(yield* Effect.forkChild(Stream.runCollect(Stream.map(events, SharedPool.formatEvent))))
    })

  it.effect("one limit across the pools of a key counts permits, not callers; a queued weighted head asks again", () =>
    Effect.gen(function* () {
      const scopeA = yield* Scope.make()
      const scopeB = yield* Scope.make()
      const options = { key: "weighted", max: 4, maxWaiting: 1, poll: "10 millis" } as const
      const a = yield* SharedPool.make({ ...options, name: "a" }).pipe(Scope.provide(scopeA))
      const b = yield* SharedPool.make({ ...options, name: "b" }).pipe(Scope.provide(scopeB))
      const linesA = yield* record(a)
      const linesB = yield* record(b)
      const held = yield* fork(a.withPermits(3, { worker: "a" })(Effect.sleep("25 millis")))
      // The store holds 3 of 4: b has none of them, and still 2 do not fit.
      assert.isFalse(yield* b.tryAcquire(2, { worker: "x" }))
      assert.isTrue(yield* b.tryAcquire(1, { worker: "y" }))
      const z = yield* fork(b.withPermits(2, { worker: "z" })(SharedPool.CurrentLease))
      yield* b.release(1, { worker: "y" })
      // 1 free in the store: the head asked at once, and asks again every 10 ms.
      yield* TestClock.adjust("20 millis")
      assert.isUndefined(z.pollUnsafe(), "z waits while a holds 3")
      assert.deepStrictEqual([(yield* a.stats).active, (yield* b.stats).active, (yield* b.stats).waiting], [3, 0, 1])
      yield* TestClock.adjust("10 millis")
      const lease = yield* Fiber.join(z)
      assert.strictEqual(lease?.permits, 2, "the lease holds 2 permits")
      yield* Fiber.join(held)
      const [statsA, statsB] = [yield* a.stats, yield* b.stats]
      yield* Scope.close(scopeA, Exit.void)
      yield* Scope.close(scopeB, Exit.void)
      assert.deepStrictEqual(yield* linesA, [
        "Worker a: acquired 3 permits (3/4 active)",
        "Worker a: released 3 permits (0/4 active)"
      ])
      assert.deepStrictEqual(yield* linesB, [
        "Worker x: rejected for 2 permits (3/4 active)",
        "Worker y: acquired (4/4 active)",
        "Worker z: queued for 2 permits (4/4 active, 1 waiting)",
        "Worker y: released (3/4 active, 1 waiting)",
        "Worker z: acquired 2 permits (2/4 active)",
        "Worker z: released 2 permits (0/4 active)"
      ])
      assert.deepStrictEqual(
        [statsA.acquired, statsA.released, statsB.acquired, statsB.rejected, statsB.released, statsB.queued],
        [1, 1, 2, 1, 2, 1]
      )
    }).pipe(Effect.provide(PoolStore.layerStoreMemory))
  )

  it.effect(
    "a partial release of a take by hand frees only its part in the store; the rest stays held and renewed",
    () =>
      Effect.gen(function* () {
        const options = { key: "partial", max: 4, ttl: "300 millis" } as const
        const scope = yield* Scope.make()
        const b = yield* SharedPool.make({ ...options, name: "b" }).pipe(Scope.provide(scope))
        const c = yield* SharedPool.make({ ...options, name: "c" }).pipe(Scope.provide(scope))
        const linesB = yield* record(b)
        assert.isTrue(yield* b.tryAcquire(3, { worker: "w" }))
        yield* b.release(1, { worker: "w" })
        assert.isTrue(yield* c.tryAcquire(2, { worker: "c" }), "2 are free in the store")
        assert.isFalse(yield* c.tryAcquire(1, { worker: "c" }), "the other 2 are still w's")
        // Ten TTLs: the renewer keeps w's remaining 2 (and c's 2).
        for (let i = 0; i < 30; i++) yield* TestClock.adjust("100 millis")
        assert.isFalse(yield* c.tryAcquire(1, { worker: "c" }), "still held after ten TTLs")
        assert.deepStrictEqual(
          yield* Effect.flip(b.release(3, { worker: "w" })),
          new CoroutinePool.PermitNotHeld({ worker: "w" })
        )
        yield* b.release(2, { worker: "w" })
        yield* c.release(2, { worker: "c" })
        assert.isTrue(yield* c.tryAcquire(4, { worker: "all" }), "every permit came back to the store")
        yield* c.release(4, { worker: "all" })
        const stats = yield* b.stats
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual([stats.acquired, stats.released, stats.lost, stats.active], [1, 2, 0, 0])
        assert.deepStrictEqual(yield* linesB, [
          "Worker w: acquired 3 permits (3/4 active)",
          "Worker w: released (2/4 active)",
          "Worker w: released 2 permits (2/4 active)"
        ])
      }).pipe(Effect.provide(PoolStore.layerStoreMemory))
  )

  // BUG (reported): every event of a caller asking more than one permit
  // carries `permits` (0.4), but `Lost` is emitted without it
  // (src/internal/leases.ts, publishLost), so the line does not say how many
  // permits were lost either.
  it.effect("a lost weighted lease is published with its permits, and every one of them is back", () =>
    Effect.gen(function* () {
      const { close, pool } = yield* recorded({ key: "lost-weighted", max: 3, ttl: "300 millis" })
      const events = yield* Effect.forkChild(Stream.runCollect(pool.events), { startImmediately: true })
      const fiber = yield* fork(pool.withPermits(2, { worker: "w" })(Effect.never))
      assert.isTrue(yield* pool.tryAcquire(1, { worker: "t" }))
      yield* TestClock.adjust("100 millis")
      assert.strictEqual((yield* Effect.flip(Fiber.join(fiber)))._tag, "LeaseLost")
      const stats = yield* pool.stats
      assert.deepStrictEqual([stats.active, stats.lost, stats.acquired, stats.released], [0, 2, 2, 0])
      yield* close
      const log = yield* Fiber.join(events)
      assert.deepStrictEqual(
        log.filter((event) => event._tag === "Lost"),
        [
          { _tag: "Lost", worker: "w", active: 3, max: 3, waiting: 0, permits: 2 },
          { _tag: "Lost", worker: "t", active: 3, max: 3, waiting: 0 }
        ]
      )
      assert.deepStrictEqual(log.map(SharedPool.formatEvent), [
        "Worker w: acquired 2 permits (2/3 active)",
        "Worker t: acquired (3/3 active)",
        "Worker w: lost its lease for 2 permits (3/3 active)",
        "Worker t: lost its lease (3/3 active)"
      ])
    }).pipe(Effect.provide(storeWith(() => ({ renew: () => Effect.succeed(false) }))))
  )

  it.effect.prop(
    "three pools on one key never hold more than max permits between them, counting weights",
    {
      max: between(1, 4),
      budget: Schema.Literals([3, 4, 7, 2048]),
      calls: Schema.Array(
        Schema.Struct({
          pool: between(0, 2),
          start: between(0, 40),
          hold: between(0, 60),
          // Its weight is 1..max: ((permits - 1) % max) + 1.
          permits: between(1, 12),
          api: Schema.Literals(["with", "ifAvailable", "acquire"]),
          interruptAt: Schema.optional(between(0, 80))
        })
      ).check(Schema.isMinLength(1), Schema.isMaxLength(10))
    },
    ({ budget, calls, max }) =>
      Effect.gen(function* () {
        const pools = yield* Effect.forEach([0, 1, 2], () =>
          SharedPool.make({ key: "weights", max, ttl: "90 millis", maxWaiting: 4, poll: "7 millis" })
        )
        let inside = 0
        let most = 0
        const work = (permits: number, hold: number) =>
          Effect.acquireUseRelease(
            Effect.sync(() => {
              inside += permits
              most = Math.max(most, inside)
            }),
            () => Effect.sleep(hold),
            () => Effect.sync(() => (inside -= permits))
          )
        const fibers = yield* Effect.forEach(calls, (call) => {
          const pool = pools[call.pool] as SharedPool.SharedPool
          const permits = ((call.permits - 1) % max) + 1
          const run =
            call.api === "with"
              ? pool.withPermits(permits, { worker: call.pool })(work(permits, call.hold))
              : call.api === "ifAvailable"
                ? pool.withPermitsIfAvailable(permits, { worker: call.pool })(work(permits, call.hold))
                : Effect.scoped(Effect.andThen(pool.acquire(permits, { worker: call.pool }), work(permits, call.hold)))
          return fork(Effect.delay(run, call.start))
        })
        yield* Effect.forEach(calls, (call, i) =>
          call.interruptAt === undefined
            ? Effect.void
            : fork(Effect.delay(Fiber.interrupt(fibers[i] as Fiber.Fiber<unknown, unknown>), call.interruptAt))
        )
        // In steps, so fibers sliced by a tiny budget keep up with the clock.
        for (let i = 0; i < 200; i++) yield* TestClock.adjust("10 millis")
        for (let i = 0; i < 100; i++) yield* Effect.yieldNow
        const pending = calls.filter((_, i) => (fibers[i] as Fiber.Fiber<unknown, unknown>).pollUnsafe() === undefined)
        assert.deepStrictEqual(pending, [], "every call has ended")
        const exits = yield* Effect.forEach(fibers, Fiber.await)
        assert.isAtMost(most, max, "permits held at once across the pools")
        for (const exit of exits) {
          if (Exit.isFailure(exit) && !Exit.hasInterrupts(exit)) {
            const error = Cause.findErrorOption(exit.cause)
            assert.isTrue(Option.isSome(error) && error.value._tag === "PoolRejected", Cause.pretty(exit.cause))
          }
        }
        for (const pool of pools) {
          const stats = yield* pool.stats
          assert.deepStrictEqual([stats.active, stats.waiting, stats.lost], [0, 0, 0])
        }
        // Every lease came back: a fresh pool takes all `max` permits in one lease.
        const fresh = yield* SharedPool.make({ key: "weights", max, ttl: "90 millis" })
        assert.isTrue(yield* fresh.tryAcquire(max, { worker: "all" }))
        assert.isFalse(yield* fresh.tryAcquire(1, { worker: "more" }))
      }).pipe(
        Effect.scoped,
        Effect.provide(PoolStore.layerStoreMemory),
        Effect.provideService(Scheduler.MaxOpsBeforeYield, budget)
      ),
    { arbitrary: { runs: 150 } }
  )
})
