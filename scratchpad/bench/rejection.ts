// Case 6: turned away. Every permit is held by a blocker, so every call is
// turned away: what shedding load costs, per call. One caller, N calls in a
// row, in one `Effect.whileLoop` like case 1.
//
// - the pool's `withPermit` fails with a typed `PoolRejected`; the loop reads
//   it with `Effect.exit` (what any caller that handles it pays at least);
// - the pool's `withPermitIfAvailable` answers `None`;
// - Effect's `Semaphore.withPermitsIfAvailable(1)` on a full semaphore
//   answers `None` (the reference);
// - `Effect.exit(Effect.fail(error))` of a prebuilt error: the runtime's floor
//   for a failure that is read;
// - cockatiel's `bulkhead(1, 0).execute` rejects with `BulkheadRejectedError`
//   (awaited and caught).
// Every run is checked: every call turned away (and, for the pool, every
// rejection counted in its stats, the error a `PoolRejected` with reason
// "full").
import { BulkheadRejectedError, bulkhead } from "cockatiel"
import { Data, Effect, Exit, Option, Semaphore } from "effect"
import { CoroutinePool } from "../../src/index.ts"
import { loop, type Sample, type Subject, timed, timedAsync } from "./measure.ts"

const checked = (subject: string, calls: number, turnedAway: number, ms: number): Sample => {
  if (turnedAway !== calls) throw new Error(`${subject}: run not trusted: ${turnedAway} of ${calls} calls turned away`)
  return { ms, checks: { calls, turnedAway } }
}

// Whether an exit is the pool's "full" rejection: read in the loop's step,
// outside the measured effect, as the Semaphore's `None` is.
const isFullRejection = (exit: Exit.Exit<unknown, unknown>): boolean => {
  if (Exit.isSuccess(exit)) return false
  const reason = exit.cause.reasons[0]
  return reason?._tag === "Fail" && reason.error instanceof CoroutinePool.PoolRejected && reason.error.reason === "full"
}

const poolSubject = <A>(
  name: string,
  call: (pool: CoroutinePool.CoroutinePool) => Effect.Effect<A>,
  turnedAway: (a: A) => boolean
): Subject => ({
  name,
  run: (calls) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const pool = yield* CoroutinePool.make({ max: 1 })
          yield* pool.tryAcquire(1, { worker: "blocker" })
          let away = 0
          const ms = yield* timed(
            loop(
              calls,
              () => call(pool),
              (answer) => {
                if (turnedAway(answer)) away++
              }
            )
          )
          const stats = yield* pool.stats
          if (stats.rejected !== calls || stats.acquired !== 1 || stats.active !== 1) {
            throw new Error(`${name}: run not trusted: stats ${JSON.stringify(stats)}`)
          }
          return checked(name, calls, away, ms)
        })
      )
    )
})

const rejected = poolSubject(
  "CoroutinePool.withPermit, PoolRejected",
  (pool) => Effect.exit(pool.withPermit(Effect.void)),
  isFullRejection
)

const ifAvailable = poolSubject(
  "CoroutinePool.withPermitIfAvailable, None",
  (pool) => pool.withPermitIfAvailable(Effect.void),
  Option.isNone
)

export const semaphore: Subject = {
  name: "Semaphore.withPermitsIfAvailable, None",
  run: (calls) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const semaphore = yield* Semaphore.make(1)
        yield* semaphore.take(1)
        let turnedAway = 0
        const ms = yield* timed(
          loop(
            calls,
            () => semaphore.withPermitsIfAvailable(1)(Effect.void),
            (ran) => {
              if (Option.isNone(ran)) turnedAway++
            }
          )
        )
        return checked("Semaphore.withPermitsIfAvailable, None", calls, turnedAway, ms)
      })
    )
}

class Refused extends Data.TaggedError("Refused") {}

const failFloor: Subject = {
  name: "Effect.exit(Effect.fail(prebuilt)) (floor)",
  run: (calls) => {
    const error = new Refused()
    let turnedAway = 0
    return Effect.runPromise(
      timed(
        loop(
          calls,
          () => Effect.exit(Effect.fail(error)),
          (exit) => {
            if (Exit.isFailure(exit)) turnedAway++
          }
        )
      )
    ).then((ms) => checked("Effect.exit(Effect.fail(prebuilt)) (floor)", calls, turnedAway, ms))
  }
}

const noop = (): void => {}

const cockatiel: Subject = {
  name: "cockatiel bulkhead(1, 0).execute, rejected",
  run: async (calls) => {
    const policy = bulkhead(1, 0)
    let release = noop
    const blocker = policy.execute(() => new Promise<void>((resolve) => (release = resolve)))
    let turnedAway = 0
    const ms = await timedAsync(async () => {
      for (let i = 0; i < calls; i++) {
        try {
          await policy.execute(noop)
        } catch (error) {
          if (error instanceof BulkheadRejectedError) turnedAway++
        }
      }
    })
    release()
    await blocker
    return checked("cockatiel bulkhead(1, 0).execute, rejected", calls, turnedAway, ms)
  }
}

/** The reference first. */
export const subjects: ReadonlyArray<Subject> = [semaphore, rejected, ifAvailable, failFloor, cockatiel]
