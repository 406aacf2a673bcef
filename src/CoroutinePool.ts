/**
 * A bounded pool of permits for fibers. A fiber asks for some of the pool's
 * `max` permits, in the words of Effect's `Semaphore`: `withPermit`,
 * `withPermits(n)`, and their `IfAvailable` variants that never wait. It is
 * admitted at once, or waits its turn in a bounded FIFO queue if the pool
 * allows it, or is turned away; it does its work and the permits come back,
 * however the work ends. Every transition is published, in order, on
 * {@link CoroutinePool.events}, and counted.
 *
 * @since 0.1.0
 */

import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Combinators from "./internal/combinators.ts"
import * as Errors from "./internal/errors.ts"
import * as Metrics from "./internal/metrics.ts"
import * as Decode from "./internal/options.ts"
import * as Pool from "./internal/pool.ts"
import type { PoolEvent } from "./PoolEvent.ts"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: TypeId = Combinators.TypeId

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = "~coroutine-pool/CoroutinePool"

// --- events -----------------------------------------------------------------

export * from "./PoolEvent.ts"

// --- errors -----------------------------------------------------------------

/**
 * `withPermit`, `withPermits` or `acquire` could not get its permits (the
 * `IfAvailable` calls answer `None` instead). `reason` says why: `"full"` (too
 * few permits were free and the pool lets nobody wait: `maxWaiting` 0),
 * `"queue-full"` (and `maxWaiting` callers were already queued), `"timeout"`
 * (it waited `maxWait`), `"closed"` (the pool had closed, before the call or
 * while it waited), or, for a shared pool, `"warming"` (its store refuses
 * grants for one lease TTL after losing its data). `active` and `max` are the
 * figures at the decision; `retryAfter`, when known, the millis until a
 * permit is expected to come free.
 *
 * A rejection is the answer a loaded pool gives most, so it is built without
 * running the class's constructor: an instance with its fields (`instanceof`,
 * `_tag` and `message` work) whose `stack` is its one-line message.
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
 * `release` asked to give back more permits than the worker holds from
 * `tryAcquire` (a second `release`, or another worker's label): nothing
 * changed. Permits of `withPermit` and `acquire` come back by themselves, so
 * a stray `release` can neither drive the count negative nor steal a running
 * holder's permit. Message: `Worker job holds no permit to release`.
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
 * `max` carries it as given. Nothing was changed. Message: `Invalid pool
 * size: max must be a positive safe integer, got 0`.
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
 * or more than the pool's `max`: they could never be given, so the call
 * fails rather than waits forever (a queued caller asking more than a shrunk
 * `max` is turned away with it too). `release` checks only that the count is
 * a positive safe integer. `permits` carries the count, `max` the pool's.
 * Nothing was changed. Message: `Asked for 3 permits: a pool of 2 can never
 * give them`.
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
 * given and `expected` says what would do. Nothing was built. Message:
 * `Invalid maxWaiting: expected a safe integer of zero or more, got -1`.
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

// --- models -----------------------------------------------------------------

/**
 * A bounded pool of permits, in the words of Effect's `Semaphore`. `E` is
 * what its calls may fail with besides rejections (`never` here; a shared
 * pool's store errors), `Event` what it publishes.
 *
 * A call that finds too few permits free queues if the pool lets callers
 * wait (up to `maxWaiting` of them, each for up to `maxWait`) and is
 * otherwise turned away with `PoolRejected`. The queue is strict FIFO: a
 * freed permit goes to its head in the same step, a large request at the head
 * is not overtaken by smaller ones, and while anyone waits a call that may
 * not wait is turned away. The `IfAvailable` calls never wait and answer
 * `None` instead. Every call may name its worker (`{ worker }`, default the
 * calling fiber's id), carried by its events and errors.
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
export interface CoroutinePool<out E = never, out Event = PoolEvent> extends Pool.Api<E, Event> {
  readonly [TypeId]: TypeId
  /** The pool's figures and totals, read in one step. */
  readonly stats: Effect.Effect<PoolStats>
  /**
   * Takes permits (default 1), waiting like `withPermit`, and holds them
   * until the current scope closes: for work that is not one effect, such as
   * a response streamed after its handler returned.
   */
  readonly acquire: (
    permits?: number,
    options?: PermitOptions
  ) => Effect.Effect<void, PoolRejected | InvalidPermits | E, Scope.Scope>
}

/**
 * What any call may say besides its permits: the `worker` label its events
 * and errors carry (a number or a string, need not be unique; default, the
 * calling fiber's id).
 *
 * @since 0.4.0
 * @category models
 */
export interface PermitOptions extends Pool.PermitOptions {}

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
  /** `Acquired` events so far: one per admitted call, whatever its count of permits. */
  readonly acquired: number
  /** `Rejected` events so far: callers turned away at once while the pool was open. */
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
 * The pool as a service, shared by a program ({@link layer}); two pools need two services ({@link config}).
 *
 * **Example** (Using the pool from the context)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const handler = Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.CoroutinePool
 *   return yield* pool.withPermit(Effect.succeed("done"), { worker: "report" })
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
 * What {@link make} and {@link layer} take. Only `max` is required: `{ max:
 * 10, maxWaiting: 100, maxWait: "2 seconds", name: "payments" }` is a
 * bulkhead of 10 calls at once where 100 more may wait up to 2 seconds each.
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
  /** Whether to record the wait and hold histograms (see {@link metrics}). Default `true`. */
  readonly timing?: boolean | undefined
  /**
   * How many holds of callers admitted without a wait share one measured
   * hold time, on average: from 1 (every hold measured: two clock reads) to
   * 1024. Default 16. Every hold is counted; those not measured are spread
   * over the buckets as the measured ones are, so the hold histogram's count
   * is exact and its buckets and sum are estimated. The holds measured are
   * picked at random intervals, so no periodic workload is seen through one
   * phase of it.
   */
  readonly holdSampling?: number | undefined
  /** The pool's name in metrics (the `pool` attribute), spans and logs. Default `"default"`. */
  readonly name?: string | undefined
}

/**
 * The metrics every pool publishes, each series with a `pool` attribute set to
 * the pool's `name`, read from the pool when scraped (free on its paths).
 *
 * Gauges `active`, `waiting`, `max`; counters `acquired`, `rejected` (by
 * `reason`), `released`, `abandoned`, `dropped` (events a slow subscriber
 * lost); histograms (seconds, on the pool's `Clock`) of `wait` and `hold`.
 * An admission without a wait records a 0 ms wait without reading the
 * clock, and its hold is measured one time in `holdSampling` (see
 * {@link Options}): the `hold` count is exact, its buckets and sum are
 * estimates; queued callers' waits and holds are always measured. Registered
 * in the `Metric.MetricRegistry` of the context the pool is made in.
 *
 * **Example** (Reading a pool's metrics)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.make({ max: 2, name: "payments" })
 *   yield* pool.withPermit(Effect.void, { worker: "charge" })
 *   const acquired = CoroutinePool.metrics.acquired.pipe(Metric.withAttributes({ pool: "payments" }))
 *   return yield* Metric.value(acquired) // { count: 1, incremental: true }
 * }))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics: typeof Metrics.metrics = Metrics.metrics

// --- constructors -----------------------------------------------------------

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
 * with `InvalidPoolOption` for any other bad option. Closing the scope turns
 * the queue away (reason `"closed"`), interrupts the fibers working under
 * permits and waits for their releases, returns the permits held through
 * `tryAcquire` and `acquire`, and then ends the event streams.
 *
 * **Example** (Admitting or rejecting work)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.make({ max: 2 })
 *   const taken = [yield* pool.tryAcquire(), yield* pool.tryAcquire(), yield* pool.tryAcquire()] // true, true, false
 *   yield* pool.release(2)
 *   return taken
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
 * A layer that provides one pool to a whole program (see the example of
 * the {@link CoroutinePool} service); the pool closes when the layer is
 * released.
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
 * `"2 seconds"`, default no limit), `POOL_NAME` (default `"default"`) and
 * `POOL_HOLD_SAMPLING` (1 to 1024, default 16).
 *
 * **Example** (Two pools in one program, each under a prefix)
 *
 * ```ts
 * import { Config, Context, Effect, Layer } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * class Reports extends Context.Service<Reports, CoroutinePool.CoroutinePool>()("app/Reports") {}
 * class Exports extends Context.Service<Exports, CoroutinePool.CoroutinePool>()("app/Exports") {}
 *
 * // REPORTS_POOL_MAX=8, EXPORTS_POOL_MAX=2, EXPORTS_POOL_MAX_WAITING=10, ...
 * const under = (prefix: string) => Effect.flatMap(Config.nested(CoroutinePool.config, prefix), CoroutinePool.make)
 * const Pools = Layer.mergeAll(Layer.effect(Reports, under("REPORTS")), Layer.effect(Exports, under("EXPORTS")))
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
 * import { Config } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * // POOL_MAX=8 POOL_MAX_WAITING=100 POOL_MAX_WAIT="2 seconds"
 * const pool = CoroutinePool.layerConfig()
 *
 * // PAYMENTS_POOL_MAX, PAYMENTS_POOL_MAX_WAITING, ...
 * const payments = CoroutinePool.layerConfig(Config.nested(CoroutinePool.config, "PAYMENTS"))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Wrap<Options> = config
): Layer.Layer<CoroutinePool, Config.ConfigError | InvalidPoolSize | InvalidPoolOption> =>
  Layer.effect(CoroutinePool, Effect.flatMap(Config.unwrap(options), make))

// --- combinators: the methods as functions, data-first or data-last (for pipe)

/**
 * {@link CoroutinePool.withPermit} as a function of the pool.
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
 * const same = CoroutinePool.withPermit(fetchReport, pool, { worker: "report" })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPermit: typeof Combinators.withPermit = Combinators.withPermit

/**
 * {@link CoroutinePool.withPermits} as a function of the pool and the count.
 *
 * @since 0.4.0
 * @category combinators
 */
export const withPermits: typeof Combinators.withPermits = Combinators.withPermits

/**
 * {@link CoroutinePool.withPermitIfAvailable} as a function of the pool.
 *
 * @since 0.4.0
 * @category combinators
 */
export const withPermitIfAvailable: typeof Combinators.withPermitIfAvailable = Combinators.withPermitIfAvailable

/**
 * {@link CoroutinePool.withPermitsIfAvailable} as a function of the pool and the count.
 *
 * @since 0.4.0
 * @category combinators
 */
export const withPermitsIfAvailable: typeof Combinators.withPermitsIfAvailable = Combinators.withPermitsIfAvailable

/**
 * {@link CoroutinePool.acquire} as a function of the pool: permits for the
 * rest of the current scope, e.g. `Effect.scoped(Effect.andThen(acquire(pool,
 * 2), exportRows))`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const acquire: typeof Combinators.acquire = Combinators.acquire

/**
 * {@link CoroutinePool.tryAcquire} as a function of the pool.
 *
 * @since 0.1.0
 * @category combinators
 */
export const tryAcquire: typeof Combinators.tryAcquire = Combinators.tryAcquire

/**
 * {@link CoroutinePool.release} as a function of the pool.
 *
 * @since 0.1.0
 * @category combinators
 */
export const release: typeof Combinators.release = Combinators.release
