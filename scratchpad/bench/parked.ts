// Case 4: memory per parked waiter. A blocker holds the only permit, then
// `waiters` fibers are forked (`startImmediately`, so each runs at once to the
// point where it parks) and asked to wait for it. The heap is measured after a
// full collection before the first fork and once every waiter is parked; the
// difference divided by the waiters is what one parked waiter costs, its fiber
// included. For comparison the same is done with a bare fiber parked on
// `Effect.never` (the floor) and with fibers parked on an Effect Semaphore's
// `take(1)`.
//
// Parking is checked before measuring: the pool's `stats.waiting` must equal
// the waiters, and every subject counts the fibers that reached their park
// point, none of which may have ended. Then every waiter is interrupted and
// the pool's scope closed.
import { Effect, Exit, Fiber, Scope, Semaphore } from "effect"
import { CoroutinePool } from "../../src/index.ts"
import { collectGarbage, megabytes } from "./measure.ts"

export interface ParkedMeasurement {
  readonly subject: string
  readonly waiters: number
  readonly bytesPerWaiter: number
  readonly heapDeltaMB: number
  readonly peakHeapMB: number
  readonly parkNsPerWaiter: number
  readonly cleanupMs: number
  readonly checks: Readonly<Record<string, number>>
}

interface Parking {
  /** The effect the i-th waiter runs; it must park. */
  readonly park: (i: number) => Effect.Effect<unknown, unknown>
  /** How many are parked, as the subject itself reports it (if it can). */
  readonly parked: Effect.Effect<number | undefined>
}

// Lets tasks and timers queued by earlier work run, so that what they free
// or allocate is not counted as the waiters'. Without it, a measurement taken
// right after the Semaphore's counted the pool's waiters at half their size.
const settle = Effect.sleep(20)

const measureParked = (
  subject: string,
  waiters: number,
  open: Effect.Effect<Parking, unknown, Scope.Scope>
): Effect.Effect<ParkedMeasurement, unknown> =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const parking = yield* Scope.provide(open, scope)
    // Allocated before the baseline, so storing the fibers costs nothing measured.
    const fibers = Array.from({ length: waiters }, (): Fiber.Fiber<unknown, unknown> | undefined => undefined)
    let reached = 0
    yield* settle
    collectGarbage()
    const before = process.memoryUsage().heapUsed
    const start = performance.now()
    for (let i = 0; i < waiters; i++) {
      fibers[i] = yield* Effect.forkDetach(
        Effect.andThen(
          Effect.sync(() => reached++),
          parking.park(i)
        ),
        { startImmediately: true }
      )
    }
    const parkMs = performance.now() - start
    // Forks started immediately have parked already; give stragglers a few turns.
    for (let turn = 0; turn < 10 && ((yield* parking.parked) ?? reached) < waiters; turn++) yield* Effect.yieldNow
    const reported = yield* parking.parked
    const ended = fibers.filter((fiber) => fiber === undefined || fiber.pollUnsafe() !== undefined).length
    if (reached !== waiters || ended !== 0 || (reported !== undefined && reported !== waiters)) {
      throw new Error(
        `${subject}: not all parked: ${reached} reached the park point, ${ended} ended, reported waiting ${reported}`
      )
    }
    yield* settle
    collectGarbage()
    const after = process.memoryUsage().heapUsed
    const cleanupStart = performance.now()
    yield* Fiber.interruptAll(fibers.filter((fiber) => fiber !== undefined))
    yield* Scope.close(scope, Exit.void)
    const cleanupMs = performance.now() - cleanupStart
    return {
      subject,
      waiters,
      bytesPerWaiter: (after - before) / waiters,
      heapDeltaMB: megabytes(after - before),
      peakHeapMB: megabytes(after),
      parkNsPerWaiter: (parkMs * 1e6) / waiters,
      cleanupMs,
      checks: { waiters, parked: reported ?? reached }
    }
  })

export const bareFiber = (waiters: number) =>
  measureParked(
    "bare fiber (Effect.never)",
    waiters,
    Effect.succeed({ park: () => Effect.never, parked: Effect.succeed(undefined) })
  )

export const semaphoreTake = (waiters: number) =>
  measureParked(
    "Semaphore.take(1)",
    waiters,
    Effect.gen(function* () {
      const semaphore = yield* Semaphore.make(1)
      yield* semaphore.take(1) // the blocker: never given back
      return { park: () => semaphore.take(1), parked: Effect.succeed(undefined) }
    })
  )

export const pool = (waiters: number) =>
  measureParked(
    "CoroutinePool.withPermitWaiting",
    waiters,
    Effect.gen(function* () {
      const pool = yield* CoroutinePool.make({ max: 1, maxWaiting: waiters })
      yield* Effect.forkScoped(pool.withPermit(Effect.never, { worker: "blocker" }), { startImmediately: true })
      const stats = yield* pool.stats
      if (stats.active !== 1) throw new Error(`CoroutinePool: the blocker holds no permit: ${JSON.stringify(stats)}`)
      return {
        park: (i: number) => pool.withPermit(Effect.void, { worker: i }),
        parked: Effect.map(pool.stats, (stats) => stats.waiting)
      }
    })
  )
