// Permits that are leases in a `PoolStore`: the source under a shared pool.
//
// The engine decides locally (nobody queued ahead, room in this process);
// the caller then asks the store, and its answer goes back to the engine.
// Queued callers wait in the engine's FIFO, and only its head asks again: at
// its poll (sooner when the store says a lease ends sooner), or at once when
// a permit of this process comes back. One renewer fiber extends every lease
// the pool holds; a lease it finds gone, or cannot renew before its local
// deadline, is lost: its work is interrupted and fails with `LeaseLost`.

import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { Asker, Caller } from "./caller.ts"
import type { Engine, Source } from "./engine.ts"
import {
  type InvalidStoreOption,
  type LeaseLost,
  type PoolConfigMismatch,
  PoolStoreError,
  type WorkerId
} from "./errors.ts"
import type { Event, Ledger } from "./ledger.ts"
import type { Hooks } from "./pool.ts"
import { formatShared, type SharedEvent } from "./sharedEvents.ts"
import type { Admission, Lease, Store } from "./store.ts"

/** What a shared pool's operations may fail with besides rejections. */
export type LeaseError = PoolStoreError | PoolConfigMismatch | LeaseLost | InvalidStoreOption

/** The lease the current work holds (see `SharedPool.CurrentLease`). */
export const CurrentLease: Context.Reference<Lease | undefined> = Context.Reference<Lease | undefined>(
  "coroutine-pool/SharedPool/CurrentLease",
  { defaultValue: () => undefined }
)

export interface LeaseOptions {
  readonly key: string
  readonly max: number
  readonly ttl: number
  readonly poll: number
  readonly failOpen: boolean
  readonly store: Store
  readonly errors: {
    readonly lost: (worker: WorkerId, fence: number, reason: "missing" | "deadline") => LeaseLost
    readonly mismatch: (max: number) => PoolConfigMismatch
    readonly worker: (worker: WorkerId) => InvalidStoreOption | undefined
  }
}

// A lease this pool holds for a caller (undefined `lease`: admitted without
// one, failing open).
interface Hold {
  readonly caller: Caller
  // Replaced when part of it goes back (a take by hand split by `release`).
  lease: Lease | undefined
  // Monotonic millis at which the last confirmed acquire or renewal was sent:
  // the lease cannot end on the server before confirmed + ttl.
  confirmed: number
  // When to renew next.
  next: number
  renewing: boolean
  // Set once lost; the work then fails with it.
  lost: LeaseLost | undefined
  // The fiber running the work under `withPermit`, interrupted when lost.
  work: Fiber.Fiber<unknown, unknown> | undefined
  // The fiber that took an `acquire` permit, interrupted when it is lost.
  owner: Fiber.Fiber<unknown, unknown> | undefined
  // The store's release, once the permit came back.
  returned: Deferred.Deferred<number, PoolStoreError> | undefined
}

/** How often a queued caller asks again when the store wakes it (unless `poll` is longer). */
export const fallbackPoll = 1000

// Every caller of a shared pool is an `Asker`.
const holdOf = (caller: Caller) => (caller as Asker).grant as Hold

type StoreErrorKind = `${PoolStoreError["operation"]}/${PoolStoreError["reason"]}`

/** Every operation and reason a store error is counted under. */
export const storeErrorKinds = (["acquire", "renew", "release"] as const).flatMap((operation) =>
  (["timeout", "unavailable", "refused"] as const).map((reason) => [operation, reason] as const)
)

/** The source: ask the store while this process holds fewer than `max`; show the store's holders. */
export class Leases implements Source {
  readonly asks = true
  // The store's failures, by operation and reason, for the metrics.
  readonly storeErrors = Object.fromEntries(
    storeErrorKinds.map(([operation, reason]) => [`${operation}/${reason}`, 0])
  ) as Record<StoreErrorKind, number>
  // Holders across every process, as the store last reported them (and as
  // this process's own releases have changed them since).
  reported = 0
  // How the store is asked and a lease goes back to it: set by `hooks`,
  // which knows the store.
  askStore: (caller: Asker) => void = () => {}
  releaseLease: (caller: Caller, permits: number) => void = () => {}

  ask(_: Engine, caller: Caller) {
    this.askStore(caller as Asker)
  }

  take(engine: Engine, permits: number) {
    return engine.active + engine.asking + permits <= engine.max ? ("ask" as const) : ("none" as const)
  }

  release(_: Engine, caller: Caller, permits: number) {
    this.releaseLease(caller, permits)
  }

  shown() {
    return this.reported
  }
}

/** What leases add in effects: asking the store, renewing, losing, giving back. */
export const hooks =
  (options: LeaseOptions, leases: Leases) =>
  (engine: Engine, ledger: Ledger): Effect.Effect<Hooks<LeaseError>, never, Scope.Scope> =>
    Effect.gen(function* () {
      const { errors, failOpen, key, max, poll, store, ttl } = options
      const clock = yield* Effect.clockWith(Effect.succeed)
      const now = () => Number(clock.monotonicTimeNanosUnsafe()) / 1e6
      const context = yield* Effect.context<never>()
      const runFork = Effect.runForkWith(context)
      const every = Math.max(1, Math.floor(ttl / 3))
      const holds = new Set<Hold>()
      // Store releases still on their way, which closing waits for.
      const returning = new Set<Deferred.Deferred<number, PoolStoreError>>()
      let warmingUntil = Number.NEGATIVE_INFINITY

      // A store that says when permits come free wakes the head of the queue
      // at once; the head then asks again only every `fallback` (a wake-up
      // may be lost) or at the store's hint. Without one, or while its channel
      // is down, the head asks every `poll`.
      let pushed = false
      const fallback = Math.max(poll, fallbackPoll)
      if (store.watch !== undefined) {
        yield* store.watch(key, {
          freed: () => {
            const head = engine.queue.head
            if (head !== undefined) engine.askAgain(head)
          },
          live: (up) => {
            pushed = up
          }
        })
      }

      // The renewer sleeps while nothing is held, and a first lease wakes it
      // (`wakeIdle`); otherwise it sleeps until the next renewal is due, which
      // no later lease can precede (they all last one ttl), or until its
      // renewals are answered (`wakeRenewed`).
      let wakeIdle: (() => void) | undefined
      let wakeRenewed: (() => void) | undefined
      const hold = (caller: Caller, lease: Lease | undefined, sent: number): Hold => {
        const held: Hold = {
          caller,
          lease,
          confirmed: sent,
          next: sent + every,
          renewing: false,
          lost: undefined,
          work: undefined,
          owner: undefined,
          returned: undefined
        }
        if (lease !== undefined) {
          holds.add(held)
          // Every lease lasts the same ttl, so a new one is due after those
          // held already: only an idle renewer needs waking.
          if (holds.size === 1) wakeIdle?.()
        }
        return held
      }

      leases.releaseLease = (caller, permits) => {
        const held = holdOf(caller)
        const all = permits === caller.permits
        if (all) holds.delete(held)
        if (held?.lease === undefined) return
        // Counted out at once, so that the event of this release shows it;
        // the store's answer then says how many are left.
        leases.reported = Math.max(0, leases.reported - permits)
        const returned = Deferred.makeUnsafe<number, PoolStoreError>()
        held.returned = returned
        returning.add(returned)
        const request = { key, lease: held.lease, permits }
        call(
          () => store.release(request),
          store.direct?.release,
          request,
          (exit) => {
            returning.delete(returned)
            if (Exit.isFailure(exit)) failed(exit.cause)
            else if (exit.value >= 0) leases.reported = exit.value
            Deferred.doneUnsafe(returned, exit)
          }
        )
        if (!all) held.lease = { ...held.lease, permits: caller.permits - permits }
      }

      // A store operation whose answer goes to `done` whatever becomes of the
      // caller: by the store's callback when it has one, else from a fiber
      // of its own (built from `effect`).
      const call = <Request, A, E>(
        effect: () => Effect.Effect<A, E>,
        direct: ((request: Request, answer: (exit: Exit.Exit<A, E>) => void) => void) | undefined,
        request: Request,
        done: (exit: Exit.Exit<A, E>) => void
      ) => {
        if (direct !== undefined) direct(request, done)
        else runFork(effect()).addObserver(done)
      }

      // Every failure of the store is counted, whatever comes of it.
      const failed = (cause: Cause.Cause<unknown>) => {
        const error = Option.getOrUndefined(Cause.findErrorOption(cause))
        if (error instanceof PoolStoreError) leases.storeErrors[`${error.operation}/${error.reason}`]++
      }

      const publishLost = (worker: WorkerId, permits: number) => () => {
        ledger.totals.Lost++
        const event = { _tag: "Lost", worker, active: leases.reported, max: engine.max, waiting: engine.waiting }
        // Like every worker event: a single permit goes without saying.
        ledger.emit(permits === 1 ? event : { ...event, permits })
      }

      // Ends a lease the pool can no longer vouch for.
      const lose = (held: Hold, reason: "missing" | "deadline") => {
        holds.delete(held)
        const { caller } = held
        if (!engine.lose(caller, publishLost(caller.worker, caller.permits))) return
        held.lost = errors.lost(caller.worker, held.lease?.fence ?? 0, reason)
        // Past our deadline the store may still hold it (renewals were
        // failing): give it back so the slot frees now, not at its deadline.
        if (reason === "deadline" && held.lease !== undefined) {
          runFork(Effect.ignore(store.release({ key, lease: held.lease })))
        }
        if (held.work !== undefined) held.work.interruptUnsafe()
        else held.owner?.interruptUnsafe()
      }

      // A renewal's answer: confirmed, gone, or not known (try again soon,
      // until the deadline).
      const renewed = (held: Hold, sent: number, exit: Exit.Exit<boolean, PoolStoreError>): void => {
        held.renewing = false
        if (Exit.isFailure(exit)) failed(exit.cause)
        if (!holds.has(held)) return
        if (Exit.isFailure(exit)) held.next = now() + Math.min(every, 100)
        else if (!exit.value) lose(held, "missing")
        else {
          held.confirmed = sent
          held.next = sent + every
        }
      }

      const renew = (batch: ReadonlyArray<Hold>) =>
        Effect.forEach(
          batch,
          (held) => {
            const sent = now()
            return Effect.map(Effect.exit(store.renew({ key, lease: held.lease as Lease })), (exit) =>
              renewed(held, sent, exit)
            )
          },
          { concurrency: "unbounded", discard: true }
        )

      // One fiber renews every lease the pool holds, each every ttl / 3 from
      // its last confirmation; one that cannot be confirmed before its
      // deadline is lost.
      const renewer = Effect.gen(function* () {
        for (;;) {
          if (holds.size === 0) {
            yield* Effect.callback<void>((resume) => {
              wakeIdle = () => resume(Effect.void)
              return Effect.sync(() => {
                wakeIdle = undefined
              })
            })
            wakeIdle = undefined
          }
          const at = now()
          const due: Array<Hold> = []
          let earliest = Number.POSITIVE_INFINITY
          for (const held of holds) {
            const deadline = held.confirmed + ttl
            if (at >= deadline) {
              lose(held, "deadline")
              continue
            }
            if (!held.renewing && at >= held.next) {
              held.renewing = true
              due.push(held)
            }
            earliest = Math.min(earliest, deadline, held.renewing ? deadline : held.next)
          }
          if (due.length > 0) {
            // Renewals run beside the renewer, which goes on watching deadlines;
            // when they are done, it looks again.
            yield* Effect.forkChild(
              Effect.andThen(
                renew(due),
                Effect.sync(() => wakeRenewed?.())
              ),
              { startImmediately: true }
            )
          }
          if (holds.size > 0) {
            yield* Effect.callback<void>((resume) => {
              wakeRenewed = () => resume(Effect.void)
              return Effect.sync(() => {
                wakeRenewed = undefined
              })
            }).pipe(Effect.timeoutOption(Math.max(0, earliest - now())))
            wakeRenewed = undefined
          }
        }
      })
      yield* Effect.forkScoped(renewer)

      // The store's answer to an ask, applied to the engine as it arrives,
      // in the fiber that asked the store: never lost to an interrupt of the
      // caller, which has only to wait for it (or leave, and let a grant go back).
      const answer = (caller: Asker, sent: number, exit: Exit.Exit<Admission, LeaseError>) => {
        if (Exit.isFailure(exit)) {
          failed(exit.cause)
          const error = Option.getOrUndefined(Cause.findErrorOption(exit.cause))
          // Failing open: admitted without a lease when the store could not
          // be reached or did not answer, still at most max here.
          if (error?._tag === "PoolStoreError" && failOpen && error.reason !== "refused" && !engine.closed) {
            return engine.granted(caller, hold(caller, undefined, sent))
          }
          return engine.failed(caller, exit.cause)
        }
        const admission = exit.value
        if (admission._tag === "Granted") {
          leases.reported = admission.holders
          return engine.granted(caller, hold(caller, admission.lease, sent))
        }
        // On the clock the queued caller waits by (the pool's: `sent` is monotonic).
        caller.due =
          clock.currentTimeMillisUnsafe() + Math.max(1, Math.min(pushed ? fallback : poll, admission.retryAfter))
        if (admission._tag === "Full") {
          leases.reported = admission.holders
          return engine.refused(caller, "full", admission.retryAfter)
        }
        if (sent >= warmingUntil) {
          warmingUntil = sent + admission.retryAfter
          ledger.emit({
            _tag: "Warming",
            retryAfter: admission.retryAfter,
            active: leases.reported,
            max: engine.max,
            waiting: engine.waiting
          })
        }
        return engine.refused(caller, "warming", admission.retryAfter)
      }

      // Each ask runs in a fiber of its own, bounded by the store's own
      // timeout, so that its answer arrives whatever becomes of the caller.
      leases.askStore = (caller) => {
        const sent = now()
        const request = { key, max, ttl, permits: caller.permits }
        call(
          () => store.acquire(request),
          store.direct?.acquire,
          request,
          (exit) => answer(caller, sent, exit)
        )
      }

      // The work runs in a fiber of its own, so that losing the lease can
      // interrupt it and this one can fail with `LeaseLost` instead.
      const run = <A, E1, R>(caller: Caller, self: Effect.Effect<A, E1, R>): Effect.Effect<A, E1 | LeaseError, R> => {
        const held = holdOf(caller)
        if (held.lease === undefined) return self
        return Effect.flatMap(
          Effect.forkChild(Effect.provideService(self, CurrentLease, held.lease), { startImmediately: true }),
          (work): Effect.Effect<A, E1 | LeaseError> => {
            held.work = work
            if (held.lost !== undefined) work.interruptUnsafe()
            return Fiber.await(work).pipe(
              Effect.onInterrupt(() => Fiber.interrupt(work)),
              Effect.flatMap(
                (exit): Effect.Effect<A, E1 | LeaseError> => (held.lost === undefined ? exit : Effect.fail(held.lost))
              )
            )
          }
        )
      }

      return {
        span: "SharedPool",
        format: (event: Event) => formatShared(event as unknown as SharedEvent),
        hold: run,
        kept: (caller, owner) => {
          holdOf(caller).owner = owner
        },
        check: errors.worker,
        // Returns once the store has the leases back (a release's failure
        // is the caller's to see).
        // Returns once the store has the lease back (a release's failure is
        // the caller's to see). Not waiting would be faster, but the process
        // that released would then ask again in the same write as its
        // release and keep re-taking its own permit: measured, 8 processes
        // churning on one key saw their grants go to 2 of them.
        released: (caller) => {
          const returned = holdOf(caller).returned
          return returned === undefined ? undefined : Effect.asVoid(Deferred.await(returned))
        },
        closing: Effect.suspend(() =>
          Effect.forEach(Array.from(returning), (returned) => Effect.exit(Deferred.await(returned)), { discard: true })
        ),
        resizable: (size) => (size === max ? undefined : errors.mismatch(size))
      } satisfies Hooks<LeaseError>
    })

/** The lease behind what `acquire` answers (`undefined`: admitted failing open). */
export const leaseOf = (grant: unknown): Lease | undefined => (grant as Hold | undefined)?.lease
