/**
 * One limit across many processes: a `CoroutinePool` whose permits are leases
 * in a {@link PoolStore.PoolStore}.
 *
 * Every process that makes a shared pool with the same `key` (and `max`)
 * against the same store shares one limit of `max` permits. With
 * `PoolStore.layerStoreRedis` that is every replica of a service; with
 * `PoolStore.layerStoreMemory`, every pool of one process.
 *
 * @since 0.2.0
 */

import * as Channel from "effect/Channel"
import type * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Take from "effect/Take"
import * as CoroutinePool from "./CoroutinePool.ts"
import * as Metrics from "./internal/metrics.ts"
import * as Observability from "./internal/observability.ts"
import * as Decode from "./internal/options.ts"
import * as PoolStore from "./PoolStore.ts"

/**
 * What a shared pool's operations may fail with besides `PoolRejected` and
 * the work's own errors: the store failed (`PoolStoreError`), replicas
 * disagree on `max` or `ttl` (`PoolConfigMismatch`), a held lease was lost (`LeaseLost`,
 * from `withPermit` and `withPermitWaiting`), or a worker id cannot be stored
 * (`InvalidStoreOption`).
 *
 * @since 0.2.0
 * @category errors
 */
export type SharedPoolError =
  | PoolStore.PoolStoreError
  | PoolStore.PoolConfigMismatch
  | PoolStore.LeaseLost
  | PoolStore.InvalidStoreOption

/**
 * What {@link make} takes: a `CoroutinePool`'s options plus the pool's `key`
 * in the store. (`timing` has no effect: a shared pool keeps no wait or hold
 * histograms; `name` defaults to the key.)
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends CoroutinePool.Options {
  /** Which pool in the store: 1 to 128 characters of `A-Z a-z 0-9 . _ : -`. */
  readonly key: string
  /**
   * How long a lease lives without renewal, from 30 milliseconds to one hour
   * (whole milliseconds; a fraction is dropped). A holder renews every third
   * of it; a crashed process's permits come back after it; after a data loss
   * the store refuses grants for one TTL. Part of the key's contract, like
   * `max`: every process of a key must use the same. Default 10 seconds.
   */
  readonly ttl?: Duration.Input | undefined
  /**
   * What to do when the store cannot be reached or does not answer in time
   * (the words of Effect's `CircuitBreaker`): `"fail"` (default: fail
   * closed) fails with `PoolStoreError`; `"allow"` (fail open) admits
   * without a lease, still bounded by `max` in this process. A store that
   * answers with a refusal (out of memory, say) is never overruled.
   */
  readonly onStoreError?: "fail" | "allow" | undefined
  /**
   * How often a queued caller asks the store again, from 1 millisecond to
   * one minute: sooner when the store says a lease ends sooner, and at once
   * when this process frees a permit or closes. Default 50 milliseconds.
   */
  readonly poll?: Duration.Input | undefined
}

// A permit this process holds. `lease` is undefined for a fail-open admission.
interface Holder {
  readonly worker: CoroutinePool.WorkerId
  readonly lease: PoolStore.Lease | undefined
  // Monotonic millis at which the acquire that granted it was sent: the lease
  // cannot end on the server before sent + ttl.
  readonly sent: number
  ended: boolean
  // The fiber running the work under `withPermit`: interrupted when the pool closes.
  owner: Fiber.Fiber<unknown, unknown> | undefined
  keepAlive: Fiber.Fiber<unknown, unknown> | undefined
}

// A caller of `withPermitWaiting` or `acquire`, counted while it is queued.
interface Waiter {
  readonly worker: CoroutinePool.WorkerId
  queued: boolean
}

type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/**
 * The lease the current `withPermit` / `withPermitWaiting` work holds, or
 * `undefined` outside one (and for a fail-open admission, which has none).
 *
 * **When to use**
 *
 * To fence: pass `lease.fence` to the downstream you protect and let it refuse
 * any request whose token is smaller than the largest it has seen. A holder
 * that lost its lease (a long pause, say) then cannot act after its
 * successor, which is the only way to make "at most `max`" strict.
 *
 * **Example** (Sending the fencing token along)
 *
 * ```ts
 * import { Effect } from "effect"
 * import type { CoroutinePool } from "coroutine-pool"
 * import { SharedPool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool<SharedPool.SharedPoolError>
 * declare const writeLedger: (fence: number) => Effect.Effect<void>
 *
 * const guarded = pool.withPermit("ledger")(
 *   Effect.gen(function*() {
 *     const lease = yield* SharedPool.CurrentLease
 *     yield* writeLedger(lease?.fence ?? 0)
 *   })
 * )
 * ```
 *
 * @since 0.2.0
 * @category references
 */
export const CurrentLease: Context.Reference<PoolStore.Lease | undefined> = Context.Reference<
  PoolStore.Lease | undefined
>("coroutine-pool/SharedPool/CurrentLease", { defaultValue: () => undefined })

/**
 * Makes a pool whose permits are leases in the {@link PoolStore.PoolStore}
 * under `key`. It has the `CoroutinePool` API and events; it closes with its
 * scope, returning every lease it holds.
 *
 * **When to use**
 *
 * When several processes must share one limit (at most `max` calls to a
 * payment provider across every replica), with `PoolStore.layerStoreRedis`.
 *
 * **Details**
 *
 * - Each admission takes a lease with a fencing token; a renewal fiber
 *   extends it every `ttl / 3`. When a renewal finds the lease gone, or no
 *   renewal was confirmed before its local deadline (measured from when the
 *   acquire was sent, so it always falls before the store's), the work
 *   under `withPermit` is interrupted and fails with `LeaseLost`; a permit
 *   held by `acquire` interrupts the fiber that took it; a `tryAcquire`
 *   permit is dropped. Each publishes `Lost`.
 * - Events carry the holders across all processes as the store last
 *   reported them (`active`) and this process's queue (`waiting`); `stats`
 *   and `active` count this process's permits.
 * - Queued callers ask the store again every `poll`, and at once when this
 *   process frees a permit: there is no FIFO order, whoever asks first after
 *   a permit frees gets it. `resize` cannot change a shared `max`: it fails with
 *   `PoolConfigMismatch` unless given the same `max`.
 * - Metrics: the in-process pool's series (labelled with `name`, default
 *   the key) but the wait and hold histograms, plus
 *   `coroutine_pool_lost_total` and `rejected{reason="warming"}`. Spans
 *   `SharedPool.withPermit` / `.withPermitWaiting` (outcome `lost` when the
 *   lease was lost) and Debug logs as for the in-process pool.
 *
 * **Example** (One limit for every replica)
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Config, Effect, Layer } from "effect"
 * import { PoolStore, SharedPool } from "coroutine-pool"
 *
 * declare const charge: Effect.Effect<string>
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* SharedPool.make({ key: "payments", max: 10, ttl: "10 seconds" })
 *   return yield* pool.withPermit("charge")(charge)
 * }).pipe(
 *   Effect.scoped,
 *   Effect.provide(
 *     PoolStore.layerStoreRedis().pipe(Layer.provide(NodeRedis.layerConfig({ url: Config.String("REDIS_URL") })))
 *   )
 * )
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  options: Options
): Effect.fn.Return<
  CoroutinePool.CoroutinePool<SharedPoolError>,
  CoroutinePool.InvalidPoolSize | CoroutinePool.InvalidPoolOption | PoolStore.InvalidStoreOption,
  Scope.Scope | PoolStore.PoolStore
> {
  const key = yield* PoolStore.validateName("key", options.key)
  const { max, maxWaiting, maxWait, name } = yield* CoroutinePool.checkOptions({
    ...options,
    name: options.name ?? key
  })
  const ttl = yield* decodeMillis("ttl", options.ttl ?? "10 seconds", Decode.ttlBounds)
  const poll = yield* decodeMillis("poll", options.poll ?? "50 millis", { min: 1, max: 60_000 })
  const onStoreError = options.onStoreError ?? "fail"
  if (onStoreError !== "fail" && onStoreError !== "allow") {
    return yield* new CoroutinePool.InvalidPoolOption({ option: "onStoreError", value: options.onStoreError })
  }
  const failOpen = onStoreError === "allow"
  const store = yield* PoolStore.PoolStore
  const scope = yield* Effect.scope
  const clock: Clock.Clock = yield* Effect.clockWith(Effect.succeed)
  const now = () => Number(clock.monotonicTimeNanosUnsafe()) / 1e6
  const pubsub = yield* PubSub.unbounded<Take.Take<CoroutinePool.PoolEvent>>()

  let closed = false
  let active = 0
  let waiting = 0
  // Holders across all processes, as the store last reported them.
  let holders = 0
  let warmingUntil = -Infinity
  let listeners = 0
  const totals = { Acquired: 0, Rejected: 0, Released: 0, Queued: 0, TimedOut: 0, Abandoned: 0, Lost: 0 }
  // Callers of `withPermitWaiting` and `acquire` queued right now.
  const queue = new Set<Waiter>()
  const unqueue = (waiter: Waiter) => {
    waiter.queued = false
    waiting--
    queue.delete(waiter)
  }
  // Completed (and replaced) whenever this process gives a permit back or
  // loses one, so its own queued callers ask the store again at once rather
  // than at their next poll. Other processes' releases are seen by polling.
  let freed = Deferred.makeUnsafe<void>()
  const signalFreed = () => {
    const signal = freed
    freed = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(signal, Exit.void)
  }
  // Rejections by reason, for the metrics (timeouts are counted as TimedOut).
  const refused = { full: 0, "queue-full": 0, closed: 0, warming: 0 }
  const held = new Set<Holder>()
  // Permits taken with `tryAcquire`, by worker, oldest first.
  const manual = new Map<CoroutinePool.WorkerId, Array<Holder>>()

  const publish = (_tag: keyof typeof totals, worker: CoroutinePool.WorkerId) => {
    totals[_tag]++
    if (listeners > 0) PubSub.publishUnsafe(pubsub, [{ _tag, worker, active: holders, max, waiting }])
  }

  // A caller turned away at once (closed pools count their own, silently).
  const refuse = (rejected: CoroutinePool.PoolRejected) => {
    if (rejected.reason === "closed") return
    if (rejected.reason !== "timeout") refused[rejected.reason]++
    publish("Rejected", rejected.worker)
  }

  const rejection = (
    worker: CoroutinePool.WorkerId,
    reason: CoroutinePool.PoolRejected["reason"],
    retryAfter?: number
  ) => new CoroutinePool.PoolRejected({ worker, reason, active: holders, max, retryAfter })

  const checkWorker = (worker: CoroutinePool.WorkerId) =>
    PoolStore.isValidWorker(worker)
      ? Effect.void
      : Effect.fail(new PoolStore.InvalidStoreOption({ option: "worker", value: worker }))

  const grant = (worker: CoroutinePool.WorkerId, lease: PoolStore.Lease | undefined, sent: number, waiter?: Waiter) => {
    if (waiter?.queued) unqueue(waiter)
    active++
    const holder: Holder = { worker, lease, sent, ended: false, owner: undefined, keepAlive: undefined }
    held.add(holder)
    publish("Acquired", worker)
    return holder
  }

  // One question to the store. Runs uninterruptibly but for the store call,
  // which cleans up after itself when interrupted, so a granted lease always
  // becomes a holder.
  const attempt = (
    worker: CoroutinePool.WorkerId,
    restore: Restore,
    waiter?: Waiter
  ): Effect.Effect<Holder | CoroutinePool.PoolRejected, PoolStore.PoolStoreError | PoolStore.PoolConfigMismatch> =>
    // Decided when it runs, not when it is built: a waiter builds its next
    // attempt before it sleeps.
    Effect.suspend(() => {
      // Like the in-process pool, a closed pool turns callers away without
      // an event (its stream has ended): only the metric counts them.
      if (closed) {
        refused.closed++
        return Effect.succeed(rejection(worker, "closed"))
      }
      if (active >= max) return Effect.succeed(rejection(worker, "full"))
      const sent = now()
      return restore(store.acquire({ key, max, ttl })).pipe(
        Effect.flatMap((admission): Effect.Effect<Holder | CoroutinePool.PoolRejected> => {
          if (admission._tag === "Granted") {
            holders = admission.holders
            // The pool closed while the acquire was in flight: give it back.
            if (closed) {
              refused.closed++
              return Effect.as(
                Effect.forkDetach(Effect.ignore(store.release({ key, lease: admission.lease }))),
                rejection(worker, "closed")
              )
            }
            return Effect.succeed(grant(worker, admission.lease, sent, waiter))
          }
          if (admission._tag === "Full") {
            holders = admission.holders
            return Effect.succeed(rejection(worker, "full", admission.retryAfter))
          }
          if (sent >= warmingUntil) {
            warmingUntil = sent + admission.retryAfter
            if (listeners > 0) {
              PubSub.publishUnsafe(pubsub, [
                { _tag: "Warming", retryAfter: admission.retryAfter, active: holders, max, waiting }
              ])
            }
          }
          return Effect.succeed(rejection(worker, "warming", admission.retryAfter))
        }),
        Effect.catchTag("PoolStoreError", (error) =>
          failOpen && error.reason !== "refused" && !closed && active < max
            ? Effect.succeed(grant(worker, undefined, sent, waiter))
            : Effect.fail(error)
        )
      )
    })

  // Ends a holder's permit once: counts it, gives the lease back, publishes
  // `Released` (or nothing more, when the lease was already lost).
  const end = (holder: Holder): Effect.Effect<void, PoolStore.PoolStoreError> => {
    if (holder.ended) return Effect.void
    holder.ended = true
    held.delete(holder)
    active--
    const keepAlive = holder.keepAlive === undefined ? Effect.void : Fiber.interrupt(holder.keepAlive)
    if (holder.lease === undefined) {
      return Effect.andThen(
        keepAlive,
        Effect.sync(() => {
          publish("Released", holder.worker)
          signalFreed()
        })
      )
    }
    return keepAlive.pipe(
      Effect.andThen(store.release({ key, lease: holder.lease })),
      Effect.tap((left) =>
        Effect.sync(() => {
          if (left >= 0) holders = left
        })
      ),
      Effect.ensuring(
        Effect.sync(() => {
          publish("Released", holder.worker)
          signalFreed()
        })
      ),
      Effect.asVoid
    )
  }

  const lose = (holder: Holder, reason: PoolStore.LeaseLost["reason"]): Effect.Effect<never, PoolStore.LeaseLost> => {
    // Already given back (its release raced this renewal): just stop renewing.
    if (holder.ended) return Effect.interrupt
    const error = new PoolStore.LeaseLost({ key, worker: holder.worker, fence: holder.lease?.fence ?? 0, reason })
    holder.ended = true
    held.delete(holder)
    active--
    const permits = manual.get(holder.worker)
    if (permits !== undefined) {
      const index = permits.indexOf(holder)
      if (index >= 0) permits.splice(index, 1)
      if (permits.length === 0) manual.delete(holder.worker)
    }
    publish("Lost", holder.worker)
    signalFreed()
    // Past our deadline the store may still hold it (renewals were failing):
    // give it back so the slot frees now rather than at the store's deadline.
    const giveBack =
      reason === "deadline" && holder.lease !== undefined
        ? Effect.forkDetach(Effect.ignore(store.release({ key, lease: holder.lease })))
        : Effect.void
    return Effect.andThen(giveBack, Effect.fail(error))
  }

  // Renews a lease every ttl / 3 until interrupted; fails with `LeaseLost`
  // when the store says it is gone or no renewal was confirmed in time.
  const keepAlive = (holder: Holder, lease: PoolStore.Lease): Effect.Effect<never, PoolStore.LeaseLost> => {
    const every = Math.max(1, Math.floor(ttl / 3))
    let confirmed = holder.sent
    let next = holder.sent + every
    const step: Effect.Effect<void, PoolStore.LeaseLost> = Effect.suspend(() => {
      const at = now()
      const left = confirmed + ttl - at
      if (left <= 0) return lose(holder, "deadline")
      if (at < next) return Effect.sleep(Duration.millis(Math.min(next - at, left)))
      return store.renew({ key, lease }).pipe(
        Effect.timeoutOption(Duration.millis(left)),
        Effect.option,
        Effect.flatMap((answer) => {
          const renewed = Option.flatten(answer)
          if (Option.isSome(renewed) && !renewed.value) return lose(holder, "missing")
          if (Option.isSome(renewed)) {
            confirmed = at
            next = at + every
          } else {
            // The store failed or was slow: try again soon, until the deadline.
            next = now() + Math.min(every, 100)
          }
          return Effect.void
        })
      )
    })
    return Effect.forever(step)
  }

  // Runs the work holding `holder`, racing it against the lease's renewal.
  const runHolding = <A, E, R>(
    holder: Holder,
    restore: Restore,
    self: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | SharedPoolError, R> => {
    holder.owner = Fiber.getCurrent()
    const guarded =
      holder.lease === undefined
        ? self
        : Effect.raceFirst(Effect.provideService(self, CurrentLease, holder.lease), keepAlive(holder, holder.lease))
    return Effect.onExit(restore(guarded), () => Effect.ignore(end(holder)))
  }

  // Keeps a permit that no effect encloses (`tryAcquire`, `acquire`) alive
  // from a fiber of the pool's scope.
  const keepInBackground = (holder: Holder, onLost: () => void) =>
    holder.lease === undefined
      ? Effect.void
      : Effect.map(
          Effect.forkIn(
            keepAlive(holder, holder.lease).pipe(Effect.catchTag("LeaseLost", () => Effect.sync(onLost))),
            scope,
            { startImmediately: true }
          ),
          (fiber) => {
            holder.keepAlive = fiber
          }
        )

  // Waits for a permit the way `withPermitWaiting` does.
  const waitFor = (
    worker: CoroutinePool.WorkerId,
    restore: Restore
  ): Effect.Effect<Holder, CoroutinePool.PoolRejected | PoolStore.PoolStoreError | PoolStore.PoolConfigMismatch> => {
    const waiter: Waiter = { worker, queued: false }
    const leave = (_tag: "TimedOut" | "Abandoned") => {
      if (!waiter.queued) return
      unqueue(waiter)
      publish(_tag, worker)
    }
    const deadline = maxWait === undefined ? Infinity : now() + Duration.toMillis(maxWait)
    const loop = (
      first: boolean
    ): Effect.Effect<Holder, CoroutinePool.PoolRejected | PoolStore.PoolStoreError | PoolStore.PoolConfigMismatch> =>
      Effect.flatMap(attempt(worker, restore, waiter), (answer) => {
        if (!(answer instanceof CoroutinePool.PoolRejected)) return Effect.succeed(answer)
        if (answer.reason === "closed") {
          leave("Abandoned")
          return Effect.fail(answer)
        }
        if (first) {
          if (maxWaiting === 0 || waiting >= maxWaiting) {
            const rejected = maxWaiting === 0 ? answer : rejection(worker, "queue-full", answer.retryAfter)
            refuse(rejected)
            return Effect.fail(rejected)
          }
          waiter.queued = true
          waiting++
          queue.add(waiter)
          publish("Queued", worker)
        }
        const left = deadline - now()
        if (left <= 0) {
          leave("TimedOut")
          return Effect.fail(rejection(worker, "timeout", answer.retryAfter))
        }
        const pause = Math.max(1, Math.min(poll, answer.retryAfter ?? poll, left))
        // Wakes at the next poll, or at once when this process frees a permit.
        const woken = Effect.raceFirst(Effect.sleep(Duration.millis(pause)), Deferred.await(freed))
        return Effect.andThen(restore(woken), loop(false))
      })
    return loop(true).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          if (Exit.isFailure(exit)) leave("Abandoned")
        })
      )
    )
  }

  // Checks the worker id, then runs `effect` in a span when a tracing
  // backend is installed (see the in-process pool).
  const observed = <A, E, R>(
    span: string,
    worker: CoroutinePool.WorkerId,
    effect: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | PoolStore.InvalidStoreOption, R> =>
    Effect.withFiber((fiber) => {
      const checked = Effect.andThen(checkWorker(worker), effect)
      return Observability.isTracing(fiber) ? Observability.spanned(span, name, worker, checked) : checked
    })

  const withPermit =
    (worker: CoroutinePool.WorkerId) =>
    <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | CoroutinePool.PoolRejected | SharedPoolError, R> =>
      observed(
        "SharedPool.withPermit",
        worker,
        Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(
            attempt(worker, restore),
            (answer): Effect.Effect<A, E | CoroutinePool.PoolRejected | SharedPoolError, R> => {
              if (answer instanceof CoroutinePool.PoolRejected) {
                refuse(answer)
                return Effect.fail(answer)
              }
              return runHolding(answer, restore, self)
            }
          )
        )
      )

  const withPermitWaiting =
    (worker: CoroutinePool.WorkerId) =>
    <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | CoroutinePool.PoolRejected | SharedPoolError, R> =>
      observed(
        "SharedPool.withPermitWaiting",
        worker,
        Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(waitFor(worker, restore), (holder) => runHolding(holder, restore, self))
        )
      )

  const tryAcquire = (worker: CoroutinePool.WorkerId): Effect.Effect<boolean, SharedPoolError> =>
    Effect.andThen(
      checkWorker(worker),
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(attempt(worker, restore), (answer) => {
          if (answer instanceof CoroutinePool.PoolRejected) {
            refuse(answer)
            return Effect.succeed(false)
          }
          const permits = manual.get(worker)
          if (permits === undefined) manual.set(worker, [answer])
          else permits.push(answer)
          return Effect.as(
            keepInBackground(answer, () => undefined),
            true
          )
        })
      )
    )

  const release = (
    worker: CoroutinePool.WorkerId
  ): Effect.Effect<void, CoroutinePool.PermitNotHeld | SharedPoolError> =>
    Effect.uninterruptible(
      Effect.suspend((): Effect.Effect<void, CoroutinePool.PermitNotHeld | SharedPoolError> => {
        const permits = manual.get(worker)
        const holder = permits?.shift()
        if (holder === undefined) return Effect.fail(new CoroutinePool.PermitNotHeld({ worker }))
        if (permits?.length === 0) manual.delete(worker)
        return end(holder)
      })
    )

  const acquire = (
    worker: CoroutinePool.WorkerId
  ): Effect.Effect<void, CoroutinePool.PoolRejected | SharedPoolError, Scope.Scope> =>
    Effect.andThen(
      checkWorker(worker),
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(waitFor(worker, restore), (holder) => {
          // Lost, the permit takes the scope's owner down with it; at the
          // pool's close it is only given back, like an in-process pool's.
          const owner = Fiber.getCurrent()
          return Effect.andThen(
            Effect.addFinalizer(() => Effect.ignore(end(holder))),
            keepInBackground(holder, () => owner?.interruptUnsafe())
          )
        })
      )
    )

  const subscribe = Effect.uninterruptible(
    Effect.gen(function* () {
      listeners++
      yield* Effect.addFinalizer(() => Effect.sync(() => listeners--))
      const subscription = yield* PubSub.subscribe(pubsub)
      return Stream.fromChannel(Channel.fromEffectTake(PubSub.take(subscription)))
    })
  )

  // The same series as an in-process pool's, plus lost leases and warm-up
  // refusals; the wait and hold histograms are not kept.
  // What the metrics registry and `stats` read.
  const figures: Metrics.SharedSource = {
    get active() {
      return active
    },
    get waiting() {
      return waiting
    },
    max,
    maxWaiting,
    totals,
    refused
  }
  const registrations = Metrics.register(figures, undefined, name, yield* Effect.context<never>())
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const registration of registrations) registration.remove()
    })
  )
  // With Debug logs enabled when the pool is made, every transition is
  // logged at Debug, annotated, from a subscriber that closing drains.
  const logger = (yield* LogLevel.isEnabled("Debug"))
    ? yield* Observability.logEvents(yield* subscribe, name, CoroutinePool.formatEvent)
    : undefined
  yield* Effect.addFinalizer(() =>
    Effect.withFiber((current) => {
      closed = true
      // Queued callers are turned away now (each fails with "closed" when it
      // next wakes), so their `Abandoned` events come before the stream ends.
      for (const waiter of queue) {
        unqueue(waiter)
        publish("Abandoned", waiter.worker)
      }
      // ...and woken now, rather than at their next poll.
      signalFreed()
      // Permits of `tryAcquire` are given back below: `release` now answers
      // `PermitNotHeld`, as the in-process pool's does.
      manual.clear()
      const owners = new Set<Fiber.Fiber<unknown, unknown>>()
      for (const holder of held) if (holder.owner !== undefined && holder.owner !== current) owners.add(holder.owner)
      return Fiber.interruptAll(owners).pipe(
        // What is left has no fiber to end it: `tryAcquire` and `acquire` permits.
        Effect.andThen(Effect.forEach(Array.from(held), (holder) => Effect.ignore(end(holder)), { discard: true })),
        Effect.andThen(PubSub.end(pubsub, Exit.void)),
        Effect.andThen(logger === undefined ? Effect.void : Fiber.await(logger))
      )
    })
  )

  const pool: CoroutinePool.CoroutinePool<SharedPoolError> = {
    [CoroutinePool.TypeId]: CoroutinePool.TypeId,
    max: Effect.succeed(max),
    active: Effect.sync(() => active),
    stats: Effect.sync(() => Metrics.stats(figures)),
    tryAcquire,
    release,
    withPermit,
    withPermitWaiting,
    acquire,
    // Every replica must agree on max, so a shared pool keeps the one it has.
    resize: (size) =>
      !Number.isSafeInteger(size) || size < 1
        ? Effect.fail(new CoroutinePool.InvalidPoolSize({ max: size }))
        : size === max
          ? Effect.void
          : Effect.fail(new PoolStore.PoolConfigMismatch({ key, option: "max", stored: max, requested: size })),
    events: Stream.unwrap(subscribe),
    subscribe
  }
  return pool
})

// A duration within `bounds`, in whole milliseconds.
const decodeMillis = (
  option: "ttl" | "poll",
  input: Duration.Input,
  bounds: { readonly min: number; readonly max: number }
): Effect.Effect<number, CoroutinePool.InvalidPoolOption> => {
  const millis = Decode.millis(input, bounds)
  return millis === undefined
    ? Effect.fail(new CoroutinePool.InvalidPoolOption({ option, value: input }))
    : Effect.succeed(Math.floor(millis))
}

/**
 * A shared pool as a service, for a program that shares one.
 *
 * @since 0.2.0
 * @category services
 */
export class SharedPool extends Context.Service<SharedPool, CoroutinePool.CoroutinePool<SharedPoolError>>()(
  "coroutine-pool/SharedPool"
) {}

/**
 * A layer that provides one shared pool to a whole program; it returns its
 * leases when the layer is released.
 *
 * **Example** (A shared pool over Redis)
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Config, Effect, Layer } from "effect"
 * import { PoolStore, SharedPool } from "coroutine-pool"
 *
 * const PoolLive = SharedPool.layer({ key: "payments", max: 10 }).pipe(
 *   Layer.provide(PoolStore.layerStoreRedis({ prefix: "checkout" })),
 *   Layer.provide(NodeRedis.layerConfig({ url: Config.String("REDIS_URL") }))
 * )
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* SharedPool.SharedPool
 *   return yield* pool.withPermit("charge")(Effect.succeed("charged"))
 * }).pipe(Effect.provide(PoolLive))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  SharedPool,
  CoroutinePool.InvalidPoolSize | CoroutinePool.InvalidPoolOption | PoolStore.InvalidStoreOption,
  PoolStore.PoolStore
> => Layer.effect(SharedPool, make(options))

/**
 * A shared pool's options read from configuration: {@link CoroutinePool.config}
 * (`POOL_MAX`, `POOL_MAX_WAITING`, `POOL_MAX_WAIT`, `POOL_NAME`) plus
 * `POOL_KEY` (required) and `POOL_TTL` (a duration, default 10 seconds).
 *
 * @since 0.2.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  pool: CoroutinePool.config,
  key: Config.String("POOL_KEY"),
  ttl: Config.Duration("POOL_TTL").pipe(Config.withDefault(Duration.seconds(10)))
}).pipe(Config.map(({ key, pool, ttl }) => ({ ...pool, name: pool.name === "default" ? key : pool.name, key, ttl })))

/**
 * A layer that builds the shared pool from configuration, {@link config} by
 * default. A missing or bad value fails the layer with a `ConfigError` naming
 * the key.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Wrap<Options> = config
): Layer.Layer<
  SharedPool,
  Config.ConfigError | CoroutinePool.InvalidPoolSize | CoroutinePool.InvalidPoolOption | PoolStore.InvalidStoreOption,
  PoolStore.PoolStore
> => Layer.effect(SharedPool, Effect.flatMap(Config.unwrap(options), make))
