// A pool as its users see it (`withPermit`, `acquire`, `tryAcquire`, ...),
// built once for every pool on the engine, its ledger and its source. What a
// source adds in effects (asking a store, guarding work with a lease) comes
// in through `Hooks`; everything else is the same for every pool.

import type * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as LogLevel from "effect/LogLevel"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Asking, type Caller, Engine, Granted, Refused, type Source, Waiting } from "./engine.ts"
import { InvalidPoolSize, PermitNotHeld, PoolRejected, type WorkerId } from "./errors.ts"
import { formatEvent, type PoolEvent } from "./events.ts"
import * as Ledger from "./ledger.ts"
import * as Metrics from "./metrics.ts"
import * as Observability from "./observability.ts"
import { isPoolSize, type PoolOptions } from "./options.ts"

/** What `Effect.uninterruptibleMask` hands its body: makes an effect interruptible again. */
export type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** What a source adds in effects; `E` is what it may fail with. */
export interface Hooks<E> {
  /** The name of the pool's spans: `<span>.withPermit`. */
  readonly span: string
  /** An event as a line, for the Debug log. */
  readonly format: (event: Ledger.Event) => string
  /** Runs `self` holding `caller`'s permits, giving them back however it ends. */
  readonly hold: <A, E1, R>(
    caller: Caller,
    restore: Restore,
    self: Effect.Effect<A, E1, R>
  ) => Effect.Effect<A, E1 | E, R>
  /** `caller`'s permits are now kept outside any effect, by `owner`'s scope or by hand. */
  readonly kept: (caller: Caller, owner: Fiber.Fiber<unknown, unknown> | undefined) => void
  /** A worker id the source cannot take: its error. */
  readonly check: (worker: WorkerId) => E | undefined
  /** What `release` of a permit taken by hand adds: waiting for the source to take it back. */
  readonly released: (caller: Caller) => Effect.Effect<void, E>
  /** The last step of closing, once every permit is back: the source's own. */
  readonly closing: Effect.Effect<void>
  /** `resize` to a valid `max`: the error when the source cannot change it. */
  readonly resizable: (max: number) => E | undefined
}

/** Every pool's API, typed by its error and its event. */
export interface Api<E, Event> {
  readonly max: Effect.Effect<number>
  readonly active: Effect.Effect<number>
  readonly tryAcquire: (worker: WorkerId) => Effect.Effect<boolean, E>
  readonly release: (worker: WorkerId) => Effect.Effect<void, PermitNotHeld | E>
  readonly withPermit: (
    worker: WorkerId
  ) => <A, E1, R>(self: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1 | PoolRejected | E, R>
  readonly withPermitWaiting: (
    worker: WorkerId
  ) => <A, E1, R>(self: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1 | PoolRejected | E, R>
  /** Answers what the source granted (a lease), or `undefined`. */
  readonly acquire: (worker: WorkerId) => Effect.Effect<unknown, PoolRejected | E, Scope.Scope>
  readonly resize: (max: number) => Effect.Effect<void, InvalidPoolSize | E>
  readonly events: Stream.Stream<Event>
  readonly subscribe: Effect.Effect<Stream.Stream<Event>, never, Scope.Scope>
}

/** How many events a subscriber may fall behind before it loses the oldest. */
export const eventBuffer = 4096

/** The pool's figures and the totals of its events, read in one step. */
export const stats = (engine: Engine, ledger: Ledger.Ledger) => {
  const { totals } = ledger
  return {
    active: engine.active,
    waiting: engine.waiting,
    max: engine.max,
    maxWaiting: engine.maxWaiting,
    acquired: totals.Acquired as number,
    rejected: totals.Rejected as number,
    released: totals.Released as number,
    queued: totals.Queued as number,
    timedOut: totals.TimedOut as number,
    abandoned: totals.Abandoned as number,
    dropped: ledger.dropped
  }
}

/**
 * Builds a pool on a new engine over `source`, for the current scope: its
 * metrics are registered in the context's registry, its transitions logged
 * at Debug when Debug is enabled, and closing the scope closes it.
 */
export const make = Effect.fnUntraced(function* <E, Event = PoolEvent, R = never>(
  options: PoolOptions,
  source: Source,
  makeHooks: (engine: Engine, ledger: Ledger.Ledger) => Effect.Effect<Hooks<E>, never, R | Scope.Scope>
) {
  const clock = options.timing ? yield* Effect.clockWith(Effect.succeed) : undefined
  const ledger = yield* Ledger.make(eventBuffer, clock)
  const engine = new Engine(options.max, options.maxWaiting, source, ledger)
  // The source's own fibers (if any) start before the pool's finalizer is
  // registered, so they stop only after the pool has closed.
  const hooks = yield* makeHooks(engine, ledger)
  const { maxWait, name } = options
  const context = yield* Effect.context<never>()
  // The metrics are read from the pool when they are scraped, in the registry
  // of the context the pool is made in, for as long as the pool lives.
  const registrations = Metrics.register(engine, ledger, name, context)
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const registration of registrations) registration.remove()
    })
  )

  // What a caller does once it holds its permits: run the effect under them...
  const holdWhile = <A, E1, R>(caller: Caller, restore: Restore, self: Effect.Effect<A, E1, R>) =>
    hooks.hold(caller, restore, self)

  // ...or keep them for a scope (`acquire`), given back when it closes unless
  // the pool took them back on closing.
  const keepInScope = (caller: Caller, _: Restore, scope: Scope.Scope): Effect.Effect<unknown> => {
    engine.keepInScope(caller)
    hooks.kept(caller, caller.fiber)
    return Effect.as(
      Scope.addFinalizer(
        scope,
        Effect.suspend(() => {
          engine.release(caller)
          return Effect.ignore(hooks.released(caller))
        })
      ),
      caller.grant
    )
  }

  // ...or keep them by hand (`tryAcquire`).
  const keepByHand = (caller: Caller): Effect.Effect<boolean> => {
    engine.keepByHand(caller)
    hooks.kept(caller, undefined)
    return Effect.succeed(true)
  }

  // Parks a queued caller until it is granted its permits, turned away, or
  // `maxWait` passes (`settle` tells which), then goes on with `next`,
  // holding them. Runs uninterruptibly except while parked (`restore`).
  const waitThen = <I, A, E1, R>(
    caller: Caller,
    restore: Restore,
    input: I,
    next: (caller: Caller, restore: Restore, input: I) => Effect.Effect<A, E1, R>
  ): Effect.Effect<A, E1 | E | PoolRejected, R> =>
    source.asks ? waitAsking(caller, restore, input, next) : waitHandedOver(caller, restore, input, next)

  // What a caller whose wait has ended does: holds its permits, or fails.
  const settle = <I, A, E1, R>(
    caller: Caller,
    restore: Restore,
    input: I,
    next: (caller: Caller, restore: Restore, input: I) => Effect.Effect<A, E1, R>
  ): Effect.Effect<A, E1 | E | PoolRejected, R> => {
    if (caller.status === Refused) return Effect.failCause(caller.failure as Cause.Cause<E | PoolRejected>)
    const rejected = engine.settle(caller)
    return rejected === undefined ? next(caller, restore, input) : Effect.fail(rejected)
  }

  // A local count hands permits over: one park is the whole wait. Everything
  // a parked caller keeps alive is built here: with thousands parked, each
  // closure costs.
  const waitHandedOver = <I, A, E1, R>(
    caller: Caller,
    restore: Restore,
    input: I,
    next: (caller: Caller, restore: Restore, input: I) => Effect.Effect<A, E1, R>
  ): Effect.Effect<A, E1 | E | PoolRejected, R> => {
    const parked = Effect.callback<void>((resume) => {
      if (caller.status === Waiting) caller.resume = resume
      else resume(Effect.void)
    })
    const waited = Effect.onExitPrimitive(
      restore(maxWait === undefined ? parked : Effect.timeoutOption(parked, maxWait)),
      (exit) => {
        if (Exit.isFailure(exit)) engine.leave(caller)
        return undefined
      }
    )
    return Effect.flatMap(waited, () => settle(caller, restore, input, next))
  }

  // A source that must be asked: a caller waits here for the answer to its
  // ask (a newcomer), and the head of the queue asks again at its poll.
  const waitAsking = <I, A, E1, R>(
    caller: Caller,
    restore: Restore,
    input: I,
    next: (caller: Caller, restore: Restore, input: I) => Effect.Effect<A, E1, R>
  ): Effect.Effect<A, E1 | E | PoolRejected, R> =>
    Effect.clockWith((clock) => {
      const now = () => clock.currentTimeMillisUnsafe()
      const deadline = maxWait === undefined ? Number.POSITIVE_INFINITY : now() + Duration.toMillis(maxWait)
      // Parked until its source answers: the answer may have come before it
      // parks (a scheduler slice ended in between).
      const answered = Effect.callback<void>((resume) => {
        if (caller.status === Asking) caller.resume = resume
        else resume(Effect.void)
      })
      const step: Effect.Effect<A, E1 | E | PoolRejected, R> = Effect.suspend(() => {
        if (caller.status !== Waiting && caller.status !== Asking) return settle(caller, restore, input, next)
        // Waiting for its source's answer: nothing to time.
        if (caller.status === Asking) return Effect.andThen(restore(answered), step)
        const at = now()
        if (at >= deadline) return settle(caller, restore, input, next)
        if (caller === engine.queue.head && !caller.asking && caller.due <= at) {
          engine.askAgain(caller)
          if (caller.status !== Waiting) return step
        }
        // The head wakes at its next poll (unless an ask is out for it).
        const asking = caller.asking
        const poll = caller === engine.queue.head && !asking && caller.due > at ? caller.due : Number.POSITIVE_INFINITY
        const until = Math.min(deadline, poll)
        // Parked only if nothing has changed since it looked (an answer may
        // have come in between, when a scheduler slice ended).
        const queued = Effect.callback<void>((resume) => {
          if (caller.status === Waiting && caller.asking === asking) caller.resume = resume
          else resume(Effect.void)
        })
        return Effect.andThen(restore(Number.isFinite(until) ? Effect.timeoutOption(queued, until - at) : queued), step)
      })
      return Effect.onExitPrimitive(step, (exit) => {
        if (Exit.isFailure(exit) && Exit.hasInterrupts(exit)) engine.leave(caller)
        return undefined
      })
    })

  // Enters the pool for `permits` and goes on with `next` once they are held.
  const enter = <I, A, E1, R>(
    worker: WorkerId,
    wait: boolean,
    fiber: Fiber.Fiber<unknown, unknown> | undefined,
    restore: Restore,
    input: I,
    next: (caller: Caller, restore: Restore, input: I) => Effect.Effect<A, E1, R>
  ): Effect.Effect<A, E1 | E | PoolRejected, R> => {
    const caller = engine.enter(worker, 1, fiber, wait)
    if (caller instanceof PoolRejected) return Effect.fail(caller)
    return caller.status === Granted ? next(caller, restore, input) : waitThen(caller, restore, input, next)
  }

  const guarded =
    (span: string, wait: boolean) =>
    (worker: WorkerId) =>
    <A, E1, R>(self: Effect.Effect<A, E1, R>): Effect.Effect<A, E1 | PoolRejected | E, R> => {
      const invalid = hooks.check(worker)
      if (invalid !== undefined) return Effect.fail(invalid)
      // `uninterruptibleMask` runs its body on the calling fiber, so
      // `Fiber.getCurrent` names it without another `withFiber` step.
      return Effect.uninterruptibleMask((restore) => {
        const fiber = Fiber.getCurrent()
        return Observability.isTracing(fiber)
          ? Observability.spanned(
              span,
              name,
              worker,
              Effect.suspend(() => enter(worker, wait, fiber, restore, self, holdWhile))
            )
          : enter(worker, wait, fiber, restore, self, holdWhile)
      })
    }

  const acquire = (worker: WorkerId): Effect.Effect<unknown, PoolRejected | E, Scope.Scope> => {
    const invalid = hooks.check(worker)
    if (invalid !== undefined) return Effect.fail(invalid)
    return Effect.flatMap(Effect.scope, (scope) =>
      Effect.uninterruptibleMask((restore) => enter(worker, true, Fiber.getCurrent(), restore, scope, keepInScope))
    )
  }

  const tryAcquire = (worker: WorkerId): Effect.Effect<boolean, E> => {
    const invalid = hooks.check(worker)
    if (invalid !== undefined) return Effect.fail(invalid)
    return Effect.uninterruptibleMask((restore) =>
      enter(worker, false, undefined, restore, undefined, keepByHand).pipe(
        Effect.catchIf(
          (error): error is PoolRejected => error instanceof PoolRejected,
          () => Effect.succeed(false)
        )
      )
    )
  }

  const release = (worker: WorkerId): Effect.Effect<void, PermitNotHeld | E> =>
    Effect.suspend((): Effect.Effect<void, PermitNotHeld | E> => {
      const caller = engine.releaseByHand(worker)
      return caller === undefined ? Effect.fail(new PermitNotHeld({ worker })) : hooks.released(caller)
    })

  const subscribe = ledger.subscribe as Effect.Effect<Stream.Stream<Event>, never, Scope.Scope>

  // With Debug logs enabled when the pool is made, every transition is
  // logged at Debug, annotated, from a subscriber that closing drains.
  if (yield* LogLevel.isEnabled("Debug")) {
    ledger.logger = yield* Observability.logEvents(yield* ledger.subscribe, name, hooks.format)
  }
  yield* Effect.addFinalizer(() => close(engine, ledger, hooks.closing))

  const api: Api<E, Event> = {
    max: Effect.sync(() => engine.max),
    active: Effect.sync(() => engine.active),
    tryAcquire,
    release,
    withPermit: guarded(`${hooks.span}.withPermit`, false),
    withPermitWaiting: guarded(`${hooks.span}.withPermitWaiting`, true),
    acquire,
    resize: (max) => {
      if (!isPoolSize(max)) return Effect.fail(new InvalidPoolSize({ max }))
      const refused = hooks.resizable(max)
      if (refused !== undefined) return Effect.fail(refused)
      // A closed pool keeps the size it closed with.
      return Effect.sync(() => {
        if (!engine.closed) engine.resize(max)
      })
    },
    events: Stream.unwrap(subscribe),
    subscribe
  }
  return { api, engine, ledger, context }
})

// Closing: stop admissions and turn the queue away, interrupt the fibers
// working under permits and wait for their releases, give back the permits
// no fiber holds, let the source finish, then end the event streams (every
// `Released` is published before they end) and wait for the logger.
const close = (engine: Engine, ledger: Ledger.Ledger, closing: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.withFiber((current) => {
    engine.close()
    return Fiber.interruptAll(engine.holderFibers(current)).pipe(
      Effect.andThen(Effect.sync(() => engine.releaseUnowned())),
      Effect.andThen(closing),
      Effect.andThen(ledger.end),
      Effect.andThen(ledger.logger === undefined ? Effect.void : Fiber.await(ledger.logger))
    )
  })

/** A local count: permits taken on the spot and handed over on release. */
export const localCount: Source = {
  asks: false,
  ask: () => {},
  take: (engine, permits) => (engine.active + permits <= engine.max ? "taken" : "none"),
  release: () => {},
  shown: (engine) => engine.active
}

/** What a local count adds in effects: nothing but running the work and giving the permits back. */
export const local = (engine: Engine): Effect.Effect<Hooks<never>> =>
  Effect.succeed<Hooks<never>>({
    span: "CoroutinePool",
    format: formatEvent as (event: Ledger.Event) => string,
    hold: (caller, restore, self) =>
      Effect.onExitPrimitive(
        restore(self),
        () => {
          engine.release(caller)
          return undefined
        },
        true
      ),
    kept: () => {},
    check: () => undefined,
    released: () => Effect.void,
    closing: Effect.void,
    resizable: () => undefined
  })
