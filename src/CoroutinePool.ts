/**
 * A bounded pool of permits for fibers, with tryAcquire-or-reject admission.
 *
 * A coroutine (a fiber) asks the pool for some of its `max` permits, in the
 * words of Effect's `Semaphore`: `withPermit`, `withPermits(n)`, and their
 * `IfAvailable` variants that never wait. It is admitted at once, or waits
 * its turn in a bounded FIFO queue if the pool allows it, or is turned away;
 * it does its work and the permits come back. Every transition is published,
 * in order, on {@link CoroutinePool.events}.
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
 * `withPermit`, `withPermits` or `acquire` could not get its permits.
 *
 * **Details**
 *
 * `reason` says why: `"full"` (not enough permits were free and the pool lets
 * nobody wait: `maxWaiting` 0), `"queue-full"` (and `maxWaiting` callers were
 * already queued),
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
 * const results = pool.withPermit(search).pipe(
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
 * `tryAcquire` (or holds fewer than it gives back); nothing changed. Permits
 * of `withPermit` and `acquire` come back by themselves, so a stray `release`
 * can neither drive the count negative nor steal a running holder's permit.
 *
 * **Example** (Releasing twice)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.make({ max: 1 })
 *   yield* pool.tryAcquire(1, { worker: "job" })
 *   yield* pool.release(1, { worker: "job" })
 *   return yield* Effect.flip(pool.release(1, { worker: "job" })) // PermitNotHeld { worker: "job" }
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
 * A call asked for a count of permits that is not a positive safe integer,
 * or more than the pool's `max` (they could never be given; a queued caller
 * asking more than a shrunk `max` is turned away with it too). `permits`
 * carries the count, `max` the pool's. Nothing was changed.
 *
 * **Example** (Asking for more than there is)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.make({ max: 2 })
 *   return yield* Effect.flip(pool.withPermits(3)(Effect.void))
 * })) // InvalidPermits: "Asked for 3 permits: a pool of 2 can never give them"
 * ```
 *
 * @since 0.4.0
 * @category errors
 */
export const InvalidPermits: typeof Errors.InvalidPermits = Errors.InvalidPermits

/**
 * @since 0.4.0
 * @category errors
 */
export interface InvalidPermits extends Errors.InvalidPermits {}

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
 * A bounded pool of permits, in the words of Effect's `Semaphore`. `E` is
 * what its operations may fail with besides rejections (`never` here; a
 * shared pool's store errors), `Event` what it publishes.
 *
 * **Details**
 *
 * A call that finds too few permits free queues if the pool lets callers
 * wait (`maxWaiting`, for up to `maxWait`; strict FIFO, a large request at
 * the head is not overtaken) and is otherwise turned away with
 * `PoolRejected`; the `IfAvailable` variants never wait and answer `None`
 * instead (the rejection is still published and counted). Every call may
 * name its worker (`{ worker }`, default the fiber's id), carried by its
 * events and errors.
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
 * const soon = pool.withPermit(render) // waits if the pool allows, else PoolRejected
 * const now = pool.withPermitIfAvailable(render) // Option<string>: None when turned away
 * const heavy = pool.withPermits(3, { worker: "export" })(render)
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
   * Runs an effect holding a permit: admitted now, or queued as the pool
   * allows, else `PoolRejected`. The permit comes back however it ends.
   */
  readonly withPermit: <A, E1, R>(
    self: Effect.Effect<A, E1, R>,
    options?: PermitOptions
  ) => Effect.Effect<A, E1 | PoolRejected | E, R>
  /** Like `withPermit`, holding `permits` permits (`InvalidPermits` above `max`). */
  readonly withPermits: (
    permits: number,
    options?: PermitOptions
  ) => <A, E1, R>(self: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1 | PoolRejected | InvalidPermits | E, R>
  /** Runs an effect holding a permit if one is free now: `Some` of its value, or `None` without running it. */
  readonly withPermitIfAvailable: <A, E1, R>(
    self: Effect.Effect<A, E1, R>,
    options?: PermitOptions
  ) => Effect.Effect<Option.Option<A>, E1 | E, R>
  /** Like `withPermitIfAvailable`, holding `permits` permits. */
  readonly withPermitsIfAvailable: (
    permits: number,
    options?: PermitOptions
  ) => <A, E1, R>(self: Effect.Effect<A, E1, R>) => Effect.Effect<Option.Option<A>, E1 | InvalidPermits | E, R>
  /**
   * Takes permits (default 1) if they are free now, never waiting: `true`
   * means the worker owns them until it calls `release`. While callers are
   * queued, or once the pool is closed, it answers `false`.
   */
  readonly tryAcquire: (permits?: number, options?: PermitOptions) => Effect.Effect<boolean, InvalidPermits | E>
  /**
   * Returns permits (default 1) that `tryAcquire` gave the worker, oldest
   * first; `PermitNotHeld`, changing nothing, if it holds fewer.
   */
  readonly release: (
    permits?: number,
    options?: PermitOptions
  ) => Effect.Effect<void, PermitNotHeld | InvalidPermits | E>
  /** Takes permits (default 1), waiting like `withPermit`, and holds them until the current scope closes. */
  readonly acquire: (
    permits?: number,
    options?: PermitOptions
  ) => Effect.Effect<void, PoolRejected | InvalidPermits | E, Scope.Scope>
  /**
   * Changes the number of permits. Growing admits queued callers at once;
   * shrinking takes no permit back (queued callers asking for more than the
   * new `max` are turned away with `InvalidPermits`). `InvalidPoolSize`,
   * changing nothing, unless `max` is a positive safe integer; a closed pool
   * keeps its size.
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
 * What any call may say besides its permits: the `worker` label its events
 * and errors carry (a number or a string; default, the calling fiber's id).
 *
 * @since 0.4.0
 * @category models
 */
export interface PermitOptions {
  readonly worker?: WorkerId | undefined
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
  /** How many callers of `withPermit(s)` and `acquire` may queue. Default 0: nobody waits. */
  readonly maxWaiting?: number | undefined
  /** How long a queued caller waits before it fails with `"timeout"`. Default: no limit. */
  readonly maxWait?: Duration.Input | undefined
  /**
   * Whether to record the wait and hold histograms. Default `true`. An
   * admission without a wait records 0 ms and reads no clock; a queued
   * caller's wait and hold are measured on the pool's `Clock`.
   */
  readonly timing?: boolean | undefined
  /**
   * How many holds of callers admitted without a wait share one measured
   * hold time, on average: from 1 (every hold measured: two clock reads) to
   * 1024. Default 16. Every hold is counted; one not measured is recorded as
   * the last one measured, so the hold histogram's count is exact and its
   * buckets and sum are estimated. The holds measured are picked at random
   * intervals, so no periodic workload is seen through one phase of it.
   */
  readonly holdSampling?: number | undefined
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
 * default `maxWaiting: 0` the excess is turned away at once (the tutorial's
 * tryAcquire-or-reject); give `maxWaiting` (and `maxWait`) to let callers
 * queue.
 *
 * **Details**
 *
 * Fails with `InvalidPoolSize` unless `max` is a positive safe integer, and
 * with `InvalidPoolOption` for any other bad option. The queue is strict
 * FIFO without barging: while anyone waits, a call that may not wait is
 * turned away even at the instant a permit is released. Closing the scope
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
 *   const first = yield* pool.tryAcquire() // true
 *   const second = yield* pool.tryAcquire() // true
 *   const third = yield* pool.tryAcquire() // false: 2/2 active
 *   yield* pool.release(2)
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
      acquire: (permits, options) => Effect.asVoid(api.acquire(permits, options)),
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
  name: Config.schema(Schema.String.check(Schema.isNonEmpty()), "POOL_NAME").pipe(Config.withDefault("default")),
  holdSampling: Config.schema(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1024 })),
    "POOL_HOLD_SAMPLING"
  ).pipe(Config.withDefault(16))
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

const isPool = (u: unknown): u is CoroutinePool<unknown, unknown> => typeof u === "object" && u !== null && TypeId in u

/**
 * Runs an effect holding a permit of `pool`, waiting as the pool allows;
 * see {@link CoroutinePool.withPermit}. Data-first or data-last.
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
 * const guarded = fetchReport.pipe(CoroutinePool.withPermit(pool, { worker: "report" }))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPermit: {
  <P>(
    pool: CoroutinePool<P, unknown>,
    options?: PermitOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PoolRejected | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    options?: PermitOptions
  ): Effect.Effect<A, E | PoolRejected | P, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R, P>(self: Effect.Effect<A, E, R>, pool: CoroutinePool<P, unknown>, options?: PermitOptions) =>
    pool.withPermit(self, options)
)

/**
 * Runs an effect holding `permits` permits of `pool`; see
 * {@link CoroutinePool.withPermits}. Data-first or data-last.
 *
 * @since 0.4.0
 * @category combinators
 */
export const withPermits: {
  <P>(
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PoolRejected | InvalidPermits | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ): Effect.Effect<A, E | PoolRejected | InvalidPermits | P, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ) => pool.withPermits(permits, options)(self)
)

/**
 * Runs an effect holding a permit of `pool` if one is free now, answering
 * `Option`; see {@link CoroutinePool.withPermitIfAvailable}.
 *
 * @since 0.4.0
 * @category combinators
 */
export const withPermitIfAvailable: {
  <P>(
    pool: CoroutinePool<P, unknown>,
    options?: PermitOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<Option.Option<A>, E | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    options?: PermitOptions
  ): Effect.Effect<Option.Option<A>, E | P, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R, P>(self: Effect.Effect<A, E, R>, pool: CoroutinePool<P, unknown>, options?: PermitOptions) =>
    pool.withPermitIfAvailable(self, options)
)

/**
 * Runs an effect holding `permits` permits of `pool` if they are free now;
 * see {@link CoroutinePool.withPermitsIfAvailable}.
 *
 * @since 0.4.0
 * @category combinators
 */
export const withPermitsIfAvailable: {
  <P>(
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<Option.Option<A>, E | InvalidPermits | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ): Effect.Effect<Option.Option<A>, E | InvalidPermits | P, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ) => pool.withPermitsIfAvailable(permits, options)(self)
)

/**
 * Takes permits for the rest of the current scope; see {@link CoroutinePool.acquire}.
 *
 * **Example** (Permits for a scope)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool
 * declare const exportRows: Effect.Effect<number>
 *
 * const program = Effect.scoped(Effect.andThen(CoroutinePool.acquire(pool, 2), exportRows))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const acquire: {
  (
    permits?: number,
    options?: PermitOptions
  ): <P>(pool: CoroutinePool<P, unknown>) => Effect.Effect<void, PoolRejected | InvalidPermits | P, Scope.Scope>
  <P>(
    pool: CoroutinePool<P, unknown>,
    permits?: number,
    options?: PermitOptions
  ): Effect.Effect<void, PoolRejected | InvalidPermits | P, Scope.Scope>
} = dual(
  (args) => isPool(args[0]),
  <P>(pool: CoroutinePool<P, unknown>, permits?: number, options?: PermitOptions) => pool.acquire(permits, options)
)

/**
 * Takes permits if they are free now; see {@link CoroutinePool.tryAcquire}.
 *
 * @since 0.1.0
 * @category combinators
 */
export const tryAcquire: {
  (
    permits?: number,
    options?: PermitOptions
  ): <P>(pool: CoroutinePool<P, unknown>) => Effect.Effect<boolean, InvalidPermits | P>
  <P>(
    pool: CoroutinePool<P, unknown>,
    permits?: number,
    options?: PermitOptions
  ): Effect.Effect<boolean, InvalidPermits | P>
} = dual(
  (args) => isPool(args[0]),
  <P>(pool: CoroutinePool<P, unknown>, permits?: number, options?: PermitOptions) => pool.tryAcquire(permits, options)
)

/**
 * Returns permits taken with `tryAcquire`; see {@link CoroutinePool.release}.
 *
 * @since 0.1.0
 * @category combinators
 */
export const release: {
  (
    permits?: number,
    options?: PermitOptions
  ): <P>(pool: CoroutinePool<P, unknown>) => Effect.Effect<void, PermitNotHeld | InvalidPermits | P>
  <P>(
    pool: CoroutinePool<P, unknown>,
    permits?: number,
    options?: PermitOptions
  ): Effect.Effect<void, PermitNotHeld | InvalidPermits | P>
} = dual(
  (args) => isPool(args[0]),
  <P>(pool: CoroutinePool<P, unknown>, permits?: number, options?: PermitOptions) => pool.release(permits, options)
)
