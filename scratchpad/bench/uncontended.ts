// Case 1: uncontended with-permit. One caller takes a permit if one is
// free, runs a no-op holding it and gives it back, N times in a row. Nobody
// else holds permits, so every call is admitted: this is the fixed cost a
// permit adds to every call on the fast path.
//
// The Effect subjects run as one Effect program that loops N times with
// `Effect.whileLoop`, building the guarded effect afresh on each iteration as
// a caller would, so the runtime's per-call overhead is the same for all of
// them. The promise subjects run in one async function; async-sema's
// `tryAcquire`/`release` are synchronous, so its loop never awaits, while
// cockatiel's `execute` is async and must be awaited.
import { Sema } from "async-sema"
import { bulkhead } from "cockatiel"
import { Effect, Option, Ref, Semaphore } from "effect"
import { CoroutinePool } from "../../src/index.ts"
import { loop, type Sample, type Subject, timed, timedAsync } from "./measure.ts"

const max = 2

const checked = (subject: string, calls: number, admitted: number, ms: number): Sample => {
  if (admitted !== calls) throw new Error(`${subject}: run not trusted: ${admitted} of ${calls} calls admitted`)
  return { ms, checks: { calls, admitted } }
}

// The pool with its defaults, and without its wait/hold histograms (`timing:
// false`), which read the clock twice per permit: the difference is what
// timing costs on this machine.
const poolSubject = (
  name: string,
  options: Omit<CoroutinePool.Options, "max">,
  call: (pool: CoroutinePool.CoroutinePool) => Effect.Effect<unknown, unknown>
): Subject => ({
  name,
  run: (calls) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const pool = yield* CoroutinePool.make({ max, ...options })
          let admitted = 0
          const ms = yield* timed(
            loop(
              calls,
              () => call(pool),
              () => {
                admitted++
              }
            )
          )
          const stats = yield* pool.stats
          if (stats.acquired !== calls || stats.released !== calls || stats.active !== 0) {
            throw new Error(`${name}: run not trusted: stats ${JSON.stringify(stats)}`)
          }
          return checked(name, calls, admitted, ms)
        })
      )
    )
})

const pool = poolSubject("CoroutinePool.withPermit", {}, (pool) => pool.withPermit(Effect.void))
const poolUntimed = poolSubject("CoroutinePool.withPermit, timing: false", { timing: false }, (pool) =>
  pool.withPermit(Effect.void)
)
const poolIfAvailable = poolSubject("CoroutinePool.withPermitIfAvailable", {}, (pool) =>
  pool.withPermitIfAvailable(Effect.void)
)

const semaphore: Subject = {
  name: "Semaphore.withPermitsIfAvailable",
  run: (calls) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const semaphore = yield* Semaphore.make(max)
        let admitted = 0
        const ms = yield* timed(
          loop(
            calls,
            () => semaphore.withPermitsIfAvailable(1)(Effect.void),
            (ran) => {
              if (Option.isSome(ran)) admitted++
            }
          )
        )
        return checked("Semaphore.withPermitsIfAvailable", calls, admitted, ms)
      })
    )
}

// The floor: a counter in a Ref, taken if below max and given back. No
// interruption safety, no events, no bookkeeping of who holds what.
const refCounter: Subject = {
  name: "Ref.modify counter",
  run: (calls) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const active = yield* Ref.make(0)
        const take = Ref.modify(active, (n): [boolean, number] => (n < max ? [true, n + 1] : [false, n]))
        const giveBack = Ref.update(active, (n) => n - 1)
        let admitted = 0
        const ms = yield* timed(
          loop(
            calls,
            () =>
              Effect.flatMap(take, (ok) =>
                ok ? Effect.as(Effect.andThen(Effect.void, giveBack), true) : Effect.succeed(false)
              ),
            (ran) => {
              if (ran) admitted++
            }
          )
        )
        return checked("Ref.modify counter", calls, admitted, ms)
      })
    )
}

// The floor: the same loop around a bare `Effect.void`, no permit at all.
const effectLoop: Subject = {
  name: "Effect loop, no permit (floor)",
  run: (calls) =>
    Effect.runPromise(
      Effect.gen(function* () {
        let ran = 0
        const ms = yield* timed(
          loop(
            calls,
            () => Effect.void,
            () => {
              ran++
            }
          )
        )
        return checked("Effect loop, no permit (floor)", calls, ran, ms)
      })
    )
}

const noop = (): void => {}

const asyncSema: Subject = {
  name: "async-sema tryAcquire/release",
  run: async (calls) => {
    const sema = new Sema(max)
    let admitted = 0
    const ms = await timedAsync(async () => {
      for (let i = 0; i < calls; i++) {
        const token = sema.tryAcquire()
        if (token === undefined) continue
        noop()
        admitted++
        sema.release(token)
      }
    })
    return checked("async-sema tryAcquire/release", calls, admitted, ms)
  }
}

const cockatiel: Subject = {
  name: "cockatiel bulkhead(2, 0).execute",
  run: async (calls) => {
    const policy = bulkhead(max, 0)
    let admitted = 0
    const ms = await timedAsync(async () => {
      for (let i = 0; i < calls; i++) {
        await policy.execute(noop)
        admitted++
      }
    })
    return checked("cockatiel bulkhead(2, 0).execute", calls, admitted, ms)
  }
}

/** The reference first. */
export const subjects: ReadonlyArray<Subject> = [
  semaphore,
  pool,
  poolIfAvailable,
  poolUntimed,
  refCounter,
  effectLoop,
  asyncSema,
  cockatiel
]
