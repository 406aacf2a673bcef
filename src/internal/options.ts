// How every module reads the options it is given: one duration decoder, the
// bounds a store can take, the names a store can hold.

import * as Duration from "effect/Duration"
import * as Option from "effect/Option"

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
