// A virtual clock that wakes sleeps falling due at the same instant in the
// reverse of the order they were registered, the opposite of TestClock. A run
// that prints the same lines under both does not depend on which of two equal
// sleeps wakes first.
import { Effect } from "effect"
import * as ManualClock from "./ManualClock.ts"

export const make = () => {
  const { clock, now, setNow, sleepers } = ManualClock.make()

  // Lets every runnable fiber go as far as it can before the next wake.
  const settle = Effect.forEach(Array.from({ length: 200 }), () => Effect.yieldNow, { discard: true })

  /** Advances time sleep by sleep until nobody sleeps any more. */
  const runAll = Effect.gen(function* () {
    yield* settle
    while (sleepers.size > 0) {
      const next = Math.min(...Array.from(sleepers, (sleeper) => sleeper.at))
      setNow(next)
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

  return { clock, runAll, now }
}
