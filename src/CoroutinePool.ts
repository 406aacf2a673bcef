/**
 * A bounded pool of permits for fibers, with tryAcquire-or-reject admission.
 *
 * A coroutine (a fiber) asks the pool for one of `max` permits. It is admitted
 * or rejected at once, or, if the pool allows it, waits its turn in a bounded
 * FIFO queue; it does its work and returns the permit. Every transition is
 * published, in order, on {@link CoroutinePool.events}.
 *
 * @since 0.1.0
 */

import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as Errors from "./internal/errors.ts"
import * as Metrics from "./internal/metrics.ts"
import * as Decode from "./internal/options.ts"
import * as Pool from "./internal/pool.ts"
import type { PoolEvent, WorkerId } from "./PoolEvent.ts"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: TypeId = "~coroutine-pool/CoroutinePool"

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = "~coroutine-pool/CoroutinePool"

// ---------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------

export * from "./PoolEvent.ts"

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/**
 * `withPermit`, `withPermitWaiting` or `acquire` could not get a permit.
 *
 * **Details**
 *
 * `reason` says why: `"full"` (every permit was taken and the call could not
 * wait), `"queue-full"` (and `maxWaiting` callers were already queued),
 * `"timeout"` (it waited `maxWait`), `"closed"` (the pool's scope had closed,
 * before the call or while it waited), or, for a shared pool, `"warming"`
 * (its store refuses grants for one lease TTL after losing its data).
 * `active` and `max` are the figures at the decision; `retryAfter`, when the
 * pool knows it, the millis until a permit is expected to come free.
 *
 * **Example** (Shedding load with a fallback)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool
 * declare const search: Effect.Effect<ReadonlyArray<string>>
 *
 * const results = pool.withPermitWaiting("search")(search).pipe(
 *   Effect.catchTag("PoolRejected", (rejected) =>
 *     rejected.reason === "closed" ? Effect.fail(rejected) : Effect.succeed([])
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export const PoolRejected: typeof Errors.PoolRejected = Errors.PoolRejected

/**
 * @since 0.1.0
 * @category errors
 */
export interface PoolRejected extends Errors.PoolRejected {}

/**
 * `release` was called for a worker that holds no permit taken with
 * `tryAcquire`; nothing changed. Permits of `withPermit` and `acquire` come
 * back by themselves, so a stray `release` can neither drive the count
 * negative nor steal a running holder's permit.
 *
 * **Example** (Releasing twice)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.make({ max: 1 })
 *   yield* pool.tryAcquire("job")
 *   yield* pool.release("job")
 *   return yield* Effect.flip(pool.release("job")) // PermitNotHeld { worker: "job" }
 * }))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export const PermitNotHeld: typeof Errors.PermitNotHeld = Errors.PermitNotHeld

/**
 * @since 0.1.0
 * @category errors
 */
export interface PermitNotHeld extends Errors.PermitNotHeld {}

/**
 * `make` or `resize` was given a `max` that is not a positive safe integer;
 * `max` carries it as given. Nothing was changed.
 *
 * **Example** (A size read from user input)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = CoroutinePool.make({ max: 0 }).pipe(
 *   Effect.catchTag("InvalidPoolSize", (error) => Effect.die(error.message)),
 *   Effect.scoped
 * ) // dies with "Invalid pool size: max must be a positive safe integer, got 0"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export const InvalidPoolSize: typeof Errors.InvalidPoolSize = Errors.InvalidPoolSize

/**
 * @since 0.1.0
 * @category errors
 */
export interface InvalidPoolSize extends Errors.InvalidPoolSize {}

/**
 * A pool was made with a bad option: `option` names it, `value` carries it as
 * given and `expected` says what would do. Nothing was built.
 *
 * **Example** (Reporting a bad option)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = CoroutinePool.make({ max: 2, maxWaiting: -1 }).pipe(
 *   Effect.catchTag("InvalidPoolOption", (error) => Effect.succeed(error.message)),
 *   Effect.scoped
 * ) // "Invalid maxWaiting: expected a safe integer of zero or more, got -1"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export const InvalidPoolOption: typeof Errors.InvalidPoolOption = Errors.InvalidPoolOption

/**
 * @since 0.1.0
 * @category errors
 */
export interface InvalidPoolOption extends Errors.InvalidPoolOption {}

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * A bounded pool of permits: tryAcquire-or-reject admission, with an optional
 * bounded FIFO queue. `E` is what its operations may fail with besides
 * rejections (`never` here; a shared pool's store errors), `Event` what it
 * publishes.
 *
 * **Example** (Guarding work)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool
 * declare const render: Effect.Effect<string>
 *
 * const now = pool.withPermit("render")(render) // or PoolRejected "full"
 * const soon = pool.withPermitWaiting("render")(render) // queues when allowed
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CoroutinePool<out E = never, out Event = PoolEvent> {
  readonly [TypeId]: TypeId
  /** The number of permits in force (it changes with `resize`). */
  readonly max: Effect.Effect<number>
  /** The number of permits taken right now. */
  readonly active: Effect.Effect<number>
  /** The pool's figures and totals, read in one step. */
  readonly stats: Effect.Effect<PoolStats>
  /**
   * Takes a permit if one is free, never waiting: `true` means the caller
   * owns it until it calls `release` with the same worker. Publishes
   * `Acquired` or `Rejected`. While callers are queued, or once the pool is
   * closed, it answers `false`.
   */
  readonly tryAcquire: (worker: WorkerId) => Effect.Effect<boolean, E>
  /** Returns a permit `tryAcquire` gave `worker`; `PermitNotHeld`, changing nothing, if it holds none. */
  readonly release: (worker: WorkerId) => Effect.Effect<void, PermitNotHeld | E>
  /**
   * Runs an effect holding a permit, or fails at once with `PoolRejected`
   * without running it. The permit comes back however the effect ends.
   */
  readonly withPermit: (
    worker: WorkerId
  ) => <A, E1, R>(self: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1 | PoolRejected | E, R>
  /**
   * Like `withPermit`, but when every permit is taken the caller queues (up
   * to `maxWaiting` callers, strict FIFO, for up to `maxWait`).
   */
  readonly withPermitWaiting: (
    worker: WorkerId
  ) => <A, E1, R>(self: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1 | PoolRejected | E, R>
  /** Takes a permit, waiting like `withPermitWaiting`, and holds it until the current scope closes. */
  readonly acquire: (worker: WorkerId) => Effect.Effect<void, PoolRejected | E, Scope.Scope>
  /**
   * Changes the number of permits. Growing admits queued callers at once;
   * shrinking takes no permit back. `InvalidPoolSize`, changing nothing,
   * unless `max` is a positive safe integer; a closed pool keeps its size.
   */
  readonly resize: (max: number) => Effect.Effect<void, InvalidPoolSize | E>
  /**
   * Every transition from the moment the stream starts running, in order;
   * ends when the pool closes. A consumer forked with `{ startImmediately:
   * true }` is subscribed before the fork returns.
   */
  readonly events: Stream.Stream<Event>
  /**
   * Subscribes now and returns the stream of every later transition. A
   * subscriber that falls 4,096 events behind loses the oldest ones (counted
   * in `stats.dropped`), so one that stalls cannot hold memory without bound.
   */
  readonly subscribe: Effect.Effect<Stream.Stream<Event>, never, Scope.Scope>
}

/**
 * A pool's figures at one moment and its totals since it was made: each total
 * counts the events of its kind, so stats and the event stream agree.
 *
 * @since 0.1.0
 * @category models
 */
export interface PoolStats {
  /** Permits taken right now (may exceed `max` for a while after a shrink). */
  readonly active: number
  /** Callers queued right now. */
  readonly waiting: number
  /** Permits in force. */
  readonly max: number
  /** The queue bound. */
  readonly maxWaiting: number
  /** `Acquired` events so far. */
  readonly acquired: number
  /** `Rejected` events so far: callers turned away at once. */
  readonly rejected: number
  /** `Released` events so far. */
  readonly released: number
  /** `Queued` events so far. */
  readonly queued: number
  /** `TimedOut` events so far. */
  readonly timedOut: number
  /** `Abandoned` events so far. */
  readonly abandoned: number
  /** Events a subscriber that fell 4,096 behind never saw. */
  readonly dropped: number
}

/**
 * The pool as a service, so a program can share one ({@link layer}).
 *
 * **Example** (Using the pool from the context)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const handler = Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.CoroutinePool
 *   return yield* pool.withPermit("report")(Effect.succeed("done"))
 * })
 *
 * const program = handler.pipe(Effect.provide(CoroutinePool.layer({ max: 8 })))
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export const CoroutinePool: Context.Service<CoroutinePool, CoroutinePool> = Context.Service<CoroutinePool>(TypeId)

/**
 * What {@link make} and {@link layer} take. Only `max` is required.
 *
 * **Example** (A bulkhead with a bounded queue)
 *
 * ```ts
 * import type { CoroutinePool } from "coroutine-pool"
 *
 * const options: CoroutinePool.Options = {
 *   max: 10, // calls at once
 *   maxWaiting: 100, // callers that may queue
 *   maxWait: "2 seconds", // how long each may wait
 *   name: "payments" // in metrics, spans and logs
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The number of permits: a positive safe integer. */
  readonly max: number
  /** How many callers of `withPermitWaiting` and `acquire` may queue. Default 0: nobody waits. */
  readonly maxWaiting?: number | undefined
  /** How long a queued caller waits before it fails with `"timeout"`. Default: no limit. */
  readonly maxWait?: Duration.Input | undefined
  /**
   * Whether to record the wait and hold histograms. Default `true`: each
   * permit then reads the clock twice. Turn it off on the hottest paths.
   */
  readonly timing?: boolean | undefined
  /** The pool's name in metrics (the `pool` attribute), spans and logs. Default `"default"`. */
  readonly name?: string | undefined
}

/**
 * The metrics every pool publishes, each series with a `pool` attribute set to
 * the pool's `name`, read from the pool when scraped (free on its paths).
 *
 * **Details**
 *
 * Gauges `active`, `waiting`, `max`; counters `acquired`, `rejected` (by
 * `reason`), `released`, `abandoned`, `dropped` (events a slow subscriber
 * lost); histograms (seconds, on the pool's `Clock`) of `wait` and `hold`.
 * Registered in the `Metric.MetricRegistry` of the context the pool is made
 * in, removed when it closes.
 *
 * **Example** (Reading a pool's metrics)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.make({ max: 2, name: "payments" })
 *   yield* pool.withPermit("charge")(Effect.void)
 *   const acquired = CoroutinePool.metrics.acquired.pipe(Metric.withAttributes({ pool: "payments" }))
 *   return yield* Metric.value(acquired) // { count: 1, incremental: true }
 * }))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics: typeof Metrics.metrics = Metrics.metrics

// ---------------------------------------------------------------------------
// constructors
// ---------------------------------------------------------------------------

/**
 * Creates a pool of `max` permits that lives as long as the current scope.
 *
 * **When to use**
 *
 * To bound how many fibers do some work at once: load shedding, a bulkhead
 * around a fragile dependency, admission control for an endpoint. With the
 * default `maxWaiting: 0` the excess is turned away at once; give
 * `maxWaiting` (and `maxWait`) to let callers queue.
 *
 * **Details**
 *
 * Fails with `InvalidPoolSize` unless `max` is a positive safe integer, and
 * with `InvalidPoolOption` for any other bad option. The queue is strict
 * FIFO without barging: while anyone waits, `tryAcquire` and `withPermit`
 * are rejected even at the instant a permit is released. Closing the scope
 * turns the queue away (reason `"closed"`), interrupts the fibers working
 * under permits and waits for their releases, returns the permits held
 * through `tryAcquire` and `acquire`, and then ends the event streams.
 *
 * **Example** (Admitting or rejecting work)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.make({ max: 2 })
 *   const first = yield* pool.tryAcquire(0) // true
 *   const second = yield* pool.tryAcquire(1) // true
 *   const third = yield* pool.tryAcquire(2) // false: 2/2 active
 *   yield* pool.release(0)
 *   yield* pool.release(1)
 *   return [first, second, third]
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<CoroutinePool, InvalidPoolSize | InvalidPoolOption, Scope.Scope> =>
  Effect.flatMap(Decode.decodePool(options, "default"), (decoded) =>
    Effect.map(Pool.make(decoded, Pool.localCount, Pool.local), ({ api, engine, ledger }) => ({
      [TypeId]: TypeId,
      ...api,
      acquire: (worker: WorkerId) => Effect.asVoid(api.acquire(worker)),
      stats: Effect.sync(() => Pool.stats(engine, ledger))
    }))
  )

/**
 * A layer that provides one pool to a whole program; the pool closes when the
 * layer is released.
 *
 * **Example** (Providing a pool)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.CoroutinePool
 *   return yield* pool.max // 4
 * }).pipe(Effect.provide(CoroutinePool.layer({ max: 4 })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<CoroutinePool, InvalidPoolSize | InvalidPoolOption> =>
  Layer.effect(CoroutinePool, make(options))

const QueueSize = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * The pool's options read from configuration: `POOL_MAX` (required),
 * `POOL_MAX_WAITING` (default 0), `POOL_MAX_WAIT` (a duration such as
 * `"2 seconds"`, default no limit) and `POOL_NAME` (default `"default"`).
 *
 * **Example** (A second pool under a prefix)
 *
 * ```ts
 * import { Config } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * // PAYMENTS_POOL_MAX, PAYMENTS_POOL_MAX_WAITING, ... (with the environment provider)
 * const payments = CoroutinePool.layerConfig(Config.nested(CoroutinePool.config, "PAYMENTS"))
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  max: Config.schema(Schema.Int.check(Schema.isGreaterThan(0)), "POOL_MAX"),
  maxWaiting: Config.schema(QueueSize, "POOL_MAX_WAITING").pipe(Config.withDefault(0)),
  maxWait: Config.option(Config.Duration("POOL_MAX_WAIT")).pipe(Config.map(Option.getOrUndefined)),
  name: Config.schema(Schema.String.check(Schema.isNonEmpty()), "POOL_NAME").pipe(Config.withDefault("default"))
})

/**
 * A layer that builds the pool from configuration, {@link config} by default.
 * A missing or bad value fails with a `ConfigError` naming the key.
 *
 * **Example** (Sizing the pool from the environment)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * // POOL_MAX=8 POOL_MAX_WAITING=100 POOL_MAX_WAIT="2 seconds"
 * const program = Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.CoroutinePool
 *   return yield* pool.stats
 * }).pipe(Effect.provide(CoroutinePool.layerConfig()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Wrap<Options> = config
): Layer.Layer<CoroutinePool, Config.ConfigError | InvalidPoolSize | InvalidPoolOption> =>
  Layer.effect(CoroutinePool, Effect.flatMap(Config.unwrap(options), make))

// ---------------------------------------------------------------------------
// combinators
// ---------------------------------------------------------------------------

/**
 * Runs an effect holding a permit, failing with `PoolRejected` without running
 * it when none is free; see {@link CoroutinePool.withPermit}. Data-first or
 * data-last.
 *
 * **Example** (Guarding a call in a pipe)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool
 * declare const fetchReport: Effect.Effect<string>
 *
 * const guarded = fetchReport.pipe(CoroutinePool.withPermit(pool, "report"))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPermit: {
  <P>(
    pool: CoroutinePool<P, unknown>,
    worker: WorkerId
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PoolRejected | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    worker: WorkerId
  ): Effect.Effect<A, E | PoolRejected | P, R>
} = dual(3, <A, E, R, P>(self: Effect.Effect<A, E, R>, pool: CoroutinePool<P, unknown>, worker: WorkerId) =>
  pool.withPermit(worker)(self)
)

/**
 * Runs an effect holding a permit, queueing for it when the pool allows; see
 * {@link CoroutinePool.withPermitWaiting}. Data-first or data-last.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPermitWaiting: {
  <P>(
    pool: CoroutinePool<P, unknown>,
    worker: WorkerId
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PoolRejected | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    worker: WorkerId
  ): Effect.Effect<A, E | PoolRejected | P, R>
} = dual(3, <A, E, R, P>(self: Effect.Effect<A, E, R>, pool: CoroutinePool<P, unknown>, worker: WorkerId) =>
  pool.withPermitWaiting(worker)(self)
)

/**
 * Takes a permit for the rest of the current scope; see {@link CoroutinePool.acquire}.
 *
 * @since 0.1.0
 * @category combinators
 */
export const acquire: {
  (worker: WorkerId): <P>(pool: CoroutinePool<P, unknown>) => Effect.Effect<void, PoolRejected | P, Scope.Scope>
  <P>(pool: CoroutinePool<P, unknown>, worker: WorkerId): Effect.Effect<void, PoolRejected | P, Scope.Scope>
} = dual(2, <P>(pool: CoroutinePool<P, unknown>, worker: WorkerId) => pool.acquire(worker))

/**
 * Takes a permit if one is free; see {@link CoroutinePool.tryAcquire}.
 *
 * @since 0.1.0
 * @category combinators
 */
export const tryAcquire: {
  (worker: WorkerId): <P>(pool: CoroutinePool<P, unknown>) => Effect.Effect<boolean, P>
  <P>(pool: CoroutinePool<P, unknown>, worker: WorkerId): Effect.Effect<boolean, P>
} = dual(2, <P>(pool: CoroutinePool<P, unknown>, worker: WorkerId) => pool.tryAcquire(worker))

/**
 * Returns a permit taken with `tryAcquire`; see {@link CoroutinePool.release}.
 *
 * @since 0.1.0
 * @category combinators
 */
export const release: {
  (worker: WorkerId): <P>(pool: CoroutinePool<P, unknown>) => Effect.Effect<void, PermitNotHeld | P>
  <P>(pool: CoroutinePool<P, unknown>, worker: WorkerId): Effect.Effect<void, PermitNotHeld | P>
} = dual(2, <P>(pool: CoroutinePool<P, unknown>, worker: WorkerId) => pool.release(worker))
