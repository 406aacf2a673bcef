/**
 * A bounded pool of permits for fibers, with tryAcquire-or-reject admission.
 *
 * A coroutine (a fiber) asks the pool for one of `max` permits. It is admitted
 * or rejected at once, never parked; it does its work and returns the permit.
 * Every admission, rejection and release is published, in order, on
 * {@link CoroutinePool.events}.
 *
 * @since 0.1.0
 */
import * as Channel from "effect/Channel"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Take from "effect/Take"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: TypeId = "~coroutine-pool/CoroutinePool"

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = "~coroutine-pool/CoroutinePool"

/**
 * The label a caller gives itself when it asks for a permit.
 *
 * **Details**
 *
 * Labels name the worker in events and errors. They do not need to be unique:
 * a worker may hold several permits at once, and several fibers may share a
 * label (an HTTP route name, say).
 *
 * @since 0.1.0
 * @category models
 */
export const WorkerId: Schema.Union<readonly [Schema.Number, Schema.String]> = Schema.Union([
  Schema.Number,
  Schema.String
])

/**
 * @since 0.1.0
 * @category models
 */
export type WorkerId = number | string

// ---------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------

// Every event names the worker and the pool's figures right after it.
const transition = { worker: WorkerId, active: Schema.Int, max: Schema.Int }

/**
 * A worker was admitted. `active` is the count right after the admission.
 *
 * @since 0.1.0
 * @category events
 */
export const Acquired = Schema.TaggedStruct("Acquired", transition)

/**
 * @since 0.1.0
 * @category events
 */
export interface Acquired extends Schema.Schema.Type<typeof Acquired> {}

/**
 * A worker was turned away because every permit was taken. `active` is
 * unchanged by a rejection, so it equals `max`.
 *
 * @since 0.1.0
 * @category events
 */
export const Rejected = Schema.TaggedStruct("Rejected", transition)

/**
 * @since 0.1.0
 * @category events
 */
export interface Rejected extends Schema.Schema.Type<typeof Rejected> {}

/**
 * A worker returned its permit. `active` is the count right after the release.
 *
 * @since 0.1.0
 * @category events
 */
export const Released = Schema.TaggedStruct("Released", transition)

/**
 * @since 0.1.0
 * @category events
 */
export interface Released extends Schema.Schema.Type<typeof Released> {}

/**
 * One transition of a pool, as published on {@link CoroutinePool.events}.
 *
 * **Details**
 *
 * The schema lets tools decode events that were written out as JSON.
 *
 * **Example** (Decoding an event)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const event = Schema.decodeUnknownSync(CoroutinePool.PoolEvent)({
 *   _tag: "Acquired",
 *   worker: 0,
 *   active: 1,
 *   max: 2
 * })
 * console.log(CoroutinePool.formatEvent(event)) // Worker 0: acquired (1/2 active)
 * ```
 *
 * @since 0.1.0
 * @category events
 */
export const PoolEvent = Schema.Union([Acquired, Rejected, Released])

/**
 * @since 0.1.0
 * @category events
 */
export type PoolEvent = Acquired | Rejected | Released

const verbs = { Acquired: "acquired", Rejected: "rejected", Released: "released" } as const

/**
 * Renders an event as the seed tutorial prints it.
 *
 * **Example** (Formatting an event)
 *
 * ```ts
 * import { CoroutinePool } from "coroutine-pool"
 *
 * CoroutinePool.formatEvent({ _tag: "Rejected", worker: 2, active: 2, max: 2 })
 * // => "Worker 2: rejected (2/2 active)"
 * ```
 *
 * @since 0.1.0
 * @category events
 */
export const formatEvent = (event: PoolEvent): string =>
  `Worker ${event.worker}: ${verbs[event._tag]} (${event.active}/${event.max} active)`

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/**
 * `withPermit` could not be admitted.
 *
 * **Details**
 *
 * `reason` is `"full"` when all `max` permits were taken at that moment, and
 * `"closed"` when the pool's scope had already closed. `active` and `max` are
 * the pool's figures at the moment of the decision.
 *
 * **Example** (Shedding load with a fallback)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool
 * declare const search: Effect.Effect<ReadonlyArray<string>>
 *
 * const results = pool.withPermit("search")(search).pipe(
 *   Effect.catchTag("PoolRejected", (rejected) =>
 *     rejected.reason === "full" ? Effect.succeed([]) : Effect.fail(rejected)
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolRejected extends Schema.TaggedError<PoolRejected>()("PoolRejected", {
  worker: WorkerId,
  reason: Schema.Literals(["full", "closed"]),
  active: Schema.Int,
  max: Schema.Int
}) {
  override get message(): string {
    return this.reason === "full"
      ? `Worker ${this.worker}: rejected, all ${this.max} permits are taken`
      : `Worker ${this.worker}: rejected, the pool is closed`
  }
}

/**
 * `release` was called for a worker that holds no permit taken with
 * `tryAcquire`. Nothing was changed.
 *
 * @since 0.1.0
 * @category errors
 */
export class PermitNotHeld extends Schema.TaggedError<PermitNotHeld>()("PermitNotHeld", {
  worker: WorkerId
}) {
  override get message(): string {
    return `Worker ${this.worker} holds no permit to release`
  }
}

/**
 * `make` was given a `max` that is not a positive safe integer. `max` carries
 * the offending value as given.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPoolSize extends Schema.TaggedError<InvalidPoolSize>()("InvalidPoolSize", {
  max: Schema.Unknown
}) {
  override get message(): string {
    const shown = typeof this.max === "string" ? JSON.stringify(this.max) : String(this.max)
    return `Invalid pool size: max must be a positive safe integer, got ${shown}`
  }
}

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * A bounded pool of permits with tryAcquire-or-reject admission.
 *
 * @since 0.1.0
 * @category models
 */
export interface CoroutinePool {
  readonly [TypeId]: TypeId
  /** The number of permits. */
  readonly max: number
  /** The number of permits taken right now. */
  readonly active: Effect.Effect<number>
  /**
   * Takes a permit if one is free, never waiting. `true` means admitted: the
   * caller owns the permit until it calls `release` with the same worker.
   * Publishes `Acquired` or `Rejected`. A closed pool answers `false`.
   */
  readonly tryAcquire: (worker: WorkerId) => Effect.Effect<boolean>
  /**
   * Returns a permit taken with `tryAcquire` by `worker`. Fails with
   * `PermitNotHeld`, changing nothing, when `worker` holds none.
   */
  readonly release: (worker: WorkerId) => Effect.Effect<void, PermitNotHeld>
  /**
   * Runs an effect holding a permit, or fails with `PoolRejected` without
   * running it. The permit is returned however the effect ends: success,
   * failure, defect or interruption.
   */
  readonly withPermit: (
    worker: WorkerId
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PoolRejected, R>
  /**
   * Every transition from the moment the stream starts running, in the order
   * they happened. Ends when the pool closes. A consumer forked with
   * `{ startImmediately: true }` is subscribed before the fork returns.
   */
  readonly events: Stream.Stream<PoolEvent>
  /**
   * Subscribes now and returns the stream of every later transition, for a
   * consumer that must not miss one. The subscription lives in the caller's
   * scope: to read every event up to the pool's close, subscribe in a scope
   * that outlives the pool's.
   */
  readonly subscribe: Effect.Effect<Stream.Stream<PoolEvent>, never, Scope.Scope>
}

/**
 * The pool as a service, so a backend can provide one pool to its whole
 * program with {@link layer}.
 *
 * **Example** (Using the pool from the context)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const handler = Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.CoroutinePool
 *   return yield* pool.withPermit("report")(Effect.succeed("done"))
 * })
 *
 * const program = handler.pipe(Effect.provide(CoroutinePool.layer({ max: 8 })))
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export const CoroutinePool: Context.Service<CoroutinePool, CoroutinePool> = Context.Service<CoroutinePool>(TypeId)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The number of permits: a positive safe integer. */
  readonly max: number
}

// ---------------------------------------------------------------------------
// implementation
// ---------------------------------------------------------------------------

// All of a pool's state, and the only code that changes it. Each method runs
// synchronously from start to end, and the runtime never switches fibers in
// the middle of synchronous code, so a decision, the count change and the
// published event form one atomic step: no lock is needed, and the event
// stream lists transitions in exactly the order they happened.
class PoolState {
  active = 0
  closed = false
  // Permits taken with `tryAcquire`, per worker: the only ones `release` may return.
  readonly manual = new Map<WorkerId, number>()
  // Fibers inside `withPermit`, with how many permits each holds there, so
  // closing the pool can interrupt them.
  readonly holders = new Map<Fiber.Fiber<unknown, unknown>, number>()
  readonly max: number
  readonly pubsub: PubSub.PubSub<Take.Take<PoolEvent>>

  constructor(max: number, pubsub: PubSub.PubSub<Take.Take<PoolEvent>>) {
    this.max = max
    this.pubsub = pubsub
  }

  private publish(_tag: PoolEvent["_tag"], worker: WorkerId): void {
    // After the pool has ended its stream this is a no-op.
    PubSub.publishUnsafe(this.pubsub, [{ _tag, worker, active: this.active, max: this.max }])
  }

  admit(worker: WorkerId): boolean {
    if (this.closed) return false
    if (this.active >= this.max) {
      this.publish("Rejected", worker)
      return false
    }
    this.active++
    this.publish("Acquired", worker)
    return true
  }

  releaseOne(worker: WorkerId): void {
    this.active--
    this.publish("Released", worker)
  }

  tryAcquire(worker: WorkerId): boolean {
    if (!this.admit(worker)) return false
    this.manual.set(worker, (this.manual.get(worker) ?? 0) + 1)
    return true
  }

  release(worker: WorkerId): boolean {
    const held = this.manual.get(worker)
    if (held === undefined) return false
    if (held === 1) this.manual.delete(worker)
    else this.manual.set(worker, held - 1)
    this.releaseOne(worker)
    return true
  }

  acquireFor(fiber: Fiber.Fiber<unknown, unknown>, worker: WorkerId): PoolRejected | undefined {
    if (!this.admit(worker)) {
      return new PoolRejected({ worker, reason: this.closed ? "closed" : "full", active: this.active, max: this.max })
    }
    this.holders.set(fiber, (this.holders.get(fiber) ?? 0) + 1)
    return undefined
  }

  releaseFor(fiber: Fiber.Fiber<unknown, unknown>, worker: WorkerId): void {
    const held = this.holders.get(fiber) ?? 1
    if (held === 1) this.holders.delete(fiber)
    else this.holders.set(fiber, held - 1)
    this.releaseOne(worker)
  }

  releaseAllManual(): void {
    for (const [worker, held] of this.manual) {
      for (let i = 0; i < held; i++) this.releaseOne(worker)
    }
    this.manual.clear()
  }
}

/**
 * Creates a pool of `max` permits that lives as long as the current scope.
 *
 * **When to use**
 *
 * Use to bound how many fibers do some work at once, turning away the excess
 * at once instead of queueing it: load shedding, a bulkhead around a fragile
 * dependency, admission control for an endpoint.
 *
 * **Details**
 *
 * Fails with `InvalidPoolSize` unless `max` is a positive safe integer.
 *
 * Closing the scope closes the pool: it admits nobody from then on, interrupts
 * the fibers running inside `withPermit` and waits until they have returned
 * their permits, returns the permits still held through `tryAcquire`, and then
 * ends the event streams. Every permit's `Released` event is published before
 * the streams end.
 *
 * **Example** (Admitting or rejecting work)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.make({ max: 2 })
 *   const first = yield* pool.tryAcquire(0) // true
 *   const second = yield* pool.tryAcquire(1) // true
 *   const third = yield* pool.tryAcquire(2) // false: 2/2 active
 *   yield* pool.release(0)
 *   yield* pool.release(1)
 *   return [first, second, third]
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<CoroutinePool, InvalidPoolSize, Scope.Scope> = Effect.fnUntraced(
  function* (options: Options) {
    const max = yield* Schema.decodeUnknownEffect(PoolSize)(options.max).pipe(
      Effect.mapError(() => new InvalidPoolSize({ max: options.max }))
    )
    const pubsub = yield* PubSub.unbounded<Take.Take<PoolEvent>>()
    const state = new PoolState(max, pubsub)
    yield* Effect.addFinalizer(() => close(state))

    const withPermit =
      (worker: WorkerId) =>
      <A, E, R>(self: Effect.Effect<A, E, R>) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.withFiber<A, E | PoolRejected, R>((fiber) => {
            const rejected = state.acquireFor(fiber, worker)
            if (rejected !== undefined) return Effect.fail(rejected)
            return Effect.onExit(restore(self), () => Effect.sync(() => state.releaseFor(fiber, worker)))
          })
        )

    return CoroutinePool.of({
      [TypeId]: TypeId,
      max,
      active: Effect.sync(() => state.active),
      tryAcquire: (worker) => Effect.sync(() => state.tryAcquire(worker)),
      release: (worker) =>
        Effect.suspend(() => (state.release(worker) ? Effect.void : Effect.fail(new PermitNotHeld({ worker })))),
      withPermit,
      events: Stream.fromPubSubTake(pubsub),
      subscribe: Effect.map(PubSub.subscribe(pubsub), (subscription) =>
        Stream.fromChannel(Channel.fromEffectTake(PubSub.take(subscription)))
      )
    })
  }
)

// `Schema.Int` accepts safe integers only: no NaN, infinities or fractions.
const PoolSize = Schema.Int.check(Schema.isGreaterThan(0))

const close = (state: PoolState): Effect.Effect<void> =>
  Effect.withFiber((current) => {
    state.closed = true
    // The closing fiber cannot wait for itself: its own permits come back when
    // its `withPermit` ends.
    const holders = Array.from(state.holders.keys()).filter((fiber) => fiber !== current)
    return Fiber.interruptAll(holders).pipe(
      Effect.andThen(Effect.sync(() => state.releaseAllManual())),
      Effect.andThen(PubSub.end(state.pubsub, Exit.void))
    )
  })

/**
 * A layer that provides one pool to a whole program. The pool closes when the
 * layer is released.
 *
 * **Example** (Providing a pool)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.CoroutinePool
 *   return pool.max
 * }).pipe(Effect.provide(CoroutinePool.layer({ max: 4 })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<CoroutinePool, InvalidPoolSize> =>
  Layer.effect(CoroutinePool, make(options))

// ---------------------------------------------------------------------------
// combinators
// ---------------------------------------------------------------------------

/**
 * Runs an effect holding one of the pool's permits, failing with
 * `PoolRejected` without running it when none is free.
 *
 * **Details**
 *
 * Data-first and data-last, so it reads well in a `pipe`. The permit is
 * returned when the effect ends in any way, interruption included.
 *
 * **Example** (Guarding a call)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool
 * declare const fetchReport: Effect.Effect<string>
 *
 * const guarded = fetchReport.pipe(CoroutinePool.withPermit(pool, "report"))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPermit: {
  (
    pool: CoroutinePool,
    worker: WorkerId
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PoolRejected, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, pool: CoroutinePool, worker: WorkerId): Effect.Effect<A, E | PoolRejected, R>
} = dual(3, <A, E, R>(self: Effect.Effect<A, E, R>, pool: CoroutinePool, worker: WorkerId) =>
  pool.withPermit(worker)(self)
)

/**
 * Takes a permit if one is free; see {@link CoroutinePool.tryAcquire}.
 *
 * @since 0.1.0
 * @category combinators
 */
export const tryAcquire: {
  (worker: WorkerId): (pool: CoroutinePool) => Effect.Effect<boolean>
  (pool: CoroutinePool, worker: WorkerId): Effect.Effect<boolean>
} = dual(2, (pool: CoroutinePool, worker: WorkerId) => pool.tryAcquire(worker))

/**
 * Returns a permit taken with `tryAcquire`; see {@link CoroutinePool.release}.
 *
 * @since 0.1.0
 * @category combinators
 */
export const release: {
  (worker: WorkerId): (pool: CoroutinePool) => Effect.Effect<void, PermitNotHeld>
  (pool: CoroutinePool, worker: WorkerId): Effect.Effect<void, PermitNotHeld>
} = dual(2, (pool: CoroutinePool, worker: WorkerId) => pool.release(worker))
