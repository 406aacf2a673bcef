// How every module reads the options it is given: one duration decoder, the
// bounds a store can take, the names a store can hold.

import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { InvalidPoolOption, InvalidPoolSize } from "./errors.ts"

// The fields of a `Duration.DurationObject`. `Duration.fromInput` ignores any
// other field (so `{ millis: 5 }` would mean 0) and takes NaN for 0: both are
// refused here.
const units = new Set(["weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"])

const isFiniteNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value)

// The input as a duration when it is one, however written; `undefined` when
// it is not (a typo, NaN, an object with no known field or an unknown one).
const toDuration = (input: unknown): Duration.Duration | undefined => {
  switch (typeof input) {
    case "number":
      return Number.isNaN(input) ? undefined : Duration.millis(input)
    case "bigint":
      return Duration.nanos(input)
    case "string":
      return Option.getOrUndefined(Duration.fromInput(input as Duration.Input))
    case "object": {
      if (input === null) return undefined
      if (Duration.isDuration(input)) return input
      if (Array.isArray(input)) {
        return input.length === 2 && input.every(isFiniteNumber)
          ? Duration.fromInputUnsafe(input as unknown as readonly [number, number])
          : undefined
      }
      const entries = Object.entries(input)
      if (entries.length === 0) return undefined
      for (const [unit, value] of entries) {
        if (!units.has(unit) || (value !== undefined && !isFiniteNumber(value))) return undefined
      }
      return Duration.fromInputUnsafe(input as Duration.DurationObject)
    }
    default:
      return undefined
  }
}

/**
 * The input as milliseconds when it is a duration of at least `min` and at
 * most `max` milliseconds (`max` may be `Infinity`, then an infinite duration
 * is allowed); `undefined` otherwise. Callers turn `undefined` into their own
 * typed error, naming the option.
 */
export const millis = (input: unknown, bounds: { readonly min: number; readonly max: number }): number | undefined => {
  const duration = toDuration(input)
  if (duration === undefined) return undefined
  const ms = Duration.toMillis(duration)
  return ms >= bounds.min && ms <= bounds.max ? ms : undefined
}

/**
 * A store lease's time to live, in whole milliseconds: from 30 ms (a renewal
 * every 10 ms) to one hour (a data loss costs one TTL of refused grants, so
 * a longer one would stop a key for longer than any holder needs: holders
 * renew every third of it, for as long as they work).
 */
export const ttlBounds = { min: 30, max: 3_600_000 } as const

/** Whole milliseconds within {@link ttlBounds}. */
export const isTtl = (ttl: unknown): ttl is number =>
  Number.isSafeInteger(ttl) && (ttl as number) >= ttlBounds.min && (ttl as number) <= ttlBounds.max

// ---------------------------------------------------------------------------
// a pool's options
// ---------------------------------------------------------------------------

/** What every pool is made with, checked, with its defaults filled in. */
export interface PoolOptions {
  readonly max: number
  readonly maxWaiting: number
  /** `undefined`: no limit, so an unlimited wait starts no timer. */
  readonly maxWait: Duration.Duration | undefined
  readonly name: string
  readonly timing: boolean
  readonly holdSampling: number
}

/** The largest `holdSampling`: one hold in 1,024 measured. */
export const maxHoldSampling = 1024

export const isPoolSize = (max: unknown): max is number => Number.isSafeInteger(max) && (max as number) >= 1

export const expectations = {
  options: "an object such as { max: 2 }",
  maxWaiting: "a safe integer of zero or more",
  maxWait: 'a duration of zero or more, such as "5 seconds"',
  name: "a non-empty string",
  timing: "true or false",
  holdSampling: "a whole number from 1 to 1024"
} as const

/** Fails with `InvalidPoolOption`: `option` was `value`, `expected` would have done. */
export const invalidOption = (option: string, value: unknown, expected: string) =>
  Effect.fail(new InvalidPoolOption({ option, value, expected }))

const invalid = (option: keyof typeof expectations, value: unknown) =>
  invalidOption(option, value, expectations[option])

/**
 * Checks the options every pool takes: `max` fails with `InvalidPoolSize`,
 * the others with `InvalidPoolOption` naming them. Nothing is built before
 * they all pass.
 */
export const decodePool = (
  options: unknown,
  defaultName: string
): Effect.Effect<PoolOptions, InvalidPoolSize | InvalidPoolOption> => {
  if (typeof options !== "object" || options === null) return invalid("options", options)
  const {
    max,
    maxWaiting = 0,
    maxWait,
    name = defaultName,
    timing = true,
    holdSampling = 16
  } = options as Record<string, unknown>
  if (!isPoolSize(max)) return Effect.fail(new InvalidPoolSize({ max }))
  if (!Number.isSafeInteger(maxWaiting) || (maxWaiting as number) < 0) return invalid("maxWaiting", maxWaiting)
  let wait: Duration.Duration | undefined
  if (maxWait !== undefined) {
    const ms = millis(maxWait, { min: 0, max: Number.POSITIVE_INFINITY })
    if (ms === undefined) return invalid("maxWait", maxWait)
    wait = Number.isFinite(ms) ? Duration.millis(ms) : undefined
  }
  if (typeof name !== "string" || name.length === 0) return invalid("name", name)
  if (typeof timing !== "boolean") return invalid("timing", timing)
  if (
    !Number.isSafeInteger(holdSampling) ||
    (holdSampling as number) < 1 ||
    (holdSampling as number) > maxHoldSampling
  ) {
    return invalid("holdSampling", holdSampling)
  }
  return Effect.succeed({
    max,
    maxWaiting: maxWaiting as number,
    maxWait: wait,
    name,
    timing,
    holdSampling: holdSampling as number
  })
}
