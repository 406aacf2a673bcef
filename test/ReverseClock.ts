// A virtual clock that wakes sleeps falling due at the same instant in the
// reverse of the order they were registered, the opposite of TestClock. A run
// that prints the same lines under both does not depend on which of two equal
// sleeps wakes first.
import { type Clock, Duration, Effect } from "effect"

interface Sleeper {
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

  // Lets every runnable fiber go as far as it can before the next wake.
  const settle = Effect.forEach(Array.from({ length: 200 }), () => Effect.yieldNow, { discard: true })

  /** Advances time sleep by sleep until nobody sleeps any more. */
  const runAll = Effect.gen(function* () {
    yield* settle
    while (sleepers.size > 0) {
      const next = Math.min(...Array.from(sleepers, (sleeper) => sleeper.at))
      now = next
      const due = Array.from(sleepers)
        .filter((sleeper) => sleeper.at === next)
        .reverse()
      for (const sleeper of due) {
        sleepers.delete(sleeper)
        sleeper.wake()
        yield* settle
      }
    }
  })

  return { clock, runAll, now: () => now }
}
