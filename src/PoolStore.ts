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

import { randomUUID } from "node:crypto"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Redis } from "effect/persistence"
import * as Schema from "effect/Schema"
import * as Options from "./internal/options.ts"
import * as Scripts from "./internal/redisScripts.ts"

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * A permit held in a store: an unguessable `id`, a `fence` (a fencing token:
 * every grant of a key gets a larger one, so a downstream service can refuse
 * writes from a holder that has since lost its lease) and the `ttl` in
 * milliseconds it was granted for.
 *
 * @since 0.2.0
 * @category models
 */
export interface Lease {
  readonly id: string
  readonly fence: number
  readonly ttl: number
}

/**
 * What a store answers to `acquire`: `Granted` with the lease and the number
 * of holders right after; `Full` with the holders and `retryAfter`, the
 * milliseconds until the earliest lease's deadline; or `Warming`: the store
 * lost its data (or is used for the first time) and refuses grants until one
 * TTL has passed, so that holders from before cannot be doubled.
 *
 * @since 0.2.0
 * @category models
 */
export type Admission =
  | { readonly _tag: "Granted"; readonly lease: Lease; readonly holders: number }
  | { readonly _tag: "Full"; readonly holders: number; readonly retryAfter: number }
  | { readonly _tag: "Warming"; readonly retryAfter: number }

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
 * const price = pool.withPermit("quote")(quote).pipe(
 *   Effect.catchTag("PoolStoreError", () => Effect.succeed(0))
 * )
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class PoolStoreError extends Schema.TaggedError<PoolStoreError>()("PoolStoreError", {
  key: Schema.String,
  operation: Schema.Literals(["acquire", "renew", "release"]),
  reason: Schema.Literals(["timeout", "unavailable", "refused"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `Pool ${this.key}: the store failed to ${this.operation} (${this.reason}): ${this.detail}`
  }
}

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
export class PoolConfigMismatch extends Schema.TaggedError<PoolConfigMismatch>()("PoolConfigMismatch", {
  key: Schema.String,
  option: Schema.Literals(["max", "ttl"]),
  stored: Schema.Int,
  requested: Schema.Int
}) {
  override get message(): string {
    const unit = this.option === "ttl" ? " ms" : ""
    return `Pool ${this.key}: the store holds ${this.option} ${this.stored}${unit}, this process asked for ${this.requested}${unit}`
  }
}

/**
 * A held lease was lost: the store no longer had it when it was renewed
 * (`"missing"`), or no renewal was confirmed before its deadline
 * (`"deadline"`: the store was unreachable, or the process was paused). The
 * effect run under the permit was interrupted.
 *
 * @since 0.2.0
 * @category errors
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  key: Schema.String,
  worker: Schema.Union([Schema.Number, Schema.String]),
  fence: Schema.Number,
  reason: Schema.Literals(["missing", "deadline"])
}) {
  override get message(): string {
    const why = this.reason === "missing" ? "the store no longer had it" : "no renewal was confirmed in time"
    return `Pool ${this.key}: worker ${this.worker} lost its lease (fence ${this.fence}): ${why}`
  }
}

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
export class InvalidStoreOption extends Schema.TaggedError<InvalidStoreOption>()("InvalidStoreOption", {
  option: Schema.Literals(["key", "prefix", "worker", "timeout"]),
  value: Schema.Unknown
}) {
  override get message(): string {
    const shown = typeof this.value === "string" ? JSON.stringify(this.value) : String(this.value)
    return `Invalid ${this.option}: expected ${storeExpectations[this.option]}, got ${shown}`
  }
}

const storeExpectations = {
  key: "1 to 128 characters of A-Z a-z 0-9 . _ : -",
  prefix: "1 to 128 characters of A-Z a-z 0-9 . _ -",
  worker: "a number or 1 to 256 printable characters",
  timeout: 'a finite duration of at least 1 millisecond, such as "500 millis"'
} as const

// The Redis keys of a pool are `{prefix:key}:...`. A prefix has no `:`, so
// the first `:` inside the braces ends it, and distinct pairs never meet.
const patterns = {
  key: /^[A-Za-z0-9._:-]{1,128}$/,
  prefix: /^[A-Za-z0-9._-]{1,128}$/
} as const
// Printable: no control characters, so a worker id cannot forge log lines.
const WorkerPattern = /^[^\p{Cc}]{1,256}$/u

/**
 * Checks a key (letters, digits, `. _ : -`, 1 to 128 characters) or a prefix
 * (the same without `:`).
 *
 * @since 0.2.0
 * @category validation
 */
export const validateName = (option: "key" | "prefix", value: unknown): Effect.Effect<string, InvalidStoreOption> =>
  typeof value === "string" && patterns[option].test(value)
    ? Effect.succeed(value)
    : Effect.fail(new InvalidStoreOption({ option, value }))

/**
 * Checks a worker id: a finite number, or 1 to 256 printable characters.
 *
 * @since 0.2.0
 * @category validation
 */
export const isValidWorker = (worker: unknown): boolean =>
  typeof worker === "number" ? Number.isFinite(worker) : typeof worker === "string" && WorkerPattern.test(worker)

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
 * `acquire` drops expired leases, then grants one if fewer than `max` are
 * held. `renew` extends a held lease and answers `false`, recreating nothing,
 * when it is gone. `release` removes only the given lease and answers the
 * holders left, or -1 when it was not held. Deadlines are judged by the
 * store's own clock.
 *
 * @since 0.2.0
 * @category services
 */
export class PoolStore extends Context.Service<
  PoolStore,
  {
    readonly acquire: (options: {
      readonly key: string
      readonly max: number
      readonly ttl: number
    }) => Effect.Effect<Admission, PoolStoreError | PoolConfigMismatch>
    readonly renew: (options: { readonly key: string; readonly lease: Lease }) => Effect.Effect<boolean, PoolStoreError>
    readonly release: (options: {
      readonly key: string
      readonly lease: Lease
    }) => Effect.Effect<number, PoolStoreError>
  }
>()("coroutine-pool/PoolStore") {}

// SharedPool checks its options; a direct caller of a store gets the same
// checks, so a bad key cannot break the one-hash-slot layout.
const checkRequest = (key: string, max: number, ttl: number): PoolStoreError | undefined =>
  patterns.key.test(key) && Number.isSafeInteger(max) && max >= 1 && Options.isTtl(ttl)
    ? undefined
    : new PoolStoreError({
        key: String(key),
        operation: "acquire",
        reason: "refused",
        detail: `invalid request: key ${JSON.stringify(key)}, max ${max}, ttl ${ttl} (whole millis from ${Options.ttlBounds.min} to ${Options.ttlBounds.max})`
      })

// ---------------------------------------------------------------------------
// memory
// ---------------------------------------------------------------------------

interface MemoryEntry {
  readonly max: number
  readonly ttl: number
  fence: number
  // lease id -> deadline (millis of the store's clock)
  readonly leases: Map<string, number>
}

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
 *   yield* a.tryAcquire("a") // true
 *   return yield* b.tryAcquire("b") // false: a holds the only permit
 * }).pipe(Effect.scoped, Effect.provide(PoolStore.layerStoreMemory))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerStoreMemory: Layer.Layer<PoolStore> = Layer.sync(PoolStore, () => {
  const entries = new Map<string, MemoryEntry>()
  let ids = 0
  const purge = (entry: MemoryEntry, now: number) => {
    for (const [id, deadline] of entry.leases) if (deadline <= now) entry.leases.delete(id)
  }
  return PoolStore.of({
    acquire: ({ key, max, ttl }) => {
      const invalid = checkRequest(key, max, ttl)
      if (invalid !== undefined) return Effect.fail(invalid)
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        let entry = entries.get(key)
        if (entry === undefined) {
          entry = { max, ttl, fence: 0, leases: new Map() }
          entries.set(key, entry)
        }
        if (entry.max !== max) {
          return Effect.fail(new PoolConfigMismatch({ key, option: "max", stored: entry.max, requested: max }))
        }
        if (entry.ttl !== ttl) {
          return Effect.fail(new PoolConfigMismatch({ key, option: "ttl", stored: entry.ttl, requested: ttl }))
        }
        purge(entry, now)
        if (entry.leases.size >= max) {
          let earliest = Number.POSITIVE_INFINITY
          for (const deadline of entry.leases.values()) if (deadline < earliest) earliest = deadline
          return Effect.succeed<Admission>({ _tag: "Full", holders: entry.leases.size, retryAfter: earliest - now })
        }
        const lease: Lease = { id: `lease-${++ids}`, fence: ++entry.fence, ttl }
        entry.leases.set(lease.id, now + ttl)
        return Effect.succeed<Admission>({ _tag: "Granted", lease, holders: entry.leases.size })
      })
    },
    renew: ({ key, lease }) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const leases = entries.get(key)?.leases
        const deadline = leases?.get(lease.id)
        if (leases === undefined || deadline === undefined) return false
        if (deadline <= now) {
          leases.delete(lease.id)
          return false
        }
        leases.set(lease.id, now + lease.ttl)
        return true
      }),
    release: ({ key, lease }) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = entries.get(key)
        if (entry === undefined || !entry.leases.delete(lease.id)) return -1
        purge(entry, now)
        return entry.leases.size
      })
  })
})

// ---------------------------------------------------------------------------
// redis
// ---------------------------------------------------------------------------

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

// Fails with `onTimeout()` unless `self` ends within `millis` (and interrupts
// it). Every store operation goes through this twice per permit, and
// `Effect.timeoutOrElse` (a race of two forked fibers, one of them asleep)
// cost about 40% of the client's CPU per round trip here: this forks one
// fiber and sets one timer. It is a network timeout on real time, so it
// uses the host's timer rather than Effect's Clock.
const withDeadline = <A, E, E2>(
  self: Effect.Effect<A, E>,
  millis: number,
  onTimeout: () => E2
): Effect.Effect<A, E | E2> =>
  Effect.withFiber((parent) =>
    Effect.callback<A, E | E2>((resume) => {
      const child = Effect.runForkWith(parent.context)(self)
      const timer = setTimeout(() => {
        // Resume first: interrupting may end the child synchronously, and its
        // interruption must not be taken for the answer.
        resume(Effect.fail(onTimeout()))
        child.interruptUnsafe(parent.id)
      }, millis)
      child.addObserver((exit) => {
        clearTimeout(timer)
        resume(exit)
      })
      return Effect.sync(() => {
        clearTimeout(timer)
        child.interruptUnsafe(parent.id)
      })
    })
  )

const decodeTimeout = (input: Duration.Input | undefined): Effect.Effect<number, InvalidStoreOption> => {
  const ms = Options.millis(input ?? "2 seconds", { min: 1, max: 86_400_000 })
  return ms === undefined
    ? Effect.fail(new InvalidStoreOption({ option: "timeout", value: input }))
    : Effect.succeed(ms)
}

// A key's record (its max, ttl and fencing counter) expires once the key has
// been idle this long: apps that make keys on the fly do not accumulate
// them. It outlives every lease, since each acquire and renewal pushes it on.
const metaIdleMillis = String(86_400_000)

// Long enough to outlive any acquire still in flight for this id.
const tombstoneMillis = (ttl: number) => String(Math.max(60_000, ttl * 10))

// Redis answers an error reply (a word in capitals, then a message) when it
// refuses a command; these few mean "not now" rather than "no". Anything that
// is not a reply (a refused or lost connection, a client offline) means the
// store could not be reached.
const transientReply = /^(BUSY|LOADING|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY)\b/
const reasonOf = (cause: unknown): PoolStoreError["reason"] => {
  const message = cause instanceof Error ? cause.message : String(cause)
  if (!/^[A-Z][A-Z_]+\b/.test(message)) return "unavailable"
  return transientReply.test(message) ? "unavailable" : "refused"
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
export const makeStoreRedis = Effect.fnUntraced(function* (options?: RedisOptions) {
  const prefix = yield* validateName("prefix", options?.prefix ?? "coroutine-pool")
  const timeout = yield* decodeTimeout(options?.timeout)
  const redis = yield* Redis.Redis
  const acquireScript = Scripts.script<Scripts.AcquireReply>(redis, Scripts.ACQUIRE, 3)
  const renewScript = Scripts.script<number>(redis, Scripts.RENEW, 2)
  const releaseScript = Scripts.script<number>(redis, Scripts.RELEASE, 2)

  const keysOf = (key: string) => Scripts.keysOf(prefix, key)

  // node-redis cannot cancel a command once it is written, and its own
  // timeouts do not fire after that, so every operation is bounded here.
  const bounded = <A>(
    key: string,
    operation: PoolStoreError["operation"],
    effect: Effect.Effect<A, Redis.RedisError>
  ): Effect.Effect<A, PoolStoreError> =>
    withDeadline(
      Effect.catchTag(effect, "RedisError", (error) =>
        Effect.fail(
          new PoolStoreError({
            key,
            operation,
            reason: reasonOf(error.cause),
            detail: String(error.cause ?? error.message)
          })
        )
      ),
      timeout,
      () => new PoolStoreError({ key, operation, reason: "timeout", detail: `no answer within ${timeout} ms` })
    )

  return PoolStore.of({
    // A fresh lease id each time the effect runs, not each time it is built.
    acquire: ({ key, max, ttl }) =>
      Effect.suspend(() => {
        const invalid = checkRequest(key, max, ttl)
        if (invalid !== undefined) return Effect.fail(invalid)
        const keys = keysOf(key)
        const id = randomUUID()
        const script = bounded(
          key,
          "acquire",
          acquireScript(keys.leases, keys.meta, keys.tomb, id, String(max), String(ttl), metaIdleMillis)
        ).pipe(
          Effect.catchIf(
            (error) => error.detail.includes("MISMATCH"),
            (error) => {
              const [, option, stored] = /MISMATCH (max|ttl) (\d+)/.exec(error.detail) ?? []
              return Effect.fail(
                option === "ttl"
                  ? new PoolConfigMismatch({ key, option, stored: Number(stored), requested: ttl })
                  : new PoolConfigMismatch({ key, option: "max", stored: Number(stored), requested: max })
              )
            }
          )
        )
        return Effect.uninterruptibleMask((restore) =>
          restore(script).pipe(
            // Interrupted or timed out with the script in flight: release the id.
            // A plain EVAL is one command on the wire even with a cold script
            // cache, written at once, so Redis runs it after the acquire. (A
            // mismatch is an answer: nothing was taken.)
            Effect.onError((cause) =>
              Cause.findErrorOption(cause).pipe(Option.exists((e) => e._tag === "PoolConfigMismatch"))
                ? Effect.void
                : redis
                    .send("EVAL", Scripts.RELEASE, "2", keys.leases, keys.tomb, id, tombstoneMillis(ttl))
                    .pipe(Effect.ignore, Effect.forkDetach)
            ),
            Effect.flatMap((reply): Effect.Effect<Admission, PoolStoreError> => {
              switch (reply[0]) {
                case "ok":
                  return Effect.succeed({ _tag: "Granted", lease: { id, fence: reply[1], ttl }, holders: reply[2] })
                case "full":
                  return Effect.succeed({ _tag: "Full", retryAfter: reply[1], holders: reply[2] })
                case "warming":
                  return Effect.succeed({ _tag: "Warming", retryAfter: reply[1] })
                default:
                  // 'cancelled': this id was released before its acquire ran,
                  // which a fresh id per call rules out; or an unknown reply.
                  return Effect.fail(
                    new PoolStoreError({
                      key,
                      operation: "acquire",
                      reason: "refused",
                      detail: `unexpected reply ${reply[0]}`
                    })
                  )
              }
            })
          )
        )
      }),
    renew: ({ key, lease }) => {
      const keys = keysOf(key)
      return Effect.map(
        bounded(key, "renew", renewScript(keys.leases, keys.meta, lease.id, String(lease.ttl), metaIdleMillis)),
        (n) => n === 1
      )
    },
    release: ({ key, lease }) => {
      const keys = keysOf(key)
      return bounded(key, "release", releaseScript(keys.leases, keys.tomb, lease.id, tombstoneMillis(lease.ttl)))
    }
  })
})

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
 * @since 0.2.0
 * @category layers
 */
export const layerStoreRedisConfig = (
  options: Config.Wrap<RedisOptions>
): Layer.Layer<PoolStore, InvalidStoreOption | Config.ConfigError, Redis.Redis> =>
  Layer.effect(PoolStore, Effect.flatMap(Config.unwrap(options), makeStoreRedis))
