/**
 * One limit across many processes: a `CoroutinePool` whose permits are leases
 * in a {@link PoolStore.PoolStore}.
 *
 * Every process that makes a shared pool with the same `key` (and `max` and
 * `ttl`) against the same store shares one limit of `max` permits. With
 * `PoolStore.layerStoreRedis` that is every replica of a service; with
 * `PoolStore.layerStoreMemory`, every pool of one process. It runs on the same
 * engine as an in-process pool, with leases as its source of permits, and
 * offers the same calls (`withPermit`, `withPermits`, the `IfAvailable`
 * calls, `tryAcquire`, `release`, `acquire`).
 *
 * On Redis, a key the store has no record of (its first use, or after Redis
 * lost its data) warms up: no permit is granted for one lease TTL (reason
 * `"warming"`), so that leases granted before a loss cannot be doubled. The
 * memory store never warms up.
 *
 * @since 0.2.0
 */

import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import * as CoroutinePool from "./CoroutinePool.ts"
import * as Leases from "./internal/leases.ts"
import * as Metrics from "./internal/metrics.ts"
import * as Decode from "./internal/options.ts"
import * as Pool from "./internal/pool.ts"
import * as SharedEvents from "./internal/sharedEvents.ts"
import * as PoolStore from "./PoolStore.ts"

/**
 * What a shared pool's operations may fail with besides `PoolRejected` and
 * the work's own errors: the store failed (`PoolStoreError`), replicas
 * disagree on `max` or `ttl` (`PoolConfigMismatch`), a held lease was lost
 * (`LeaseLost`, from the work of `withPermit(s)` and the `IfAvailable`
 * calls), or a worker id cannot be stored (`InvalidStoreOption`).
 *
 * @since 0.2.0
 * @category errors
 */
export type SharedPoolError = Leases.LeaseError

// ---------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------

/**
 * A worker lost its lease: the store no longer had it, or no renewal was
 * confirmed before its deadline. Its permits ended without `Released` (the
 * event carries `permits` when there were several); the work it guarded, or
 * the fiber that took them with `acquire`, was interrupted, and a permit
 * taken with `tryAcquire` was dropped.
 *
 * @since 0.2.0
 * @category events
 */
export const Lost: typeof SharedEvents.Lost = SharedEvents.Lost

/**
 * @since 0.2.0
 * @category events
 */
export interface Lost extends SharedEvents.Lost {}

/**
 * The store refuses grants for `retryAfter` more milliseconds: it has no
 * record of the key (first use, or it lost its data) and waits one lease TTL
 * so that leases granted before cannot be doubled. Published when a pool
 * first meets a warm-up.
 *
 * @since 0.2.0
 * @category events
 */
export const Warming: typeof SharedEvents.Warming = SharedEvents.Warming

/**
 * @since 0.2.0
 * @category events
 */
export interface Warming extends SharedEvents.Warming {}

/**
 * What a shared pool publishes: every pool's events, `Lost` and `Warming`.
 * `active` is the holders across every process as the store last reported
 * them; `waiting`, this process's queue.
 *
 * @since 0.3.0
 * @category events
 */
export const PoolEvent: typeof SharedEvents.SharedEvent = SharedEvents.SharedEvent

/**
 * @since 0.3.0
 * @category events
 */
export type PoolEvent = SharedEvents.SharedEvent

/**
 * Renders a shared pool's event as one line, as `CoroutinePool.formatEvent`
 * does, with `Lost` and `Warming`.
 *
 * **Example** (A lost lease)
 *
 * ```ts
 * import { SharedPool } from "coroutine-pool"
 *
 * SharedPool.formatEvent({ _tag: "Lost", worker: "w", active: 1, max: 2, waiting: 0 })
 * // => "Worker w: lost its lease (1/2 active)"
 * ```
 *
 * @since 0.3.0
 * @category events
 */
export const formatEvent: (event: PoolEvent) => string = SharedEvents.formatShared

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * A shared pool's figures and totals: an in-process pool's, counted in this
 * process, and `lost`.
 *
 * @since 0.3.0
 * @category models
 */
export interface Stats extends CoroutinePool.PoolStats {
  /** `Lost` events so far. */
  readonly lost: number
}

/**
 * A pool whose permits are leases in a store: the `CoroutinePool` API, its
 * failures in the type, its `stats` with `lost`, and `acquire` answering the
 * lease it holds (`undefined` when admitted failing open).
 *
 * @since 0.3.0
 * @category models
 */
export interface SharedPool extends CoroutinePool.CoroutinePool<SharedPoolError, PoolEvent> {
  readonly stats: Effect.Effect<Stats>
  readonly acquire: (
    permits?: number,
    options?: CoroutinePool.PermitOptions
  ) => Effect.Effect<
    PoolStore.Lease | undefined,
    CoroutinePool.PoolRejected | CoroutinePool.InvalidPermits | SharedPoolError,
    Scope.Scope
  >
}

/**
 * A shared pool as a service, for a program that shares one: build it once
 * with {@link layer} or {@link layerConfig} and provide it, with its store
 * and the store's Redis connection, at the program's edge. A handler that
 * made its own pool (or its own Redis layer) per request would open a
 * connection and start a renewer for each request, and its callers would
 * share no queue.
 *
 * **Example** (A handler using the program's shared pool)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { SharedPool } from "coroutine-pool"
 *
 * declare const chargeCard: Effect.Effect<string>
 *
 * // Needs SharedPool in its context: provided once, where the program starts.
 * const charge = Effect.gen(function*() {
 *   const pool = yield* SharedPool.SharedPool
 *   return yield* pool.withPermit(chargeCard, { worker: "charge" })
 * })
 * ```
 *
 * @since 0.2.0
 * @category services
 */
export const SharedPool: Context.Service<SharedPool, SharedPool> =
  Context.Service<SharedPool>("coroutine-pool/SharedPool")

/**
 * What {@link make} takes: a `CoroutinePool`'s options (`name` defaults to the
 * key) plus the pool's `key` in the store, its lease `ttl`, `onStoreError`
 * and `poll`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends CoroutinePool.Options {
  /** Which pool in the store: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`. */
  readonly key: string
  /**
   * How long a lease lives without renewal, from 30 milliseconds to one hour
   * (whole milliseconds). A holder renews every third of it; a crashed
   * process's permits come back after it; after a data loss the store
   * refuses grants for one TTL. Part of the key's contract, like `max`.
   * Default 10 seconds.
   */
  readonly ttl?: Duration.Input | undefined
  /**
   * What to do when the store cannot be reached or does not answer in time
   * (the words of Effect's `CircuitBreaker`): `"fail"` (default: fail
   * closed) fails with `PoolStoreError`; `"allow"` (fail open) admits
   * without a lease, still bounded by `max` in this process. A store that
   * answers with a refusal (out of memory, say) is never overruled.
   */
  readonly onStoreError?: "fail" | "allow" | undefined
  /**
   * How often the head of this process's queue asks the store again while
   * the store cannot wake it (its channel is down, or it has no `watch`),
   * from 1 millisecond to one minute. Default 50 milliseconds. Woken by the
   * store when a permit frees anywhere, the head otherwise asks every second
   * (or every `poll`, if longer); always sooner when the store says a lease
   * ends sooner, and at once when this process frees a permit.
   */
  readonly poll?: Duration.Input | undefined
}

/**
 * The metrics a shared pool publishes: every pool's ({@link CoroutinePool.metrics}),
 * plus `lost` (`coroutine_pool_lost_total`); rejections while the store warms
 * up are `coroutine_pool_rejected_total{reason="warming"}`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const metrics = {
  ...Metrics.metrics,
  lost: Metric.counter("coroutine_pool_lost_total", {
    description: "Leases lost while held (shared pools)",
    incremental: true
  }),
  storeErrors: Metric.counter("coroutine_pool_store_errors_total", {
    description:
      "Store operations that failed, by operation (acquire, renew, release) and reason (timeout, unavailable, refused)",
    incremental: true
  })
} as const

/**
 * The lease the current work of `withPermit(s)` (or an `IfAvailable` call)
 * holds, or `undefined` outside one (and for a fail-open admission, which
 * has none). `acquire` answers its lease instead, and
 * `HttpAdmission.layerShared` provides it to the route's handler. A lease of
 * several permits says how many (`permits`).
 *
 * **When to use**
 *
 * To fence: pass `lease.fence` to the downstream you protect and let it refuse
 * any request whose token is smaller than the largest it has seen. A holder
 * that lost its lease (a long pause, say) then cannot act after its
 * successor, which is the only way to make "at most `max`" strict.
 *
 * **Example** (Sending the fencing token along)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { SharedPool } from "coroutine-pool"
 *
 * declare const pool: SharedPool.SharedPool
 * declare const writeLedger: (fence: number) => Effect.Effect<void>
 *
 * const guarded = pool.withPermit(
 *   Effect.gen(function*() {
 *     const lease = yield* SharedPool.CurrentLease
 *     yield* writeLedger(lease?.fence ?? 0)
 *   }),
 *   { worker: "ledger" }
 * )
 * ```
 *
 * @since 0.2.0
 * @category references
 */
export const CurrentLease: Context.Reference<PoolStore.Lease | undefined> = Leases.CurrentLease

const onStoreErrors = new Set(["fail", "allow"])

/**
 * Makes a pool whose permits are leases in the {@link PoolStore.PoolStore}
 * under `key`. It closes with its scope, returning every lease it holds.
 *
 * **When to use**
 *
 * When several processes must share one limit (at most `max` calls to a
 * payment provider across every replica), with `PoolStore.layerStoreRedis`.
 *
 * **Details**
 *
 * - On Redis, a new key, or one whose data was lost, grants nothing for one
 *   `ttl` (`Warming`; reason `"warming"`): a call that may wait (`maxWaiting`
 *   above 0, `maxWait` long enough) waits the warm-up out, the others are
 *   turned away.
 * - Each admission takes a lease with a fencing token (a lease of `n`
 *   permits counts `n` against `max`); one renewer extends every lease the
 *   pool holds every `ttl / 3`. When a renewal finds a lease
 *   gone, or none was confirmed before its local deadline (measured from
 *   when the acquire was sent, so it falls before the store's), the work
 *   under `withPermit(s)` is interrupted and fails with `LeaseLost`; a permit
 *   held by `acquire` interrupts the fiber that took it; a `tryAcquire`
 *   permit is dropped. Each publishes `Lost`.
 * - Queued callers wait in this process's FIFO queue (a large head is not
 *   overtaken); only its head asks the store again: at once when the store
 *   says a permit freed (Redis pub/sub) or one of this process comes back,
 *   else every second or `poll` (see there). Across processes there is no
 *   order: whoever asks first after a permit frees gets it.
 * - `stats` and `active` count this process's permits; events carry the
 *   holders across every process. `resize` cannot change a shared `max`.
 * - Metrics, spans (`SharedPool.withPermit`, `.withPermitIfAvailable`,
 *   `.acquire`, `.tryAcquire`; outcome `lost` when the lease was) and Debug
 *   logs as for an in-process pool, plus {@link metrics}.
 *
 * Fails with `InvalidStoreOption` for a bad key, `InvalidPoolSize` or
 * `InvalidPoolOption` for a bad option, before anything is asked.
 *
 * **Example** (One limit for every replica)
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Config, Effect, Layer } from "effect"
 * import { PoolStore, SharedPool } from "coroutine-pool"
 *
 * declare const charge: Effect.Effect<string>
 *
 * const Store = PoolStore.layerStoreRedis().pipe(Layer.provide(NodeRedis.layerConfig({ url: Config.String("REDIS_URL") })))
 *
 * const program = Effect.gen(function*() {
 *   // Up to 10 charges at once across every replica; 50 more may queue here for 5 seconds.
 *   const pool = yield* SharedPool.make({
 *     key: "payments",
 *     max: 10,
 *     ttl: "10 seconds",
 *     maxWaiting: 50,
 *     maxWait: "5 seconds"
 *   })
 *   return yield* pool.withPermit(charge, { worker: "charge" })
 * }).pipe(Effect.scoped, Effect.provide(Store))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  options: Options
): Effect.fn.Return<
  SharedPool,
  CoroutinePool.InvalidPoolSize | CoroutinePool.InvalidPoolOption | PoolStore.InvalidStoreOption,
  Scope.Scope | PoolStore.PoolStore
> {
  const key = yield* PoolStore.validateName("key", (options as Options | undefined)?.key)
  const decoded = yield* Decode.decodePool(options, key)
  const ttl = Decode.millis(options.ttl ?? "10 seconds", Decode.ttlBounds)
  if (ttl === undefined) return yield* invalid("ttl", options.ttl)
  const poll = Decode.millis(options.poll ?? "50 millis", { min: 1, max: 60_000 })
  if (poll === undefined) return yield* invalid("poll", options.poll)
  const onStoreError = options.onStoreError ?? "fail"
  if (!onStoreErrors.has(onStoreError)) return yield* invalid("onStoreError", options.onStoreError)
  const { max } = decoded
  const source = new Leases.Leases()
  const hooks = Leases.hooks(
    {
      key,
      max,
      ttl: Math.floor(ttl),
      poll: Math.floor(poll),
      failOpen: onStoreError === "allow",
      store: yield* PoolStore.PoolStore,
      errors: {
        lost: (worker, fence, reason) => new PoolStore.LeaseLost({ key, worker, fence, reason }),
        mismatch: (requested) => new PoolStore.PoolConfigMismatch({ key, option: "max", stored: max, requested }),
        worker: (worker) =>
          PoolStore.isValidWorker(worker)
            ? undefined
            : new PoolStore.InvalidStoreOption({ option: "worker", value: worker })
      }
    },
    source
  )
  const { api, context, engine, ledger } = yield* Pool.make<SharedPoolError, PoolEvent>(decoded, source, hooks)
  // What shared pools report besides every pool's series.
  const registrations = [
    Metrics.series(
      context,
      metrics.lost,
      { pool: decoded.name },
      Metrics.counted(() => ledger.totals.Lost)
    ),
    Metrics.series(
      context,
      metrics.rejected,
      { pool: decoded.name, reason: "warming" },
      Metrics.counted(() => ledger.refused.warming)
    ),
    ...Leases.storeErrorKinds.map(([operation, reason]) =>
      Metrics.series(
        context,
        metrics.storeErrors,
        { pool: decoded.name, operation, reason },
        Metrics.counted(() => source.storeErrors[`${operation}/${reason}`])
      )
    )
  ]
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const registration of registrations) registration.remove()
    })
  )
  return {
    [CoroutinePool.TypeId]: CoroutinePool.TypeId,
    ...api,
    acquire: (permits, options) => Effect.map(api.acquire(permits, options), Leases.leaseOf),
    stats: Effect.sync(() => ({ ...Pool.stats(engine, ledger), lost: ledger.totals.Lost }))
  }
})

const expectations = {
  ttl: 'a duration from 30 milliseconds to 1 hour, such as "10 seconds"',
  poll: 'a duration from 1 millisecond to 1 minute, such as "50 millis"',
  onStoreError: '"fail" or "allow"'
} as const

const invalid = (option: keyof typeof expectations, value: unknown) =>
  Decode.invalidOption(option, value, expectations[option])

/**
 * A layer that provides one shared pool to a whole program; it returns its
 * leases when the layer is released.
 *
 * **Example** (A shared pool over Redis)
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Config, Effect, Layer } from "effect"
 * import { PoolStore, SharedPool } from "coroutine-pool"
 *
 * const PoolLive = SharedPool.layer({ key: "payments", max: 10 }).pipe(
 *   Layer.provide(PoolStore.layerStoreRedis({ prefix: "checkout" })),
 *   Layer.provide(NodeRedis.layerConfig({ url: Config.String("REDIS_URL") }))
 * )
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* SharedPool.SharedPool
 *   return yield* pool.withPermit(Effect.succeed("charged"), { worker: "charge" })
 * }).pipe(Effect.provide(PoolLive))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  SharedPool,
  CoroutinePool.InvalidPoolSize | CoroutinePool.InvalidPoolOption | PoolStore.InvalidStoreOption,
  PoolStore.PoolStore
> => Layer.effect(SharedPool, make(options))

/**
 * A shared pool's options read from configuration: {@link CoroutinePool.config}
 * (`POOL_MAX`, `POOL_MAX_WAITING`, `POOL_MAX_WAIT`, `POOL_NAME`,
 * `POOL_HOLD_SAMPLING`) plus `POOL_KEY` (required) and `POOL_TTL` (a
 * duration, default 10 seconds). `POOL_NAME` defaults to the key.
 *
 * @since 0.2.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  pool: CoroutinePool.config,
  key: Config.String("POOL_KEY"),
  ttl: Config.Duration("POOL_TTL").pipe(Config.withDefault(Duration.seconds(10)))
}).pipe(Config.map(({ key, pool, ttl }) => ({ ...pool, name: pool.name === "default" ? key : pool.name, key, ttl })))

/**
 * A layer that builds the shared pool from configuration, {@link config} by
 * default. A missing or bad value fails the layer with a `ConfigError` naming
 * the key.
 *
 * **Example** (Configured once, at the program's edge)
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Config, Layer } from "effect"
 * import { PoolStore, SharedPool } from "coroutine-pool"
 *
 * // POOL_KEY=payments POOL_MAX=10 POOL_TTL="10 seconds" REDIS_URL=redis://redis.internal:6379
 * const Payments = SharedPool.layerConfig().pipe(
 *   Layer.provide(PoolStore.layerStoreRedis({ prefix: "checkout" })),
 *   Layer.provide(NodeRedis.layerConfig({ url: Config.String("REDIS_URL") }))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Wrap<Options> = config
): Layer.Layer<
  SharedPool,
  Config.ConfigError | CoroutinePool.InvalidPoolSize | CoroutinePool.InvalidPoolOption | PoolStore.InvalidStoreOption,
  PoolStore.PoolStore
> => Layer.effect(SharedPool, Effect.flatMap(Config.unwrap(options), make))
