// A virtual clock moved by hand: every sleep registers here and wakes only
// when the test wakes it. ReverseClock and the Timeline test's late clock
// decide, each in its own way, which sleeper wakes next and what time it is.
import { type Clock, Duration, Effect } from "effect"

export interface Sleeper {
  readonly at: number
  readonly wake: () => void
}

export const make = () => {
  let now = 0
  const sleepers = new Set<Sleeper>()
  const nanos = () => BigInt(now) * BigInt(1_000_000)

  const clock: Clock.Clock = {
    currentTimeMillisUnsafe: () => now,
    currentTimeMillis: Effect.sync(() => now),
    currentTimeNanosUnsafe: nanos,
    currentTimeNanos: Effect.sync(nanos),
    monotonicTimeNanosUnsafe: nanos,
    monotonicTimeNanos: Effect.sync(nanos),
    sleep: (duration) =>
      Effect.callback<void>((resume) => {
        const sleeper = { at: now + Duration.toMillis(duration), wake: () => resume(Effect.void) }
        sleepers.add(sleeper)
        return Effect.sync(() => sleepers.delete(sleeper))
      })
  }

  return {
    clock,
    sleepers,
    now: () => now,
    /** Sets the time; a clock never goes back. */
    setNow: (millis: number) => {
      now = Math.max(now, millis)
    }
  }
}
