/**
 * Where a shared pool's permits live: leases with a deadline, counted against
 * one `max` per key.
 *
 * {@link layerStoreMemory} keeps them in this process (pools with the same key
 * share one limit); {@link layerStoreRedis} keeps them in Redis, so one limit
 * holds across every process that uses the same key. `SharedPool` builds a
 * `CoroutinePool` on top of either.
 *
 * @since 0.2.0
 */

import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Redis } from "effect/persistence"
import * as Errors from "./internal/errors.ts"
import * as MemoryStore from "./internal/memoryStore.ts"
import * as RedisStore from "./internal/redisStore.ts"
import * as Store from "./internal/store.ts"

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * Permits held in a store: an unguessable `id`, a `fence` (a fencing token:
 * every grant of a key gets a larger one, so a downstream service can refuse
 * writes from a holder that has since lost its lease), the `ttl` in
 * milliseconds it was granted for and, when it holds more than one, how many
 * `permits` (each counts against `max`; in Redis, one member each).
 *
 * @since 0.2.0
 * @category models
 */
export interface Lease extends Store.Lease {}

/**
 * What a store answers to `acquire`: `Granted` with the lease and the number
 * of permits held right after; `Full` with the permits held and `retryAfter`, the
 * milliseconds until the earliest lease's deadline; or `Warming`: the store
 * lost its data (or is used for the first time) and refuses grants until one
 * TTL has passed, so that holders from before cannot be doubled.
 *
 * @since 0.2.0
 * @category models
 */
export type Admission = Store.Admission

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/**
 * The store failed to answer. `operation` says what was asked; `reason` says
 * how it failed:
 *
 * - `"timeout"`: no answer within the store's `timeout` (Redis hung, paused,
 *   or too slow);
 * - `"unavailable"`: the store could not be reached (connection refused or
 *   lost, Redis loading its data or busy with a script);
 * - `"refused"`: the store answered with an error (Redis out of memory, a
 *   request it cannot take).
 *
 * For `acquire`, no lease is left behind. A shared pool made with
 * `onStoreError: "allow"` admits without a lease only on `"timeout"` and
 * `"unavailable"`: a store that answers is never overruled.
 *
 * **Example** (Failing closed, with a fallback answer)
 *
 * ```ts
 * import { Effect } from "effect"
 * import type { CoroutinePool, SharedPool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool<SharedPool.SharedPoolError>
 * declare const quote: Effect.Effect<number>
 *
 * const price = pool.withPermit(quote, { worker: "quote" }).pipe(
 *   Effect.catchTag("PoolStoreError", () => Effect.succeed(0))
 * )
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export const PoolStoreError: typeof Errors.PoolStoreError = Errors.PoolStoreError

/**
 * @since 0.2.0
 * @category errors
 */
export interface PoolStoreError extends Errors.PoolStoreError {}

/**
 * The store holds this key with another `max` or `ttl`: replicas disagree on
 * the key's contract. `option` names what differs; `stored` is the store's
 * value, `requested` this process's (`ttl` in milliseconds). Nothing was
 * granted. Deploy one configuration per key (or use a new key).
 *
 * **Details**
 *
 * The first acquire of a key records its `max` and `ttl` and every later one
 * must match, so that every lease of a key lasts the same time: one TTL of
 * warm-up after a data loss then outlives every lease granted before it. The
 * record expires a day after the key's last use.
 *
 * @since 0.3.0
 * @category errors
 */
export const PoolConfigMismatch: typeof Errors.PoolConfigMismatch = Errors.PoolConfigMismatch

/**
 * @since 0.3.0
 * @category errors
 */
export interface PoolConfigMismatch extends Errors.PoolConfigMismatch {}

/**
 * A held lease was lost: the store no longer had it when it was renewed
 * (`"missing"`), or no renewal was confirmed before its deadline
 * (`"deadline"`: the store was unreachable, or the process was paused). The
 * effect run under the permit was interrupted: it may have done part of its
 * work, which is what a fencing token guards against (see `SharedPool.CurrentLease`).
 *
 * **Example** (Reporting a lost lease)
 *
 * ```ts
 * import { Effect } from "effect"
 * import type { SharedPool } from "coroutine-pool"
 *
 * declare const pool: SharedPool.SharedPool
 * declare const rebuildIndex: Effect.Effect<void>
 *
 * const job = pool.withPermit(rebuildIndex, { worker: "indexer" }).pipe(
 *   Effect.catchTag("LeaseLost", (lost) => Effect.logWarning(`${lost.message}: run again later`))
 * )
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export const LeaseLost: typeof Errors.LeaseLost = Errors.LeaseLost

/**
 * @since 0.2.0
 * @category errors
 */
export interface LeaseLost extends Errors.LeaseLost {}

/**
 * A key, prefix, worker id or timeout a store cannot take: keys are 1 to 128
 * characters of `A-Z a-z 0-9 . _ : -`, prefixes the same without `:` (so
 * that no two prefix and key pairs name the same Redis keys); worker ids are
 * numbers or 1 to 256 printable characters; a timeout is a finite duration of
 * at least a millisecond. Nothing was changed.
 *
 * @since 0.2.0
 * @category errors
 */
export const InvalidStoreOption: typeof Errors.InvalidStoreOption = Errors.InvalidStoreOption

/**
 * @since 0.2.0
 * @category errors
 */
export interface InvalidStoreOption extends Errors.InvalidStoreOption {}

/**
 * Checks a key (letters, digits, `. _ : -`, 1 to 128 characters) or a prefix
 * (the same without `:`).
 *
 * @since 0.2.0
 * @category validation
 */
export const validateName: (option: "key" | "prefix", value: unknown) => Effect.Effect<string, InvalidStoreOption> =
  Store.validateName

/**
 * Checks a worker id: a finite number, or 1 to 256 printable characters.
 *
 * @since 0.2.0
 * @category validation
 */
export const isValidWorker: (worker: unknown) => boolean = Store.isValidWorker

// ---------------------------------------------------------------------------
// service
// ---------------------------------------------------------------------------

/**
 * The low-level store under `SharedPool`: three atomic operations on the
 * leases of a key.
 *
 * **When to use**
 *
 * Provide one with {@link layerStoreMemory} or {@link layerStoreRedis}; you
 * rarely call it directly. Implement it to keep leases elsewhere.
 *
 * **Details**
 *
 * `acquire` drops expired leases, then grants a lease of `permits` (default
 * 1) if they fit under `max` with those held. `renew` extends a held lease
 * and answers `false`, recreating nothing, when it is gone. `release`
 * removes only the given lease (or the given number of its permits, the rest
 * staying held) and answers the permits held after it, or -1 when it was not
 * held. Deadlines are judged by the store's own clock.
 *
 * @since 0.2.0
 * @category services
 */
export class PoolStore extends Context.Service<PoolStore, Store.Store>()("coroutine-pool/PoolStore") {}

/**
 * Keeps leases in this process, judged by Effect's `Clock` (so `TestClock`
 * drives it). Pools with the same key share one limit; nothing is lost
 * unless the process is, so it never warms up.
 *
 * **Example** (Two pools, one limit)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { PoolStore, SharedPool } from "coroutine-pool"
 *
 * const program = Effect.gen(function*() {
 *   const a = yield* SharedPool.make({ key: "payments", max: 1 })
 *   const b = yield* SharedPool.make({ key: "payments", max: 1 })
 *   yield* a.tryAcquire(1, { worker: "a" }) // true
 *   return yield* b.tryAcquire(1, { worker: "b" }) // false: a holds the only permit
 * }).pipe(Effect.scoped, Effect.provide(PoolStore.layerStoreMemory))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerStoreMemory: Layer.Layer<PoolStore> = Layer.sync(PoolStore, MemoryStore.make)

/**
 * What {@link layerStoreRedis} takes.
 *
 * @since 0.2.0
 * @category models
 */
export interface RedisOptions {
  /** Prefix of every key the store writes. Default `"coroutine-pool"`. */
  readonly prefix?: string | undefined
  /**
   * How long one operation may take before it fails with `PoolStoreError`.
   * Default 2 seconds. Keep it well under the pools' lease TTL.
   */
  readonly timeout?: Duration.Input | undefined
}

/**
 * Builds a Redis-backed {@link PoolStore} over Effect's `Redis` service.
 *
 * **Details**
 *
 * Needs Redis 7.0 or later (its scripts declare their flags). A key's leases
 * live in a sorted set scored by deadlines from the Redis server's `TIME`,
 * so client clocks never matter. Its three keys share one hash slot
 * (`{prefix:key}:leases`, `:meta`, `:tomb`), so it works on a cluster. Each
 * operation is one Lua script and one round trip. An acquire interrupted (or
 * timed out) while in flight is followed by a release of its lease id, and a
 * tombstone refuses the acquire if it arrives later, so no lease is left
 * behind. When the store finds no record of a key (first use, or Redis lost
 * its data), it refuses grants for one TTL: `Warming`.
 *
 * The first acquire of a key records its `max` and `ttl`; another `max` or
 * `ttl` for that key fails with {@link PoolConfigMismatch}. Out of memory
 * (`maxmemory` with `noeviction`), Redis refuses acquires (a
 * `PoolStoreError` with reason `"refused"`) and still runs renewals and
 * releases. Nothing lingers: the leases set expires with its last lease, the
 * tombstones with the newest one, and the key's record a day after its last
 * use (its next use then warms up as a first use does).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeStoreRedis: (
  options?: RedisOptions
) => Effect.Effect<PoolStore["Service"], InvalidStoreOption, Redis.Redis> = RedisStore.make

/**
 * Provides a Redis-backed {@link PoolStore}; see {@link makeStoreRedis}.
 * Needs Effect's `Redis` service, e.g. `NodeRedis.layerConfig` from
 * `@effect/platform-node`.
 *
 * **Example** (Connection settings from configuration)
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Config, Layer } from "effect"
 * import { PoolStore } from "coroutine-pool"
 *
 * // REDIS_URL=rediss://:secret@redis.internal:6380 (a password and TLS)
 * const store = PoolStore.layerStoreRedis({ prefix: "checkout", timeout: "500 millis" }).pipe(
 *   Layer.provide(NodeRedis.layerConfig({ url: Config.String("REDIS_URL"), disableOfflineQueue: Config.succeed(true) }))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerStoreRedis = (options?: RedisOptions): Layer.Layer<PoolStore, InvalidStoreOption, Redis.Redis> =>
  Layer.effect(PoolStore, makeStoreRedis(options))

/**
 * Like {@link layerStoreRedis}, with its options read from `Config`.
 *
 * **Example** (Prefix and timeout from the environment)
 *
 * ```ts
 * import { Config } from "effect"
 * import { PoolStore } from "coroutine-pool"
 *
 * // POOL_STORE_PREFIX=checkout POOL_STORE_TIMEOUT="500 millis"
 * const store = PoolStore.layerStoreRedisConfig({
 *   prefix: Config.String("POOL_STORE_PREFIX"),
 *   timeout: Config.Duration("POOL_STORE_TIMEOUT")
 * })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerStoreRedisConfig = (
  options: Config.Wrap<RedisOptions>
): Layer.Layer<PoolStore, InvalidStoreOption | Config.ConfigError, Redis.Redis> =>
  Layer.effect(PoolStore, Effect.flatMap(Config.unwrap(options), makeStoreRedis))
