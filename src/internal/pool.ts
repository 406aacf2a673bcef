// A pool as its users see it (`withPermit`, `acquire`, `tryAcquire`, ...),
// built once for every pool on the engine, its ledger and its source. What a
// source adds in effects (guarding work with a lease, waiting for a store)
// comes in through `Hooks`; everything else is the same for every pool.
//
// The paths every call takes are kept short: a call pushes its exit frame
// first and enters the pool inside it (an interrupt can then never fall
// between the admission and the frame that gives the permits back), so no
// interruption mask is needed; a queued caller parks with one callback and
// is resumed straight into its work; a rejection is built without a stack.

import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as LogLevel from "effect/LogLevel"
import type * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Asker, Asking, Caller, Granted, Refused, Waiting } from "./caller.ts"
import { Engine, type Source } from "./engine.ts"
import { InvalidPermits, InvalidPoolSize, PermitNotHeld, PoolRejected, type WorkerId } from "./errors.ts"
import { formatEvent, type PoolEvent } from "./events.ts"
import * as Ledger from "./ledger.ts"
import * as Metrics from "./metrics.ts"
import * as Observability from "./observability.ts"
import { isPoolSize, type PoolOptions } from "./options.ts"

/** What every call may say besides its permits. */
export interface PermitOptions {
  /** The label in events and errors. Default: the calling fiber's id. */
  readonly worker?: WorkerId | undefined
}

/** What a source adds in effects; `E` is what it may fail with. */
export interface Hooks<E> {
  /** The name of the pool's spans: `<span>.withPermit`. */
  readonly span: string
  /** An event as a line, for the Debug log. */
  readonly format: (event: Ledger.Event) => string
  /** Runs `self` holding `caller`'s permits (the pool gives them back when it ends). */
  readonly hold: <A, E1, R>(caller: Caller, self: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1 | E, R>
  /** `caller`'s permits are now kept outside any effect, by `owner`'s scope or by hand. */
  readonly kept: (caller: Caller, owner: Fiber.Fiber<unknown, unknown> | undefined) => void
  /** A worker id the source cannot take: its error (`undefined`: it takes any). */
  readonly check: ((worker: WorkerId) => E | undefined) | undefined
  /** After a caller's permits came back: waiting for the source to take them, if it must. */
  readonly released: (caller: Caller) => Effect.Effect<void, E> | undefined
  /** The last step of closing, once every permit is back: the source's own. */
  readonly closing: Effect.Effect<void>
  /** `resize` to a valid `max`: the error when the source cannot change it. */
  readonly resizable: (max: number) => E | undefined
}

/**
 * Every pool's API, typed by its error and its event (the public
 * `CoroutinePool` adds its type id, `stats` and what `acquire` answers).
 */
export interface Api<E, Event> {
  /** The number of permits in force (it changes with `resize`). */
  readonly max: Effect.Effect<number>
  /** The number of permits taken right now. */
  readonly active: Effect.Effect<number>
  /**
   * Runs an effect holding a permit: admitted now, or queued as the pool
   * allows, else `PoolRejected` without running it. The permit comes back
   * however the effect ends: success, failure, defect or interruption.
   */
  readonly withPermit: <A, E1, R>(
    self: Effect.Effect<A, E1, R>,
    options?: PermitOptions
  ) => Effect.Effect<A, E1 | PoolRejected | E, R>
  /**
   * Like `withPermit`, holding `permits` permits at once. A request larger
   * than what is free waits its turn like any other (the head of the queue
   * is never overtaken); more than `max` fails with `InvalidPermits`.
   */
  readonly withPermits: (
    permits: number,
    options?: PermitOptions
  ) => <A, E1, R>(self: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1 | PoolRejected | InvalidPermits | E, R>
  /**
   * Runs an effect holding a permit if one is free now: `Some` of its value,
   * or `None` without running it. Never waits, never fails with
   * `PoolRejected`; a caller turned away is still published (`Rejected`)
   * and counted, as `withPermit`'s would be.
   */
  readonly withPermitIfAvailable: <A, E1, R>(
    self: Effect.Effect<A, E1, R>,
    options?: PermitOptions
  ) => Effect.Effect<Option.Option<A>, E1 | E, R>
  /** Like `withPermitIfAvailable`, holding `permits` permits (`InvalidPermits` above `max`). */
  readonly withPermitsIfAvailable: (
    permits: number,
    options?: PermitOptions
  ) => <A, E1, R>(self: Effect.Effect<A, E1, R>) => Effect.Effect<Option.Option<A>, E1 | InvalidPermits | E, R>
  /**
   * Takes permits (default 1) if they are free now, never waiting: `true`
   * means the worker owns them until `release` names it (or the pool
   * closes): give both calls the same `worker` when they run on different
   * fibers. While callers are queued, or once the pool is closed: `false`.
   */
  readonly tryAcquire: (permits?: number, options?: PermitOptions) => Effect.Effect<boolean, InvalidPermits | E>
  /**
   * Gives back permits (default 1) that `tryAcquire` gave the worker, oldest
   * take first (a larger take is split, the rest stays held), in one step.
   * `PermitNotHeld`, changing nothing, if the worker holds fewer.
   */
  readonly release: (
    permits?: number,
    options?: PermitOptions
  ) => Effect.Effect<void, PermitNotHeld | InvalidPermits | E>
  /**
   * Takes permits (default 1), waiting like `withPermit`, and holds them
   * until the current scope closes. Answers what the source granted (a
   * lease), or `undefined`; each pool's module says what it answers.
   */
  readonly acquire: (
    permits?: number,
    options?: PermitOptions
  ) => Effect.Effect<unknown, PoolRejected | InvalidPermits | E, Scope.Scope>
  /**
   * Changes the number of permits. Growing admits queued callers at once;
   * shrinking takes no permit back (queued callers asking for more than the
   * new `max` are turned away with `InvalidPermits`). `InvalidPoolSize`,
   * changing nothing, for a bad `max`; a closed pool keeps its size.
   */
  readonly resize: (max: number) => Effect.Effect<void, InvalidPoolSize | E>
  /**
   * Every transition from the moment the stream starts running, in order,
   * until the pool closes. A consumer forked with `{ startImmediately: true }`
   * is subscribed before the fork returns.
   */
  readonly events: Stream.Stream<Event>
  /**
   * Subscribes now and returns the stream of every later transition. A
   * subscriber that falls 4,096 events behind loses the oldest ones (counted
   * in `stats.dropped`), so one that stalls cannot hold memory without bound.
   */
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
    acquired: totals.Acquired,
    rejected: totals.Rejected,
    released: totals.Released,
    queued: totals.Queued,
    timedOut: totals.TimedOut,
    abandoned: totals.Abandoned,
    dropped: ledger.dropped
  }
}

// What a call does once it holds its permits.
const Work = 0 // run the effect (`withPermit`)
const Maybe = 1 // run it, answering `Some` (`withPermitIfAvailable`)
const Scoped = 2 // keep them for the scope (`acquire`)
const ByHand = 3 // keep them by hand (`tryAcquire`)
type Mode = typeof Work | typeof Maybe | typeof Scoped | typeof ByHand

const isRejection = (error: unknown): error is PoolRejected => error instanceof PoolRejected

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
  const ledger = yield* Ledger.make(eventBuffer, clock, options.holdSampling)
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
  const spans = {
    [Work]: `${hooks.span}.withPermit`,
    [Maybe]: `${hooks.span}.withPermitIfAvailable`,
    [Scoped]: `${hooks.span}.acquire`,
    [ByHand]: `${hooks.span}.tryAcquire`
  }

  // A count of permits a call may ask for now: a positive safe integer no
  // larger than `max` (more could never be given).
  const invalidPermits = (permits: number): InvalidPermits | undefined =>
    Number.isSafeInteger(permits) && permits >= 1 && permits <= engine.max
      ? undefined
      : new InvalidPermits({ permits, max: engine.max })

  // What a caller goes on with once it holds its permits.
  const holding = <A, E1, R1>(
    caller: Caller,
    mode: Mode,
    self: Effect.Effect<A, E1, R1>
  ): Effect.Effect<unknown, E1 | E, R1 | Scope.Scope> => {
    switch (mode) {
      case Work:
        return hooks.hold(caller, self)
      case Maybe:
        return Effect.asSome(hooks.hold(caller, self))
      case Scoped: {
        engine.keepInScope(caller)
        hooks.kept(caller, caller.fiber)
        // Still inside the exit frame: given back if this is interrupted.
        return Effect.flatMap(Effect.scope, (scope) =>
          Effect.as(
            Scope.addFinalizer(
              scope,
              Effect.suspend(() => {
                engine.release(caller)
                return Effect.ignore(hooks.released(caller) ?? Effect.void)
              })
            ),
            caller instanceof Asker ? caller.grant : undefined
          )
        )
      }
      case ByHand:
        engine.keepByHand(caller)
        hooks.kept(caller, undefined)
        return Effect.succeed(true)
    }
  }

  // A caller the pool turned away: a rejection, `None`, or `false`.
  const turnedAway = (worker: WorkerId, mode: Mode): Effect.Effect<unknown, PoolRejected> =>
    mode === Maybe ? Effect.succeedNone : mode === ByHand ? Effect.succeed(false) : Effect.fail(engine.refused_(worker))

  // Parks a queued caller until it is granted its permits (then goes on with
  // `then`), turned away, or `maxWait` passes.
  // (`then` runs on the caller's own fiber, whose context it was built for.)
  const waitThen = (caller: Caller, then: Effect.Effect<unknown, unknown>): Effect.Effect<unknown, unknown> => {
    // A source may have answered already (turned it away: `then` is its failure).
    const waiting = caller.status === Waiting || caller.status === Asking
    if (maxWait === undefined && !(caller instanceof Asker)) {
      // One callback: the engine resumes it straight into `then`, or with
      // its failure.
      if (waiting) caller.continuation = then
      return Effect.callback((resume) => {
        if (caller.status === Waiting) caller.resume = resume
        else resume(caller.continuation as Effect.Effect<unknown, unknown>)
      })
    }
    // Woken to look again at its status.
    if (waiting) caller.continuation = undefined
    if (caller instanceof Asker) return waitAsking(caller, then)
    const parked = Effect.callback<unknown, unknown>((resume) => {
      if (caller.status === Waiting) caller.resume = resume
      else resume(Effect.void)
    })
    return Effect.flatMap(Effect.timeoutOption(parked, maxWait as Duration.Duration), () => settled(caller, then))
  }

  const settled = (caller: Caller, then: Effect.Effect<unknown, unknown>) => {
    if (caller.status === Refused) return caller.continuation as Effect.Effect<unknown, unknown>
    const rejected = engine.settle(caller)
    return rejected === undefined ? then : Effect.fail(rejected)
  }

  // A source that must be asked: a newcomer waits here for the answer to its
  // ask, and the head of the queue asks again at its poll.
  const waitAsking = (caller: Asker, then: Effect.Effect<unknown, unknown>) =>
    Effect.clockWith((clock) => {
      const now = () => clock.currentTimeMillisUnsafe()
      const deadline = maxWait === undefined ? Number.POSITIVE_INFINITY : now() + Duration.toMillis(maxWait)
      // Parked until its source answers: the answer may have come before it
      // parks (a scheduler slice ended in between).
      const answered = Effect.callback<unknown, unknown>((resume) => {
        if (caller.status === Asking) caller.resume = resume
        else resume(Effect.void)
      })
      const step: Effect.Effect<unknown, unknown> = Effect.suspend(() => {
        if (caller.status !== Waiting && caller.status !== Asking) return settled(caller, then)
        // Waiting for its source's answer: nothing to time.
        if (caller.status === Asking) return Effect.andThen(answered, step)
        const at = now()
        if (at >= deadline) return settled(caller, then)
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
        const queued = Effect.callback<unknown, unknown>((resume) => {
          if (caller.status === Waiting && caller.asking === asking) caller.resume = resume
          else resume(Effect.void)
        })
        return Effect.andThen(Number.isFinite(until) ? Effect.timeoutOption(queued, until - at) : queued, step)
      })
      return step
    })

  // Every call: turned away at once when the pool would turn it away (no
  // frame needed: it takes nothing); otherwise its exit frame first and the
  // admission inside it.
  const call = <A, E1, R1>(
    self: Effect.Effect<A, E1, R1>,
    permits: number,
    worker: WorkerId | undefined,
    mode: Mode,
    traced: boolean
  ): Effect.Effect<unknown, unknown, R1> =>
    Effect.withFiber((fiber): Effect.Effect<unknown, unknown, R1> => {
      const label = worker ?? (fiber.id as WorkerId)
      if (!traced && Observability.isTracing(fiber)) {
        return Observability.spanned(spans[mode], name, label, call(self, permits, label, mode, true))
      }
      if (permits !== 1) {
        const invalid = invalidPermits(permits)
        if (invalid !== undefined) return Effect.fail(invalid)
      }
      const unfit = hooks.check?.(label)
      if (unfit !== undefined) return Effect.fail(unfit)
      const wait = mode === Work || mode === Scoped
      if (!engine.admits(permits, wait)) {
        engine.reject(label, permits, wait)
        return turnedAway(label, mode)
      }
      const holder = mode === ByHand ? undefined : fiber
      const work = self as Effect.Effect<unknown, unknown>
      return guarded(
        source.asks ? new Asker(label, permits, holder, work) : new Caller(label, permits, holder, work),
        mode
      ) as Effect.Effect<unknown, unknown, R1>
    })

  // One function is both the admission (run by `suspend`, with no
  // argument) and the exit frame (run with the exit): a queued caller keeps
  // one closure, not two, for as long as it waits. The caller carries its
  // work in `then`.
  const guarded = (caller: Caller, mode: Mode): Effect.Effect<unknown, unknown> => {
    const step = (exit?: Exit.Exit<unknown, unknown>) =>
      exit === undefined ? admit(caller, mode) : exited(caller, mode, exit)
    return Effect.onExitPrimitive(Effect.suspend(step as () => Effect.Effect<unknown, unknown>), step)
    // Not `interruptible: true`: an interrupted fiber unwinds past every
    // frame that leaves it interruptible, and the permits would stay taken.
  }

  // Inside the exit frame: the caller enters.
  const admit = (caller: Caller, mode: Mode): Effect.Effect<unknown, unknown> => {
    const self = caller.continuation as Effect.Effect<unknown, unknown>
    if (!engine.enter(caller, mode === Work || mode === Scoped)) return turnedAway(caller.worker, mode)
    // (The requirements of the work are the call's: see `call`.)
    if (caller.status === Granted) {
      // A local count's work goes as it is (nothing to hold but the count).
      return mode === Work && !source.asks ? self : (holding(caller, mode, self) as Effect.Effect<unknown, unknown>)
    }
    // Decided once granted (a local count's work needs no deciding).
    const then =
      mode === Work && !source.asks
        ? self
        : Effect.suspend(() => holding(caller, mode, self) as Effect.Effect<unknown, unknown>)
    const waited = waitThen(caller, then)
    // Asking a store for a call that may not wait: its rejection is `None` or `false`.
    return mode === Maybe || mode === ByHand
      ? Effect.catchIf(
          waited,
          // The pool's own refusal, not one the work (which runs granted) failed with.
          (error) => isRejection(error) && caller.status !== Granted,
          () => turnedAway(caller.worker, mode)
        )
      : waited
  }

  // The exit frame: permits held come back, a place in the queue is left.
  const exited = (caller: Caller, mode: Mode, exit: Exit.Exit<unknown, unknown>) => {
    const status = caller.status
    // Kept for a scope, or by hand: theirs to give back from now on.
    if ((mode === Scoped || mode === ByHand) && Exit.isSuccess(exit)) return undefined
    if (status === Granted) {
      engine.release(caller)
      return source.asks ? hooks.released(caller) : undefined
    }
    if (status === Waiting || status === Asking) engine.leave(caller)
    return undefined
  }

  const withPermits =
    (permits: number, options?: PermitOptions) =>
    <A, E1, R1>(self: Effect.Effect<A, E1, R1>) =>
      call(self, permits, options?.worker, Work, false) as Effect.Effect<A, E1 | PoolRejected | InvalidPermits | E, R1>

  const withPermitsIfAvailable =
    (permits: number, options?: PermitOptions) =>
    <A, E1, R1>(self: Effect.Effect<A, E1, R1>) =>
      call(self, permits, options?.worker, Maybe, false) as Effect.Effect<Option.Option<A>, E1 | InvalidPermits | E, R1>

  const acquire = (permits = 1, options?: PermitOptions) =>
    call(Effect.void, permits, options?.worker, Scoped, false) as Effect.Effect<
      unknown,
      PoolRejected | InvalidPermits | E,
      Scope.Scope
    >

  const tryAcquire = (permits = 1, options?: PermitOptions): Effect.Effect<boolean, InvalidPermits | E> => {
    if (source.asks)
      return call(Effect.void, permits, options?.worker, ByHand, false) as Effect.Effect<boolean, InvalidPermits | E>
    // A local count answers on the spot: nothing can come between (in a
    // span, when traced, as every call).
    return Effect.withFiber((fiber): Effect.Effect<boolean, InvalidPermits | E> => {
      if (Observability.isTracing(fiber)) {
        return call(Effect.void, permits, options?.worker, ByHand, false) as Effect.Effect<boolean, InvalidPermits | E>
      }
      if (permits !== 1) {
        const invalid = invalidPermits(permits)
        if (invalid !== undefined) return Effect.fail(invalid)
      }
      const worker = options?.worker ?? (fiber.id as WorkerId)
      if (!engine.admits(permits, false)) {
        engine.reject(worker, permits, false)
        return Effect.succeed(false)
      }
      const caller = new Caller(worker, permits, undefined, undefined)
      engine.enter(caller, false)
      engine.keepByHand(caller)
      return Effect.succeed(true)
    })
  }

  const release = (permits = 1, options?: PermitOptions): Effect.Effect<void, PermitNotHeld | InvalidPermits | E> =>
    Effect.suspend((): Effect.Effect<void, PermitNotHeld | InvalidPermits | E> => {
      const worker = options?.worker ?? (Fiber.getCurrent()?.id as WorkerId)
      if (!Number.isSafeInteger(permits) || permits < 1)
        return Effect.fail(new InvalidPermits({ permits, max: engine.max }))
      if (engine.heldByHand(worker) < permits) return Effect.fail(new PermitNotHeld({ worker }))
      const returning: Array<Effect.Effect<void, E>> = []
      for (const caller of engine.releaseByHand(worker, permits)) {
        const returned = hooks.released(caller)
        if (returned !== undefined) returning.push(returned)
      }
      return returning.length === 0 ? Effect.void : Effect.all(returning, { discard: true })
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
    withPermit: (self, options) => call(self, 1, options?.worker, Work, false) as never,
    withPermits,
    withPermitIfAvailable: (self, options) => call(self, 1, options?.worker, Maybe, false) as never,
    withPermitsIfAvailable,
    tryAcquire,
    release,
    acquire,
    resize: (max) => {
      if (!isPoolSize(max)) return Effect.fail(new InvalidPoolSize({ max }))
      const refused = hooks.resizable(max)
      if (refused !== undefined) return Effect.fail(refused)
      // A closed pool keeps the size it closed with.
      return Effect.sync(() => {
        if (!engine.closed) {
          engine.resize(max, (caller) => Cause.fail(new InvalidPermits({ permits: caller.permits, max })))
        }
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

/** What a local count adds in effects: nothing. */
export const local = (): Effect.Effect<Hooks<never>> =>
  Effect.succeed<Hooks<never>>({
    span: "CoroutinePool",
    format: formatEvent as (event: Ledger.Event) => string,
    hold: (_, self) => self,
    kept: () => {},
    check: undefined,
    released: () => undefined,
    closing: Effect.void,
    resizable: () => undefined
  })
