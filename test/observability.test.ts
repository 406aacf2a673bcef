import { assert, describe, it } from "@effect/vitest"
import { Clock, ConfigProvider, Effect, Exit, Fiber, Layer, Logger, Metric, References, Scope } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { TestClock } from "effect/testing"
import { CoroutinePool } from "../src/index.ts"
import { Buckets } from "../src/internal/ledger.ts"
import * as RecordingTracer from "./utils/RecordingTracer.ts"

const of = <S>(metric: Metric.Metric<number, S>, attributes: Record<string, string>) =>
  Metric.value(Metric.withAttributes(metric, attributes))

const fork = <A, E>(effect: Effect.Effect<A, E>) => Effect.forkChild(effect, { startImmediately: true })

describe("metrics", () => {
  it.effect("read back after a known scenario, exactly", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      // Every hold measured (the default samples those admitted without a wait).
      const pool = yield* CoroutinePool.make({
        max: 1,
        maxWaiting: 1,
        maxWait: "150 millis",
        name: "test",
        holdSampling: 1
      }).pipe(Scope.provide(scope))
      // t=0: 0 holds for 100 ms; 1 queues and holds 20 ms from t=100; 2 finds
      // the queue full; a tryAcquire finds every permit taken.
      const first = yield* fork(pool.withPermit(Effect.sleep("100 millis"), { worker: 0 }))
      const second = yield* fork(pool.withPermit(Effect.sleep("20 millis"), { worker: 1 }))
      yield* Effect.flip(pool.withPermit(Effect.void, { worker: 2 }))
      assert.isFalse(yield* pool.tryAcquire(1, { worker: 3 }))
      yield* TestClock.adjust("120 millis")
      yield* Fiber.joinAll([first, second])
      // t=120: 5 takes the permit by hand; 6 waits 150 ms and times out; 7
      // queues and is interrupted; 5 gives the permit back at t=300.
      assert.isTrue(yield* pool.tryAcquire(1, { worker: 5 }))
      const timedOut = yield* fork(Effect.flip(pool.withPermit(Effect.void, { worker: 6 })))
      yield* TestClock.adjust("150 millis")
      assert.strictEqual((yield* Fiber.join(timedOut)).reason, "timeout")
      const abandoned = yield* fork(pool.withPermit(Effect.void, { worker: 7 }))
      yield* TestClock.adjust("10 millis")
      yield* Fiber.interrupt(abandoned)
      yield* TestClock.adjust("20 millis")
      yield* pool.release(1, { worker: 5 })

      const pool_ = { pool: "test" }
      assert.deepStrictEqual(
        {
          active: yield* of(CoroutinePool.metrics.active, pool_),
          waiting: yield* of(CoroutinePool.metrics.waiting, pool_),
          max: yield* of(CoroutinePool.metrics.max, pool_),
          acquired: yield* of(CoroutinePool.metrics.acquired, pool_),
          released: yield* of(CoroutinePool.metrics.released, pool_),
          abandoned: yield* of(CoroutinePool.metrics.abandoned, pool_),
          full: yield* of(CoroutinePool.metrics.rejected, { pool: "test", reason: "full" }),
          queueFull: yield* of(CoroutinePool.metrics.rejected, { pool: "test", reason: "queue-full" }),
          timeout: yield* of(CoroutinePool.metrics.rejected, { pool: "test", reason: "timeout" }),
          closed: yield* of(CoroutinePool.metrics.rejected, { pool: "test", reason: "closed" })
        },
        {
          active: { value: 0 },
          waiting: { value: 0 },
          max: { value: 1 },
          acquired: { count: 3, incremental: true },
          released: { count: 3, incremental: true },
          abandoned: { count: 1, incremental: true },
          full: { count: 1, incremental: true },
          queueFull: { count: 1, incremental: true },
          timeout: { count: 1, incremental: true },
          closed: { count: 0, incremental: true }
        }
      )
      // Waits: 0, 0.1 s (worker 1), 0 (by hand). Holds: 0.1, 0.02, 0.18 s.
      const wait = yield* of(CoroutinePool.metrics.wait, pool_)
      assert.deepStrictEqual([wait.count, wait.sum, wait.min, wait.max], [3, 0.1, 0, 0.1])
      assert.deepStrictEqual(wait.buckets.slice(0, 6), [
        [0.001, 2],
        [0.005, 2],
        [0.01, 2],
        [0.025, 2],
        [0.05, 2],
        [0.1, 3]
      ])
      const hold = yield* of(CoroutinePool.metrics.hold, pool_)
      assert.deepStrictEqual([hold.count, hold.min, hold.max], [3, 0.02, 0.18])
      assert.closeTo(hold.sum, 0.3, 1e-9)
      assert.deepStrictEqual(
        hold.buckets.filter(([bound]) => bound >= 0.025 && bound <= 0.25),
        [
          [0.025, 1],
          [0.05, 1],
          [0.1, 2],
          [0.25, 3]
        ]
      )

      const text = yield* PrometheusMetrics.format()
      assert.include(text, 'coroutine_pool_acquired_total{pool="test"} 3')
      assert.include(text, 'coroutine_pool_rejected_total{pool="test",reason="queue-full"} 1')
      assert.include(text, 'coroutine_pool_wait_seconds_bucket{pool="test",le="0.1"} 3')

      // The series leave the registry with the pool.
      yield* Scope.close(scope, Exit.void)
      const left = (yield* Metric.snapshot).filter((snapshot) => snapshot.id.startsWith("coroutine_pool_"))
      assert.deepStrictEqual(left, [])
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("sampled hold times: every hold counted, few clock reads, queued holds always measured", () =>
    Effect.gen(function* () {
      // The pool's clock, counting its reads.
      const testClock = yield* Clock.Clock
      let reads = 0
      const counting: Clock.Clock = {
        ...testClock,
        currentTimeMillisUnsafe: () => {
          reads++
          return testClock.currentTimeMillisUnsafe()
        }
      }
      const holdsOf = (holdSampling: number, name: string) =>
        Effect.gen(function* () {
          const pool = yield* CoroutinePool.make({ max: 1, name, holdSampling }).pipe(
            Effect.provideService(Clock.Clock, counting)
          )
          reads = 0
          // 160 holds of 10 ms each, admitted without a wait.
          for (let i = 0; i < 160; i++) {
            const holder = yield* fork(pool.withPermit(Effect.sleep("10 millis")))
            yield* TestClock.adjust("10 millis")
            yield* Fiber.join(holder)
          }
          const readsForHolds = reads
          const hold = yield* of(CoroutinePool.metrics.hold, { pool: name })
          const wait = yield* of(CoroutinePool.metrics.wait, { pool: name })
          return { readsForHolds, hold, wait }
        })
      const every = yield* holdsOf(1, "every")
      const sampled = yield* holdsOf(16, "sampled")
      // Measuring every hold reads the clock twice per hold; the default, on
      // about 1 in 16 (at least one: the first); no wait is read at all.
      assert.strictEqual(every.readsForHolds, 320)
      assert.isAtLeast(sampled.readsForHolds, 2)
      assert.isAtMost(sampled.readsForHolds, 60)
      for (const { hold, wait } of [every, sampled]) {
        assert.deepStrictEqual([hold.count, hold.min, hold.max], [160, 0.01, 0.01])
        assert.closeTo(hold.sum, 1.6, 1e-9)
        assert.deepStrictEqual([wait.count, wait.sum, wait.max], [160, 0, 0])
      }
      assert.deepStrictEqual(sampled.hold.buckets, every.hold.buckets)

      // A queued caller's hold is measured whatever the sampling: its
      // admission reads the clock anyway.
      const pool = yield* CoroutinePool.make({ max: 1, maxWaiting: 1, name: "queued", holdSampling: 1024 })
      const first = yield* fork(pool.withPermit(Effect.sleep("10 millis")))
      const queued = yield* fork(pool.withPermit(Effect.sleep("300 millis")))
      yield* TestClock.adjust("310 millis")
      yield* Fiber.joinAll([first, queued])
      const hold = yield* of(CoroutinePool.metrics.hold, { pool: "queued" })
      assert.deepStrictEqual([hold.count, hold.max], [2, 0.3])
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it("a histogram counts every value: zeros in the first bucket, those not measured spread as the measured ones", () => {
    const buckets = new Buckets()
    buckets.observe(0.002)
    buckets.observe(0.2)
    buckets.unmeasured += 2
    buckets.zeros += 1
    const state = buckets.state()
    const at = (bound: number) => state.buckets.find(([b]) => b === bound)?.[1]
    assert.deepStrictEqual([at(0.001), at(0.005), at(0.1), at(0.25), at(10)], [1, 3, 3, 5, 5])
    assert.deepStrictEqual([state.count, state.min, state.max], [5, 0, 0.2])
    assert.closeTo(state.sum, 0.404, 1e-12)
    // Before any measured value: counted, in no bucket but the last (+Inf).
    const early = new Buckets()
    early.unmeasured += 3
    assert.deepStrictEqual([early.state().count, early.state().buckets.at(-1)?.[1]], [3, 0])
  })

  it.effect("holdSampling outside 1 to 1024 is refused", () =>
    Effect.gen(function* () {
      for (const holdSampling of [0, 1025, 1.5, Number.NaN]) {
        const error = yield* Effect.flip(CoroutinePool.make({ max: 1, holdSampling }))
        assert.deepStrictEqual(
          error,
          new CoroutinePool.InvalidPoolOption({
            option: "holdSampling",
            value: holdSampling,
            expected: "a whole number from 1 to 1024"
          })
        )
      }
    })
  )

  it.effect("with timing off, no histogram is registered and the counters still are", () =>
    Effect.gen(function* () {
      const pool = yield* CoroutinePool.make({ max: 1, name: "untimed", timing: false })
      yield* pool.withPermit(Effect.void, { worker: 0 })
      const ids = (yield* Metric.snapshot).map((snapshot) => snapshot.id)
      assert.notInclude(ids, "coroutine_pool_wait_seconds")
      assert.notInclude(ids, "coroutine_pool_hold_seconds")
      assert.deepStrictEqual(yield* of(CoroutinePool.metrics.released, { pool: "untimed" }), {
        count: 1,
        incremental: true
      })
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("each pool reports under its own name", () =>
    Effect.gen(function* () {
      const a = yield* CoroutinePool.make({ max: 1, name: "a" })
      const b = yield* CoroutinePool.make({ max: 3, name: "b" })
      yield* a.tryAcquire(1, { worker: 0 })
      yield* b.tryAcquire(1, { worker: 0 })
      yield* b.tryAcquire(1, { worker: 1 })
      assert.deepStrictEqual(
        [
          yield* of(CoroutinePool.metrics.active, { pool: "a" }),
          yield* of(CoroutinePool.metrics.active, { pool: "b" })
        ],
        [{ value: 1 }, { value: 2 }]
      )
      assert.deepStrictEqual(yield* of(CoroutinePool.metrics.max, { pool: "b" }), { value: 3 })
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})

describe("tracing", () => {
  // 0.4: one span name per call, whatever it waits: withPermit (and
  // withPermits), withPermitIfAvailable (and withPermitsIfAvailable),
  // acquire, tryAcquire.
  it.effect(
    "withPermit(s), withPermit(s)IfAvailable, acquire and tryAcquire run in a span with the pool, worker and outcome",
    () =>
      Effect.gen(function* () {
        const { summary, tracer } = RecordingTracer.make()
        const pool = yield* CoroutinePool.make({ max: 2, name: "traced" })
        const fiberId = yield* Effect.withFiber((fiber) => Effect.succeed(fiber.id))
        yield* Effect.gen(function* () {
          yield* pool.withPermit(Effect.void, { worker: "a" })
          yield* pool.tryAcquire(2, { worker: "holder" })
          yield* Effect.exit(pool.withPermit(Effect.void, { worker: "b" }))
          // None: not an error, so the span's outcome is ok.
          yield* pool.withPermitIfAvailable(Effect.void, { worker: "c" })
          yield* Effect.exit(pool.withPermits(3, { worker: "d" })(Effect.void))
          yield* Effect.exit(Effect.scoped(pool.acquire(1, { worker: "e" })))
          yield* pool.release(2, { worker: "holder" })
          yield* pool.withPermits(2, { worker: "f" })(Effect.void)
          yield* pool.withPermitsIfAvailable(2, { worker: "g" })(Effect.void)
          yield* Effect.scoped(pool.acquire(2, { worker: "h" }))
          yield* pool.withPermitIfAvailable(Effect.void)
          yield* Effect.exit(pool.withPermit(Effect.fail("boom"), { worker: "i" }))
        }).pipe(Effect.withTracer(tracer))
        const span = (name: string, worker: CoroutinePool.WorkerId, outcome: string, reason?: string) => ({
          name: `CoroutinePool.${name}`,
          attributes: {
            "coroutine_pool.name": "traced",
            "coroutine_pool.worker": worker,
            "coroutine_pool.outcome": outcome,
            ...(reason === undefined ? {} : { "coroutine_pool.reason": reason })
          },
          ended: true
        })
        assert.deepStrictEqual(summary(), [
          span("withPermit", "a", "ok"),
          span("tryAcquire", "holder", "ok"),
          span("withPermit", "b", "rejected", "full"),
          span("withPermitIfAvailable", "c", "ok"),
          // InvalidPermits
          span("withPermit", "d", "failed"),
          span("acquire", "e", "rejected", "full"),
          span("withPermit", "f", "ok"),
          span("withPermitIfAvailable", "g", "ok"),
          span("acquire", "h", "ok"),
          // No worker given: the calling fiber's id.
          span("withPermitIfAvailable", fiberId, "ok"),
          span("withPermit", "i", "failed")
        ])
      })
  )

  it.effect("no span when tracing is disabled", () =>
    Effect.gen(function* () {
      const { summary, tracer } = RecordingTracer.make()
      const pool = yield* CoroutinePool.make({ max: 1 })
      yield* pool
        .withPermit(Effect.void, { worker: "a" })
        .pipe(Effect.withTracerEnabled(false), Effect.withTracer(tracer))
      assert.deepStrictEqual(summary(), [])
    })
  )
})

describe("logs", () => {
  const capture = () => {
    const lines: Array<unknown> = []
    const logger = Logger.map(Logger.formatStructured, (entry) => {
      lines.push([entry.level, entry.message, entry.annotations])
    })
    return { lines, layer: Logger.layer([logger]) }
  }

  it.effect("transitions are logged at Debug with annotations when Debug is enabled", () =>
    Effect.gen(function* () {
      const { layer, lines } = capture()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const pool = yield* CoroutinePool.make({ max: 1, name: "logged" })
          yield* pool.withPermit(Effect.void, { worker: 0 })
          yield* pool.tryAcquire(1, { worker: 1 })
          yield* pool.tryAcquire(1, { worker: 2 })
        })
      ).pipe(Effect.provide(layer), Effect.provideService(References.MinimumLogLevel, "Debug"))
      const annotations = { pool: "logged", max: 1, waiting: 0 }
      assert.deepStrictEqual(lines, [
        ["DEBUG", "Worker 0: acquired (1/1 active)", { ...annotations, _tag: "Acquired", worker: 0, active: 1 }],
        ["DEBUG", "Worker 0: released (0/1 active)", { ...annotations, _tag: "Released", worker: 0, active: 0 }],
        ["DEBUG", "Worker 1: acquired (1/1 active)", { ...annotations, _tag: "Acquired", worker: 1, active: 1 }],
        ["DEBUG", "Worker 2: rejected (1/1 active)", { ...annotations, _tag: "Rejected", worker: 2, active: 1 }],
        // Closing returns the permit taken by hand.
        ["DEBUG", "Worker 1: released (0/1 active)", { ...annotations, _tag: "Released", worker: 1, active: 0 }]
      ])
    })
  )

  it.effect("nothing is logged at the default level", () =>
    Effect.gen(function* () {
      const { layer, lines } = capture()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const pool = yield* CoroutinePool.make({ max: 1 })
          yield* pool.withPermit(Effect.void, { worker: 0 })
        })
      ).pipe(Effect.provide(layer))
      assert.deepStrictEqual(lines, [])
    })
  )
})

describe("layerConfig", () => {
  const build = (env: Record<string, unknown>) =>
    Effect.flatMap(CoroutinePool.CoroutinePool, (pool) => pool.stats).pipe(
      Effect.provide(Layer.fresh(CoroutinePool.layerConfig())),
      Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
    )

  it.effect("reads POOL_MAX, POOL_MAX_WAITING and POOL_MAX_WAIT", () =>
    Effect.gen(function* () {
      const stats = yield* build({ POOL_MAX: "4", POOL_MAX_WAITING: "10", POOL_MAX_WAIT: "250 millis" })
      assert.deepStrictEqual([stats.max, stats.maxWaiting], [4, 10])
      const defaults = yield* build({ POOL_MAX: "2" })
      assert.deepStrictEqual([defaults.max, defaults.maxWaiting], [2, 0])
    })
  )

  it.effect("a bad value fails the layer with a config error naming the key", () =>
    Effect.gen(function* () {
      const bad: ReadonlyArray<[Record<string, unknown>, string]> = [
        [{}, "POOL_MAX"],
        [{ POOL_MAX: "four" }, "POOL_MAX"],
        [{ POOL_MAX: "0" }, "POOL_MAX"],
        [{ POOL_MAX: "2", POOL_MAX_WAITING: "-1" }, "POOL_MAX_WAITING"],
        [{ POOL_MAX: "2", POOL_MAX_WAIT: "soon" }, "POOL_MAX_WAIT"]
      ]
      for (const [env, key] of bad) {
        const error = yield* Effect.flip(build(env))
        assert.strictEqual(error._tag, "ConfigError", JSON.stringify(env))
        assert.include(error.message, `["${key}"]`, JSON.stringify(env))
      }
    })
  )
})
