// What a lease store is, the names it can hold and the requests it takes.
// Both stores (memory, Redis) and the public module use it.

import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import { InvalidStoreOption, type LeaseLost, type PoolConfigMismatch, PoolStoreError } from "./errors.ts"
import { isTtl, ttlBounds } from "./options.ts"

/** A permit held in a store. */
export interface Lease {
  readonly id: string
  readonly fence: number
  readonly ttl: number
  /** How many permits it holds. Default 1. */
  readonly permits?: number | undefined
}

/** A store's answer to `acquire`. */
export type Admission =
  | { readonly _tag: "Granted"; readonly lease: Lease; readonly holders: number }
  | { readonly _tag: "Full"; readonly holders: number; readonly retryAfter: number }
  | { readonly _tag: "Warming"; readonly retryAfter: number }

/** How many permits a lease holds. */
export const permitsOf = (lease: Lease): number => lease.permits ?? 1

/** `permits` (default 1) of a key whose contract is `max` and `ttl`. */
export interface AcquireRequest {
  readonly key: string
  readonly max: number
  readonly ttl: number
  readonly permits?: number | undefined
}

/** A lease of a key back, or `permits` of it (its last ones; default all). */
export interface ReleaseRequest {
  readonly key: string
  readonly lease: Lease
  readonly permits?: number | undefined
}

/** What a store tells a pool that watches a key. */
export interface Watcher {
  /** Permits of the key came free (somewhere): a queued caller may ask now. */
  readonly freed: () => void
  /** Whether the store can tell (its channel is up): if not, the pool polls. */
  readonly live: (up: boolean) => void
}

/** A store's three atomic operations on the leases of a key, and its wake-ups. */
export interface Store {
  readonly acquire: (request: AcquireRequest) => Effect.Effect<Admission, PoolStoreError | PoolConfigMismatch>
  readonly renew: (options: { readonly key: string; readonly lease: Lease }) => Effect.Effect<boolean, PoolStoreError>
  readonly release: (request: ReleaseRequest) => Effect.Effect<number, PoolStoreError>
  /**
   * Optional: `acquire` and `release` answered by callback, once, without a
   * fiber of their own (a shared pool's calls then cost no fiber each).
   */
  readonly direct?:
    | {
        readonly acquire: (
          request: AcquireRequest,
          answer: (exit: Exit.Exit<Admission, PoolStoreError | PoolConfigMismatch>) => void
        ) => void
        readonly release: (request: ReleaseRequest, answer: (exit: Exit.Exit<number, PoolStoreError>) => void) => void
      }
    | undefined
  /**
   * Optional: tells `watcher` when permits of `key` come free, for as long as
   * the scope lasts. A store without it is polled.
   */
  readonly watch?: ((key: string, watcher: Watcher) => Effect.Effect<void, never, Scope.Scope>) | undefined
}

export type { LeaseLost }

// The Redis keys of a pool are `{prefix:key}:...`. A prefix has no `:`, so
// the first `:` inside the braces ends it, and distinct pairs never meet.
const patterns = {
  key: /^[A-Za-z0-9._:-]{1,128}$/,
  prefix: /^[A-Za-z0-9._-]{1,128}$/
} as const
// Printable: no control characters, so a worker id cannot forge log lines.
const WorkerPattern = /^[^\p{Cc}]{1,256}$/u

export const validateName = (option: "key" | "prefix", value: unknown): Effect.Effect<string, InvalidStoreOption> =>
  typeof value === "string" && patterns[option].test(value)
    ? Effect.succeed(value)
    : Effect.fail(new InvalidStoreOption({ option, value }))

export const isValidWorker = (worker: unknown): boolean =>
  typeof worker === "number" ? Number.isFinite(worker) : typeof worker === "string" && WorkerPattern.test(worker)

// SharedPool checks its options; a direct caller of a store gets the same
// checks, so a bad key cannot break the one-hash-slot layout.
export const checkRequest = (key: string, max: number, ttl: number, permits = 1): PoolStoreError | undefined =>
  patterns.key.test(key) &&
  Number.isSafeInteger(max) &&
  max >= 1 &&
  isTtl(ttl) &&
  Number.isSafeInteger(permits) &&
  permits >= 1 &&
  permits <= max
    ? undefined
    : new PoolStoreError({
        key: String(key),
        operation: "acquire",
        reason: "refused",
        detail: `invalid request: key ${JSON.stringify(key)}, max ${max}, ttl ${ttl} (whole millis from ${ttlBounds.min} to ${ttlBounds.max}), permits ${permits}`
      })
