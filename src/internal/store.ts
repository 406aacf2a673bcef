// What a lease store is, the names it can hold and the requests it takes.
// Both stores (memory, Redis) and the public module use it.

import * as Effect from "effect/Effect"
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

/** A store's three atomic operations on the leases of a key. */
export interface Store {
  readonly acquire: (options: {
    readonly key: string
    readonly max: number
    readonly ttl: number
    readonly permits?: number | undefined
  }) => Effect.Effect<Admission, PoolStoreError | PoolConfigMismatch>
  readonly renew: (options: { readonly key: string; readonly lease: Lease }) => Effect.Effect<boolean, PoolStoreError>
  readonly release: (options: {
    readonly key: string
    readonly lease: Lease
    readonly permits?: number | undefined
  }) => Effect.Effect<number, PoolStoreError>
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
