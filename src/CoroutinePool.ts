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
import type * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Take from "effect/Take"
import * as Metrics from "./internal/metrics.ts"
import * as Observability from "./internal/observability.ts"

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

// Every worker event names the worker and the pool's figures right after it:
// permits taken, permits in force (the max at that moment) and waiters queued.
const transition = { worker: WorkerId, active: Schema.Int, max: Schema.Int, waiting: Schema.Int }

/**
 * A worker was admitted, at once or when its turn in the queue came. `active`
 * is the count right after the admission.
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
 * A worker was turned away at once: every permit was taken and it could not
 * queue (`maxWaiting` is 0, or the queue was full). A rejection changes no
 * figure.
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
 * A worker returned its permit. `active` is the count right after the release:
 * when a waiter was queued, the permit went straight to it and its `Acquired`
 * event follows at once.
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
 * Every permit was taken and the worker joined the back of the queue.
 * `waiting` counts it.
 *
 * @since 0.1.0
 * @category events
 */
export const Queued = Schema.TaggedStruct("Queued", transition)

/**
 * @since 0.1.0
 * @category events
 */
export interface Queued extends Schema.Schema.Type<typeof Queued> {}

/**
 * A queued worker waited `maxWait` without getting a permit and left the queue.
 *
 * @since 0.1.0
 * @category events
 */
export const TimedOut = Schema.TaggedStruct("TimedOut", transition)

/**
 * @since 0.1.0
 * @category events
 */
export interface TimedOut extends Schema.Schema.Type<typeof TimedOut> {}

/**
 * A queued worker left the queue without a permit because it was interrupted
 * or the pool closed.
 *
 * @since 0.1.0
 * @category events
 */
export const Abandoned = Schema.TaggedStruct("Abandoned", transition)

/**
 * @since 0.1.0
 * @category events
 */
export interface Abandoned extends Schema.Schema.Type<typeof Abandoned> {}

/**
 * A shared pool's worker lost its lease (see `SharedPool`): the store no
 * longer had it, or no renewal was confirmed before its deadline. Its permit
 * ended without a `Released`; the work it guarded was interrupted.
 *
 * @since 0.2.0
 * @category events
 */
export const Lost = Schema.TaggedStruct("Lost", transition)

/**
 * @since 0.2.0
 * @category events
 */
export interface Lost extends Schema.Schema.Type<typeof Lost> {}

/**
 * A shared pool's store refuses grants for `retryAfter` more milliseconds: it
 * has no record of the pool (first use, or it lost its data) and waits one
 * lease TTL so that leases granted before cannot be doubled. Published when a
 * pool first meets a warm-up.
 *
 * @since 0.2.0
 * @category events
 */
export const Warming = Schema.TaggedStruct("Warming", {
  retryAfter: Schema.Number,
  active: Schema.Int,
  max: Schema.Int,
  waiting: Schema.Int
})

/**
 * @since 0.2.0
 * @category events
 */
export interface Warming extends Schema.Schema.Type<typeof Warming> {}

/**
 * `resize` changed the number of permits from `from` to `max`. Growing admits
 * waiters at once (their `Acquired` events follow); shrinking takes no permit
 * back, so `active` may stay above `max` until holders release.
 *
 * @since 0.1.0
 * @category events
 */
export const Resized = Schema.TaggedStruct("Resized", {
  from: Schema.Int,
  max: Schema.Int,
  active: Schema.Int,
  waiting: Schema.Int
})

/**
 * @since 0.1.0
 * @category events
 */
export interface Resized extends Schema.Schema.Type<typeof Resized> {}

/**
 * One transition of a pool, as published on {@link CoroutinePool.events}.
 *
 * **Details**
 *
 * A worker's life in the pool reads `Acquired`, then `Released`; or
 * `Rejected`; or `Queued`, then `Acquired` (and later `Released`), `TimedOut`
 * or `Abandoned`. `Resized` marks a change of `max`. Shared pools add `Lost`
 * (a lease lost while held) and `Warming` (the store refuses grants a
 * while). The schema lets tools decode events that were written out as JSON.
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
 *   max: 2,
 *   waiting: 0
 * })
 * console.log(CoroutinePool.formatEvent(event)) // Worker 0: acquired (1/2 active)
 * ```
 *
 * @since 0.1.0
 * @category events
 */
export const PoolEvent = Schema.Union([
  Acquired,
  Rejected,
  Released,
  Queued,
  TimedOut,
  Abandoned,
  Lost,
  Resized,
  Warming
])

/**
 * @since 0.1.0
 * @category events
 */
export type PoolEvent = Acquired | Rejected | Released | Queued | TimedOut | Abandoned | Lost | Resized | Warming

const verbs = {
  Acquired: "acquired",
  Rejected: "rejected",
  Released: "released",
  Queued: "queued",
  TimedOut: "timed out",
  Abandoned: "abandoned",
  Lost: "lost its lease"
} as const

/**
 * Renders an event as one line, in the seed tutorial's words.
 *
 * **Details**
 *
 * The queue length is shown only when someone waits, so a pool without waiting
 * prints exactly the seed's lines.
 *
 * **Example** (Formatting events)
 *
 * ```ts
 * import { CoroutinePool } from "coroutine-pool"
 *
 * CoroutinePool.formatEvent({ _tag: "Rejected", worker: 2, active: 2, max: 2, waiting: 0 })
 * // => "Worker 2: rejected (2/2 active)"
 * CoroutinePool.formatEvent({ _tag: "Queued", worker: 3, active: 2, max: 2, waiting: 1 })
 * // => "Worker 3: queued (2/2 active, 1 waiting)"
 * ```
 *
 * @since 0.1.0
 * @category events
 */
export const formatEvent = (event: PoolEvent): string => {
  const figures = `${event.active}/${event.max} active${event.waiting > 0 ? `, ${event.waiting} waiting` : ""}`
  switch (event._tag) {
    case "Resized":
      return `Pool: resized from ${event.from} to ${event.max} (${figures})`
    case "Warming":
      return `Pool: the store is warming up, no grants for ${event.retryAfter} ms (${figures})`
    default:
      return `Worker ${event.worker}: ${verbs[event._tag]} (${figures})`
  }
}

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/**
 * `withPermit`, `withPermitWaiting` or `acquire` could not get a permit.
 *
 * **Details**
 *
 * `reason` says why:
 *
 * - `"full"`: every permit was taken and the call could not wait
 *   (`withPermit`, or `maxWaiting` is 0);
 * - `"queue-full"`: every permit was taken and `maxWaiting` callers were
 *   already queued;
 * - `"timeout"`: the caller waited `maxWait` without its turn coming;
 * - `"closed"`: the pool's scope had closed (before the call, or while it
 *   waited);
 * - `"warming"` (shared pools): the store lost its data and refuses grants
 *   for one lease TTL.
 *
 * Shared pools also give `retryAfter`, in milliseconds.
 *
 * `active` and `max` are the pool's figures at the moment of the decision.
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
 * const results = pool.withPermitWaiting("search")(search).pipe(
 *   Effect.catchTag("PoolRejected", (rejected) =>
 *     rejected.reason === "closed" ? Effect.fail(rejected) : Effect.succeed([])
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolRejected extends Schema.TaggedError<PoolRejected>()("PoolRejected", {
  worker: WorkerId,
  reason: Schema.Literals(["full", "queue-full", "timeout", "closed", "warming"]),
  active: Schema.Int,
  max: Schema.Int,
  /** Shared pools: milliseconds until the store expects a permit to come free. */
  retryAfter: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return `Worker ${this.worker}: rejected, ${explanations[this.reason](this.max)}`
  }
}

const explanations = {
  full: (max: number) => `all ${max} permits are taken`,
  "queue-full": (max: number) => `all ${max} permits are taken and the queue is full`,
  timeout: () => "no permit came free within maxWait",
  closed: () => "the pool is closed",
  warming: () => "the store is warming up after losing its data"
} as const

/**
 * `release` was called for a worker that holds no permit taken with
 * `tryAcquire`. Nothing was changed.
 *
 * **Details**
 *
 * Permits taken by `withPermit`, `withPermitWaiting` and `acquire` come back
 * by themselves and can never be returned with `release`, so a stray
 * `release` can neither drive the count negative nor steal a running
 * holder's permit.
 *
 * **Example** (Releasing twice)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.make({ max: 1 })
 *   yield* pool.tryAcquire("job")
 *   yield* pool.release("job")
 *   return yield* Effect.flip(pool.release("job")) // PermitNotHeld { worker: "job" }
 * }))
 * ```
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
 * `make` or `resize` was given a `max` that is not a positive safe integer.
 * `max` carries the offending value as given. Nothing was changed.
 *
 * **Example** (A size read from user input)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = CoroutinePool.make({ max: 0 }).pipe(
 *   Effect.catchTag("InvalidPoolSize", (error) => Effect.die(error.message)),
 *   Effect.scoped
 * ) // dies with "Invalid pool size: max must be a positive safe integer, got 0"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPoolSize extends Schema.TaggedError<InvalidPoolSize>()("InvalidPoolSize", {
  max: Schema.Unknown
}) {
  override get message(): string {
    return `Invalid pool size: max must be a positive safe integer, got ${show(this.max)}`
  }
}

/**
 * `make` was given a bad option: `maxWaiting` must be a safe integer of zero
 * or more, `maxWait` a duration of zero or more (infinite allowed), `name` a
 * non-empty string. `option` names it and `value` carries it as given.
 *
 * **Example** (Reporting a bad option)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = CoroutinePool.make({ max: 2, maxWaiting: -1 }).pipe(
 *   Effect.catchTag("InvalidPoolOption", (error) => Effect.succeed(error.message)),
 *   Effect.scoped
 * ) // "Invalid maxWaiting: expected a safe integer of zero or more, got -1"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPoolOption extends Schema.TaggedError<InvalidPoolOption>()("InvalidPoolOption", {
  option: Schema.Literals(["maxWaiting", "maxWait", "name", "ttl", "poll", "onStoreError"]),
  value: Schema.Unknown
}) {
  override get message(): string {
    const expected = expectations[this.option]
    return `Invalid ${this.option}: expected ${expected}, got ${show(this.value)}`
  }
}

const expectations = {
  maxWaiting: "a safe integer of zero or more",
  maxWait: 'a duration of zero or more, such as "5 seconds"',
  name: "a non-empty string",
  ttl: 'a finite duration of at least 30 milliseconds, such as "10 seconds"',
  poll: 'a finite duration of at least 1 millisecond, such as "50 millis"',
  onStoreError: '"fail" or "allow"'
} as const

const show = (value: unknown): string => (typeof value === "string" ? JSON.stringify(value) : String(value))

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * A bounded pool of permits: tryAcquire-or-reject admission, with an optional
 * bounded FIFO queue.
 *
 * **When to use**
 *
 * Get one from {@link make} (scoped) or from the {@link CoroutinePool}
 * service ({@link layer}, {@link layerConfig}), and put the work you want to
 * bound under `withPermit` (reject at once) or `withPermitWaiting` (queue).
 *
 * **Details**
 *
 * Every transition (admission, rejection, queueing, timeout, abandonment,
 * release, resize) is one synchronous step of the pool's state, published in
 * order on `events`; every one but a resize is counted in `stats` and
 * {@link metrics} (a resize shows as the new `max`).
 *
 * **Example** (Guarding work)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool
 * declare const render: Effect.Effect<string>
 *
 * const now = pool.withPermit("render")(render) // or PoolRejected "full"
 * const soon = pool.withPermitWaiting("render")(render) // queues when allowed
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CoroutinePool<out E = never> {
  readonly [TypeId]: TypeId
  /** The number of permits in force (it changes with `resize`). */
  readonly max: Effect.Effect<number>
  /** The number of permits taken right now. */
  readonly active: Effect.Effect<number>
  /** The pool's figures and totals, read in one step. */
  readonly stats: Effect.Effect<PoolStats>
  /**
   * Takes a permit if one is free, never waiting. `true` means admitted: the
   * caller owns the permit until it calls `release` with the same worker.
   * Publishes `Acquired` or `Rejected`. A closed pool answers `false`. While
   * callers are queued it answers `false`: freed permits go to them first.
   */
  readonly tryAcquire: (worker: WorkerId) => Effect.Effect<boolean, E>
  /**
   * Returns a permit taken with `tryAcquire` by `worker`. Fails with
   * `PermitNotHeld`, changing nothing, when `worker` holds none.
   */
  readonly release: (worker: WorkerId) => Effect.Effect<void, PermitNotHeld | E>
  /**
   * Runs an effect holding a permit, or fails at once with `PoolRejected`
   * without running it. The permit is returned however the effect ends:
   * success, failure, defect or interruption.
   */
  readonly withPermit: (
    worker: WorkerId
  ) => <A, E1, R>(self: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1 | PoolRejected | E, R>
  /**
   * Like `withPermit`, but when every permit is taken the caller queues (up
   * to `maxWaiting` callers, in strict FIFO order, for up to `maxWait`).
   * With `maxWaiting: 0` it behaves exactly like `withPermit`.
   */
  readonly withPermitWaiting: (
    worker: WorkerId
  ) => <A, E1, R>(self: Effect.Effect<A, E1, R>) => Effect.Effect<A, E1 | PoolRejected | E, R>
  /**
   * Takes a permit, waiting like `withPermitWaiting`, and holds it until the
   * current scope closes.
   */
  readonly acquire: (worker: WorkerId) => Effect.Effect<void, PoolRejected | E, Scope.Scope>
  /**
   * Changes the number of permits. Growing admits queued callers at once;
   * shrinking takes no permit back: holders finish, and nobody is admitted
   * until `active` is below the new `max`. Fails with `InvalidPoolSize`,
   * changing nothing, unless `max` is a positive safe integer.
   */
  readonly resize: (max: number) => Effect.Effect<void, InvalidPoolSize | E>
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
 * A pool's figures at one moment and its totals since it was made.
 *
 * **Details**
 *
 * Each total counts the events of that kind the pool has published, so stats
 * and the event stream always agree.
 *
 * @since 0.1.0
 * @category models
 */
export interface PoolStats {
  /** Permits taken right now (may exceed `max` for a while after a shrink). */
  readonly active: number
  /** Callers queued right now. */
  readonly waiting: number
  /** Permits in force. */
  readonly max: number
  /** The queue bound. */
  readonly maxWaiting: number
  /** `Acquired` events so far: admissions, at once or from the queue. */
  readonly acquired: number
  /** `Rejected` events so far: callers turned away at once. */
  readonly rejected: number
  /** `Released` events so far. */
  readonly released: number
  /** `Queued` events so far. */
  readonly queued: number
  /** `TimedOut` events so far. */
  readonly timedOut: number
  /** `Abandoned` events so far. */
  readonly abandoned: number
  /** `Lost` events so far (shared pools only). */
  readonly lost: number
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
 * What {@link make} and {@link layer} take. Only `max` is required.
 *
 * **Example** (A bulkhead with a bounded queue)
 *
 * ```ts
 * import type { CoroutinePool } from "coroutine-pool"
 *
 * const options: CoroutinePool.Options = {
 *   max: 10, // calls at once
 *   maxWaiting: 100, // callers that may queue
 *   maxWait: "2 seconds", // how long each may wait
 *   name: "payments" // in metrics, spans and logs
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The number of permits: a positive safe integer. */
  readonly max: number
  /**
   * How many callers of `withPermitWaiting` and `acquire` may queue while
   * every permit is taken. Default 0: nobody waits, they are rejected at once.
   */
  readonly maxWaiting?: number | undefined
  /** How long a queued caller waits before it fails with `"timeout"`. Default: no limit. */
  readonly maxWait?: Duration.Input | undefined
  /**
   * Whether to record the wait and hold time histograms. Default `true`. Each
   * permit then reads the clock twice, which costs about 150 ns on a machine
   * with a slow clock: turn it off on the hottest paths.
   */
  readonly timing?: boolean | undefined
  /**
   * The pool's name in metrics (the `pool` attribute), spans and logs.
   * Default `"default"`. Give each pool of a program its own.
   */
  readonly name?: string | undefined
}

// ---------------------------------------------------------------------------
// implementation
// ---------------------------------------------------------------------------

// The events of an in-process pool that name a worker.
type WorkerEvent = Exclude<PoolEvent, Resized | Warming | Lost>

// What `Effect.uninterruptibleMask` hands its body: makes an effect interruptible again.
type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

// Where a caller of `withPermit`, `withPermitWaiting` or `acquire` stands.
// Only the pool's transitions change it.
const Waiting = 0
const Granted = 1
const Closed = 2

// A caller that waits for or holds a permit. It sits in at most one line at a
// time (the queue, the fiber holders, the scoped holders), and each line is
// doubly linked, so leaving one (interruption, timeout, release) is O(1)
// wherever the caller stands.
class Caller {
  status: typeof Waiting | typeof Granted | typeof Closed = Waiting
  // Set once a queued caller's fiber has parked; cleared when it is woken.
  resume: ((effect: Effect.Effect<void>) => void) | undefined = undefined
  line: Line | undefined = undefined
  // When it queued, then when it was admitted (millis of the pool's clock).
  since = 0
  prev: Caller | undefined = undefined
  next: Caller | undefined = undefined
  readonly worker: WorkerId
  // The caller's fiber, as `Fiber.getCurrent` gives it: always a fiber when
  // called from the pool's effects.
  readonly fiber: Fiber.Fiber<unknown, unknown> | undefined

  constructor(worker: WorkerId, fiber: Fiber.Fiber<unknown, unknown> | undefined) {
    this.worker = worker
    this.fiber = fiber
  }
}

class Line {
  head: Caller | undefined = undefined
  tail: Caller | undefined = undefined
  size = 0

  push(caller: Caller): void {
    caller.line = this
    caller.prev = this.tail
    if (this.tail === undefined) this.head = caller
    else this.tail.next = caller
    this.tail = caller
    this.size++
  }

  remove(caller: Caller): void {
    if (caller.prev === undefined) this.head = caller.next
    else caller.prev.next = caller.next
    if (caller.next === undefined) this.tail = caller.prev
    else caller.next.prev = caller.prev
    caller.line = undefined
    caller.prev = undefined
    caller.next = undefined
    this.size--
  }
}

// All of a pool's state, and the only code that changes it. Each method runs
// synchronously from start to end, and the runtime never switches fibers in
// the middle of synchronous code, so a decision, the count change and the
// published event form one atomic step: no lock is needed, and the event
// stream lists transitions in exactly the order they happened.
//
// Invariant: while anyone is queued, every permit is taken (`waiting > 0`
// implies `active >= max`). Each freed permit goes straight to the head of
// the queue, so a newcomer (`tryAcquire`, `withPermit`) can never overtake a
// waiter: there is no barging.
class PoolState {
  active = 0
  closed = false
  // How many event subscriptions are open: with none, no event is built.
  listeners = 0
  max: number
  readonly maxWaiting: number
  readonly totals = { Acquired: 0, Rejected: 0, Released: 0, Queued: 0, TimedOut: 0, Abandoned: 0 }
  // Rejections by the reason a caller was given (`timeout` is `TimedOut`).
  readonly refused = { full: 0, "queue-full": 0, closed: 0 }
  readonly waitSeconds = new Metrics.Buckets()
  readonly holdSeconds = new Metrics.Buckets()
  readonly queue = new Line()
  // Fibers holding permits inside `withPermit` / `withPermitWaiting`, so
  // closing the pool can interrupt them.
  readonly holders = new Line()
  // Permits taken with `acquire`, owned by scopes.
  readonly scoped = new Line()
  // Permits taken with `tryAcquire`, per worker, as the times they were
  // taken: the only ones `release` may return.
  readonly manual = new Map<WorkerId, Array<number>>()
  readonly pubsub: PubSub.PubSub<Take.Take<PoolEvent>>
  // Callers granted a permit (or turned away) and not yet resumed.
  private readonly woken: Array<Caller> = []
  private resuming = false

  // The clock that times waits and holds, unless `timing` is off.
  readonly clock: Clock.Clock | undefined
  // The fiber logging transitions at Debug, if any.
  logger: Fiber.Fiber<void> | undefined = undefined

  constructor(
    max: number,
    maxWaiting: number,
    pubsub: PubSub.PubSub<Take.Take<PoolEvent>>,
    clock: Clock.Clock | undefined
  ) {
    this.max = max
    this.maxWaiting = maxWaiting
    this.pubsub = pubsub
    this.clock = clock
  }

  // Without `timing`, the clock is never read and every time is 0.
  private now(): number {
    return this.clock === undefined ? 0 : this.clock.currentTimeMillisUnsafe()
  }

  // A permit is taken: by `caller` (or by hand, `tryAcquire`) after a wait
  // that started at `since`.
  private admitted(caller: Caller | undefined, since: number, now: number): void {
    if (this.clock === undefined) return
    this.waitSeconds.observe((now - since) / 1000)
    if (caller !== undefined) caller.since = now
  }

  private held(since: number): void {
    if (this.clock === undefined) return
    this.holdSeconds.observe((this.now() - since) / 1000)
  }

  get waiting(): number {
    return this.queue.size
  }

  private publish(_tag: WorkerEvent["_tag"], worker: WorkerId): void {
    this.totals[_tag]++
    if (this.listeners === 0) return
    // After the pool has ended its stream this is a no-op.
    PubSub.publishUnsafe(this.pubsub, [{ _tag, worker, active: this.active, max: this.max, waiting: this.queue.size }])
  }

  rejection(worker: WorkerId, reason: PoolRejected["reason"]): PoolRejected {
    return new PoolRejected({ worker, reason, active: this.active, max: this.max })
  }

  // Admits at once or not at all. A closed pool rejects silently.
  admit(worker: WorkerId): boolean {
    if (this.closed) {
      this.refused.closed++
      return false
    }
    if (this.active >= this.max) {
      this.refused.full++
      this.publish("Rejected", worker)
      return false
    }
    this.active++
    this.publish("Acquired", worker)
    return true
  }

  // `withPermit`: a holder at once, or a rejection.
  acquireFor(fiber: Fiber.Fiber<unknown, unknown> | undefined, worker: WorkerId): Caller | PoolRejected {
    if (!this.admit(worker)) return this.rejection(worker, this.closed ? "closed" : "full")
    return this.holder(worker, fiber)
  }

  // A caller admitted at once: a fiber holder that waited for nothing.
  private holder(worker: WorkerId, fiber: Fiber.Fiber<unknown, unknown> | undefined): Caller {
    const caller = new Caller(worker, fiber)
    const now = this.now()
    this.admitted(caller, now, now)
    caller.status = Granted
    this.holders.push(caller)
    return caller
  }

  // `withPermitWaiting` and `acquire`: a holder at once (status Granted), a
  // queued caller (status Waiting), or a rejection.
  enter(worker: WorkerId, fiber: Fiber.Fiber<unknown, unknown> | undefined): Caller | PoolRejected {
    if (this.closed) {
      this.refused.closed++
      return this.rejection(worker, "closed")
    }
    if (this.active < this.max) {
      this.active++
      this.publish("Acquired", worker)
      return this.holder(worker, fiber)
    }
    if (this.queue.size >= this.maxWaiting) {
      const reason = this.maxWaiting === 0 ? "full" : "queue-full"
      this.refused[reason]++
      this.publish("Rejected", worker)
      return this.rejection(worker, reason)
    }
    const caller = new Caller(worker, fiber)
    caller.since = this.now()
    this.queue.push(caller)
    this.publish("Queued", worker)
    return caller
  }

  // The wait of `caller` ended without interruption: it was granted a
  // permit, the pool closed, or `maxWait` passed.
  settle(caller: Caller): PoolRejected | undefined {
    if (caller.status === Granted) return undefined
    if (caller.status === Closed) {
      this.refused.closed++
      return this.rejection(caller.worker, "closed")
    }
    this.queue.remove(caller)
    this.publish("TimedOut", caller.worker)
    return this.rejection(caller.worker, "timeout")
  }

  // The wait of `caller` was interrupted. If the permit was handed over in
  // the meantime it is passed on, so an interrupt racing a hand-off neither
  // loses nor duplicates a permit.
  leave(caller: Caller): void {
    caller.resume = undefined
    if (caller.status === Granted) this.releaseFor(caller)
    else if (caller.status === Waiting) {
      this.queue.remove(caller)
      this.publish("Abandoned", caller.worker)
    }
  }

  // Gives free permits to the head of the queue, in order. It runs last in
  // every transition that frees permits, so it also resumes the callers it
  // woke.
  private handOff(): void {
    let caller = this.queue.head
    while (caller !== undefined && this.active < this.max) {
      this.queue.remove(caller)
      caller.status = Granted
      this.admitted(caller, caller.since, this.now())
      this.holders.push(caller)
      this.active++
      this.publish("Acquired", caller.worker)
      this.wake(caller)
      caller = this.queue.head
    }
    this.resumeWoken()
  }

  // A caller that has not parked yet has no `resume`: it sees its status
  // when it parks.
  private wake(caller: Caller): void {
    if (caller.resume !== undefined) this.woken.push(caller)
  }

  // Resumes woken callers once the transition that woke them is complete.
  // Each runs on the spot until it next suspends, like a completed Deferred's
  // waiters, without a trip through the scheduler. Callers woken meanwhile
  // (a resumed fiber may release at once) join this loop instead of nesting
  // another one, so the stack stays flat however long the queue is.
  private resumeWoken(): void {
    if (this.resuming) return
    this.resuming = true
    try {
      for (let i = 0; i < this.woken.length; i++) {
        const caller = this.woken[i] as Caller
        const resume = caller.resume
        caller.resume = undefined
        resume?.(Effect.void)
      }
    } finally {
      this.woken.length = 0
      this.resuming = false
    }
  }

  private releaseOne(worker: WorkerId): void {
    this.active--
    this.publish("Released", worker)
    this.handOff()
  }

  tryAcquire(worker: WorkerId): boolean {
    if (!this.admit(worker)) return false
    const now = this.now()
    this.admitted(undefined, now, now)
    const taken = this.manual.get(worker)
    if (taken === undefined) this.manual.set(worker, [now])
    else taken.push(now)
    return true
  }

  release(worker: WorkerId): boolean {
    const taken = this.manual.get(worker)
    if (taken === undefined) return false
    // The oldest permit goes back first: its hold time is the longest.
    this.held(taken.shift() as number)
    if (taken.length === 0) this.manual.delete(worker)
    this.releaseOne(worker)
    return true
  }

  // A fiber holder is done with its permit.
  releaseFor(caller: Caller): void {
    this.holders.remove(caller)
    this.held(caller.since)
    this.releaseOne(caller.worker)
  }

  // Hands a fiber holder's permit over to a scope (`acquire`).
  keep(caller: Caller): void {
    this.holders.remove(caller)
    this.scoped.push(caller)
  }

  // A scope returns its permit, unless the pool took it back on closing.
  giveBack(caller: Caller): void {
    if (caller.line !== this.scoped) return
    this.scoped.remove(caller)
    this.held(caller.since)
    this.releaseOne(caller.worker)
  }

  resize(max: number): void {
    const from = this.max
    this.max = max
    if (this.listeners > 0) {
      PubSub.publishUnsafe(this.pubsub, [{ _tag: "Resized", from, max, active: this.active, waiting: this.waiting }])
    }
    this.handOff()
  }

  // Stops admissions and turns every queued caller away.
  shut(): void {
    this.closed = true
    for (let caller = this.queue.head; caller !== undefined; caller = this.queue.head) {
      this.queue.remove(caller)
      caller.status = Closed
      this.publish("Abandoned", caller.worker)
      this.wake(caller)
    }
    this.resumeWoken()
  }

  holderFibers(): Set<Fiber.Fiber<unknown, unknown>> {
    const fibers = new Set<Fiber.Fiber<unknown, unknown>>()
    for (let caller = this.holders.head; caller !== undefined; caller = caller.next) {
      if (caller.fiber !== undefined) fibers.add(caller.fiber)
    }
    return fibers
  }

  // Returns the permits no fiber holds: those of `tryAcquire` and `acquire`.
  releaseUnowned(): void {
    for (const [worker, taken] of this.manual) {
      for (const since of taken) {
        this.held(since)
        this.releaseOne(worker)
      }
    }
    this.manual.clear()
    for (let caller = this.scoped.head; caller !== undefined; caller = this.scoped.head) this.giveBack(caller)
  }
}

/**
 * The metrics every pool publishes, each series with a `pool` attribute set to
 * the pool's `name` (and `rejected` with a `reason` attribute).
 *
 * **When to use**
 *
 * Read them with `Metric.value` / `Metric.snapshot`, or export them with
 * `effect/observability` (Prometheus, OTLP): they appear as
 * `coroutine_pool_*` series.
 *
 * **Details**
 *
 * The series are registered in the `Metric.MetricRegistry` of the context the
 * pool is made in, and removed when the pool closes. The pool keeps the
 * figures itself and the registry reads them when it is scraped, so they cost
 * nothing on the pool's paths: gauges `active`, `waiting`, `max`; counters
 * `acquired`, `rejected` (by `reason`: `full`, `queue-full`, `timeout`,
 * `closed`, and `warming` for shared pools), `released`, `abandoned`, `lost`
 * (shared pools); histograms (seconds, on the pool's
 * `Clock`, millisecond resolution) of `wait` (every admission, 0 when at once)
 * and `hold` (from admission to release).
 *
 * **Example** (Reading a pool's metrics)
 *
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.make({ max: 2, name: "payments" })
 *   yield* pool.withPermit("charge")(Effect.void)
 *   const acquired = CoroutinePool.metrics.acquired.pipe(Metric.withAttributes({ pool: "payments" }))
 *   return yield* Metric.value(acquired) // { count: 1, incremental: true }
 * }))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = Metrics.metrics

/**
 * Creates a pool of `max` permits that lives as long as the current scope.
 *
 * **When to use**
 *
 * Use to bound how many fibers do some work at once: load shedding, a
 * bulkhead around a fragile dependency, admission control for an endpoint.
 * With the default `maxWaiting: 0` the excess is turned away at once; give
 * `maxWaiting` (and `maxWait`) to let `withPermitWaiting` and `acquire` queue
 * a bounded number of callers for a bounded time instead.
 *
 * **Details**
 *
 * Fails with `InvalidPoolSize` unless `max` is a positive safe integer, and
 * with `InvalidPoolOption` for a bad `maxWaiting` or `maxWait`.
 *
 * The queue is strict FIFO and there is no barging: a freed permit goes
 * straight to the caller at the head of the queue, so while anyone waits,
 * `tryAcquire` and `withPermit` are rejected even at the instant a permit is
 * released.
 *
 * Closing the scope closes the pool: it admits nobody from then on, turns the
 * queued callers away (`PoolRejected` with reason `"closed"`), interrupts the
 * fibers running inside `withPermit` / `withPermitWaiting` and waits until
 * they have returned their permits, returns the permits still held through
 * `tryAcquire` and `acquire`, and then ends the event streams. Every permit's
 * `Released` event is published before the streams end.
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
 * **Example** (Bounded waiting)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * declare const callPaymentProvider: Effect.Effect<string>
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   // 10 calls at once, 100 more may queue for up to 2 seconds each
 *   const pool = yield* CoroutinePool.make({ max: 10, maxWaiting: 100, maxWait: "2 seconds" })
 *   return yield* pool.withPermitWaiting("payments")(callPaymentProvider)
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: Options
) => Effect.Effect<CoroutinePool, InvalidPoolSize | InvalidPoolOption, Scope.Scope> = Effect.fnUntraced(function* (
  options: Options
) {
  const { max, maxWaiting, maxWait, name } = yield* checkOptions(options)
  const pubsub = yield* PubSub.unbounded<Take.Take<PoolEvent>>()
  const clock = options.timing === false ? undefined : yield* Effect.clockWith(Effect.succeed)
  const state = new PoolState(max, maxWaiting, pubsub, clock)
  // The metrics are read from the pool when they are scraped, in the registry
  // of the context the pool is made in, for as long as the pool lives.
  const registrations = Metrics.register(
    state,
    state.clock === undefined ? undefined : state,
    name,
    yield* Effect.context<never>()
  )
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const registration of registrations) registration.remove()
    })
  )

  const release = (caller: Caller) => () => {
    state.releaseFor(caller)
    return undefined
  }

  const withPermit =
    (worker: WorkerId) =>
    <A, E, R>(self: Effect.Effect<A, E, R>) =>
      // `uninterruptibleMask` runs its body on the calling fiber, so
      // `Fiber.getCurrent` names it without another `withFiber` step. The body
      // makes no closure (the traced path makes its own in `traced`), so an
      // untraced call allocates only what it must: this is the path every
      // admitted call takes.
      Effect.uninterruptibleMask<A, E | PoolRejected, R>((restore) => {
        const fiber = Fiber.getCurrent()
        return Observability.isTracing(fiber)
          ? traced("CoroutinePool.withPermit", name, admit, fiber, worker, restore, self)
          : admit(fiber, worker, restore, self)
      })

  const admit = <A, E, R>(
    fiber: Fiber.Fiber<unknown, unknown> | undefined,
    worker: WorkerId,
    restore: Restore,
    self: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | PoolRejected, R> => {
    const caller = state.acquireFor(fiber, worker)
    if (caller instanceof PoolRejected) return Effect.fail(caller)
    return Effect.onExitPrimitive(restore(self), release(caller), true)
  }

  // Parks a queued caller until it is granted a permit, turned away by
  // close, or `maxWait` passes (`settle` tells which), then goes on with
  // `next`, holding the permit. Runs uninterruptibly except while parked
  // (`restore`). Everything a parked caller keeps alive is built here, in one
  // closure scope: with thousands parked, each closure costs.
  const waitThen = <I, A, E, R>(
    caller: Caller,
    restore: Restore,
    input: I,
    next: (caller: Caller, restore: Restore, input: I) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | PoolRejected, R> => {
    const parked = Effect.callback<void>((resume) => {
      if (caller.status === Waiting) caller.resume = resume
      else resume(Effect.void)
    })
    const waited = Effect.onExitPrimitive(
      restore(maxWait === undefined ? parked : Effect.timeoutOption(parked, maxWait)),
      (exit) => {
        if (Exit.isFailure(exit)) state.leave(caller)
        return undefined
      }
    )
    return Effect.flatMap(waited, (): Effect.Effect<A, E | PoolRejected, R> => {
      const rejected = state.settle(caller)
      return rejected === undefined ? next(caller, restore, input) : Effect.fail(rejected)
    })
  }

  // What a caller does once it holds its permit: run the effect and return
  // the permit when it ends...
  const runHolding = <A, E, R>(caller: Caller, restore: Restore, self: Effect.Effect<A, E, R>) =>
    Effect.onExitPrimitive(restore(self), release(caller), true)

  // ...or hand the permit over to a scope.
  const keepInScope = (caller: Caller, _: Restore, scope: Scope.Scope) => {
    state.keep(caller)
    return Scope.addFinalizer(
      scope,
      Effect.sync(() => state.giveBack(caller))
    )
  }

  const withPermitWaiting =
    (worker: WorkerId) =>
    <A, E, R>(self: Effect.Effect<A, E, R>) =>
      Effect.uninterruptibleMask<A, E | PoolRejected, R>((restore) => {
        const fiber = Fiber.getCurrent()
        return Observability.isTracing(fiber)
          ? traced("CoroutinePool.withPermitWaiting", name, enter, fiber, worker, restore, self)
          : enter(fiber, worker, restore, self)
      })

  const enter = <A, E, R>(
    fiber: Fiber.Fiber<unknown, unknown> | undefined,
    worker: WorkerId,
    restore: Restore,
    self: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | PoolRejected, R> => {
    const caller = state.enter(worker, fiber)
    if (caller instanceof PoolRejected) return Effect.fail(caller)
    return caller.status === Granted ? runHolding(caller, restore, self) : waitThen(caller, restore, self, runHolding)
  }

  const acquire = (worker: WorkerId): Effect.Effect<void, PoolRejected, Scope.Scope> =>
    Effect.flatMap(Effect.scope, (scope) =>
      Effect.uninterruptibleMask((restore) => {
        const caller = state.enter(worker, Fiber.getCurrent())
        if (caller instanceof PoolRejected) return Effect.fail(caller)
        return caller.status === Granted
          ? keepInScope(caller, restore, scope)
          : waitThen(caller, restore, scope, keepInScope)
      })
    )

  // Counted before subscribing and uncounted after unsubscribing, so the
  // count is never below the real number of subscriptions.
  const subscribe = Effect.uninterruptible(
    Effect.gen(function* () {
      state.listeners++
      yield* Effect.addFinalizer(() => Effect.sync(() => state.listeners--))
      const subscription = yield* PubSub.subscribe(pubsub)
      return Stream.fromChannel(Channel.fromEffectTake(PubSub.take(subscription)))
    })
  )

  // With Debug logs enabled when the pool is made, every transition is
  // logged at Debug, annotated, from a subscriber that `close` drains.
  if (yield* LogLevel.isEnabled("Debug")) {
    const events = yield* subscribe
    state.logger = yield* Observability.logEvents(events, name, formatEvent)
  }
  yield* Effect.addFinalizer(() => close(state))

  return CoroutinePool.of({
    [TypeId]: TypeId,
    max: Effect.sync(() => state.max),
    active: Effect.sync(() => state.active),
    stats: Effect.sync(() => Metrics.stats(state)),
    tryAcquire: (worker) => Effect.sync(() => state.tryAcquire(worker)),
    release: (worker) =>
      Effect.suspend(() => (state.release(worker) ? Effect.void : Effect.fail(new PermitNotHeld({ worker })))),
    withPermit,
    withPermitWaiting,
    acquire,
    resize: (max) => Effect.map(decodeMax(max), (valid) => state.resize(valid)),
    events: Stream.unwrap(subscribe),
    subscribe
  })
})

/**
 * Checks a pool's options the way {@link make} does and gives them back with
 * their defaults filled in (`maxWait` is `undefined` for no limit).
 *
 * **When to use**
 *
 * To validate options read from elsewhere before building anything, or to
 * build a pool of your own that takes the same options (`SharedPool` does).
 *
 * @since 0.2.0
 * @category constructors
 */
export const checkOptions = Effect.fnUntraced(function* (options: Options): Effect.fn.Return<
  {
    readonly max: number
    readonly maxWaiting: number
    readonly maxWait: Duration.Duration | undefined
    readonly name: string
  },
  InvalidPoolSize | InvalidPoolOption
> {
  const max = yield* decodeMax(options.max)
  const maxWaiting = yield* Schema.decodeUnknownEffect(QueueSize)(options.maxWaiting ?? 0).pipe(
    Effect.mapError(() => new InvalidPoolOption({ option: "maxWaiting", value: options.maxWaiting }))
  )
  const maxWait = yield* decodeMaxWait(options.maxWait)
  const name = yield* Schema.decodeUnknownEffect(PoolName)(options.name ?? "default").pipe(
    Effect.mapError(() => new InvalidPoolOption({ option: "name", value: options.name }))
  )
  return { max, maxWaiting, maxWait, name }
})

// `Schema.Int` accepts safe integers only: no NaN, infinities or fractions.
const PoolSize = Schema.Int.check(Schema.isGreaterThan(0))
const QueueSize = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const PoolName = Schema.String.check(Schema.isNonEmpty())

const decodeMax = (max: unknown): Effect.Effect<number, InvalidPoolSize> =>
  Schema.decodeUnknownEffect(PoolSize)(max).pipe(Effect.mapError(() => new InvalidPoolSize({ max })))

// `undefined` stands for no limit, so an unlimited wait starts no timer.
const decodeMaxWait = (
  input: Duration.Input | undefined
): Effect.Effect<Duration.Duration | undefined, InvalidPoolOption> => {
  if (input === undefined) return Effect.succeed(undefined)
  const duration = Duration.fromInput(input)
  if (Option.isNone(duration) || Duration.isNegative(duration.value)) {
    return Effect.fail(new InvalidPoolOption({ option: "maxWait", value: input }))
  }
  return Effect.succeed(Duration.isFinite(duration.value) ? duration.value : undefined)
}

const close = (state: PoolState): Effect.Effect<void> =>
  Effect.withFiber((current) => {
    state.shut()
    // The closing fiber cannot wait for itself: its own permits come back when
    // its `withPermit` ends.
    const holders = state.holderFibers()
    holders.delete(current)
    return Fiber.interruptAll(holders).pipe(
      Effect.andThen(Effect.sync(() => state.releaseUnowned())),
      Effect.andThen(PubSub.end(state.pubsub, Exit.void)),
      Effect.andThen(state.logger === undefined ? Effect.void : Fiber.await(state.logger))
    )
  })

const traced = <A, E, R>(
  span: string,
  pool: string,
  run: (
    fiber: Fiber.Fiber<unknown, unknown> | undefined,
    worker: WorkerId,
    restore: Restore,
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | PoolRejected, R>,
  fiber: Fiber.Fiber<unknown, unknown> | undefined,
  worker: WorkerId,
  restore: Restore,
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E | PoolRejected, R> =>
  Observability.spanned(
    span,
    pool,
    worker,
    Effect.suspend(() => run(fiber, worker, restore, self))
  )

/**
 * A layer that provides one pool to a whole program. The pool closes when the
 * layer is released.
 *
 * **When to use**
 *
 * Use when the whole program (a server, a worker) shares one pool, reached
 * through the {@link CoroutinePool} service; use {@link layerConfig} to size
 * it from configuration. Several pools: make each with {@link make} in a
 * service of your own, or tag copies of the service.
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
export const layer = (options: Options): Layer.Layer<CoroutinePool, InvalidPoolSize | InvalidPoolOption> =>
  Layer.effect(CoroutinePool, make(options))

/**
 * The pool's options read from configuration: `POOL_MAX` (required, a positive
 * integer), `POOL_MAX_WAITING` (default 0), `POOL_MAX_WAIT` (a duration such
 * as `"2 seconds"`, default no limit) and `POOL_NAME` (default `"default"`).
 *
 * **When to use**
 *
 * Use with {@link layerConfig}, or nest it under a prefix for a second pool.
 *
 * **Example** (A second pool under a prefix)
 *
 * ```ts
 * import { Config } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * // PAYMENTS_POOL_MAX, PAYMENTS_POOL_MAX_WAITING, ... (with the environment provider)
 * const payments = CoroutinePool.layerConfig(Config.nested(CoroutinePool.config, "PAYMENTS"))
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  max: Config.schema(PoolSize, "POOL_MAX"),
  maxWaiting: Config.schema(QueueSize, "POOL_MAX_WAITING").pipe(Config.withDefault(0)),
  maxWait: Config.option(Config.Duration("POOL_MAX_WAIT")).pipe(Config.map(Option.getOrUndefined)),
  name: Config.schema(PoolName, "POOL_NAME").pipe(Config.withDefault("default"))
})

/**
 * A layer that builds the pool from configuration, {@link config} by default.
 *
 * **Details**
 *
 * A missing or bad value fails the layer's construction with a `ConfigError`
 * that names the key, e.g. `Expected a value greater than 0 at ["POOL_MAX"]`.
 * Pass your own `Config` (or a record of `Config`s) to read other keys.
 *
 * **Example** (Sizing the pool from the environment)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * // POOL_MAX=8 POOL_MAX_WAITING=100 POOL_MAX_WAIT="2 seconds"
 * const program = Effect.gen(function*() {
 *   const pool = yield* CoroutinePool.CoroutinePool
 *   return yield* pool.stats
 * }).pipe(Effect.provide(CoroutinePool.layerConfig()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Wrap<Options> = config
): Layer.Layer<CoroutinePool, Config.ConfigError | InvalidPoolSize | InvalidPoolOption> =>
  Layer.effect(
    CoroutinePool,
    Effect.gen(function* () {
      return yield* make(yield* Config.unwrap(options))
    })
  )

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
  <P>(
    pool: CoroutinePool<P>,
    worker: WorkerId
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PoolRejected | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P>,
    worker: WorkerId
  ): Effect.Effect<A, E | PoolRejected | P, R>
} = dual(3, <A, E, R, P>(self: Effect.Effect<A, E, R>, pool: CoroutinePool<P>, worker: WorkerId) =>
  pool.withPermit(worker)(self)
)

/**
 * Runs an effect holding one of the pool's permits, queueing for it (FIFO, up
 * to the pool's `maxWaiting` and `maxWait`) when none is free; see
 * {@link CoroutinePool.withPermitWaiting}.
 *
 * **Example** (Queueing in a pipe)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool
 * declare const charge: Effect.Effect<string>
 *
 * const guarded = charge.pipe(CoroutinePool.withPermitWaiting(pool, "charge"))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPermitWaiting: {
  <P>(
    pool: CoroutinePool<P>,
    worker: WorkerId
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PoolRejected | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P>,
    worker: WorkerId
  ): Effect.Effect<A, E | PoolRejected | P, R>
} = dual(3, <A, E, R, P>(self: Effect.Effect<A, E, R>, pool: CoroutinePool<P>, worker: WorkerId) =>
  pool.withPermitWaiting(worker)(self)
)

/**
 * Takes a permit for the rest of the current scope, waiting like
 * {@link withPermitWaiting}; see {@link CoroutinePool.acquire}.
 *
 * **Example** (A permit for a scope)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool
 * declare const exportRows: Effect.Effect<number>
 *
 * const program = Effect.scoped(Effect.andThen(CoroutinePool.acquire(pool, "export"), exportRows))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const acquire: {
  (worker: WorkerId): <P>(pool: CoroutinePool<P>) => Effect.Effect<void, PoolRejected | P, Scope.Scope>
  <P>(pool: CoroutinePool<P>, worker: WorkerId): Effect.Effect<void, PoolRejected | P, Scope.Scope>
} = dual(2, <P>(pool: CoroutinePool<P>, worker: WorkerId) => pool.acquire(worker))

/**
 * Takes a permit if one is free; see {@link CoroutinePool.tryAcquire}.
 *
 * **Example** (Taking and returning a permit by hand)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { CoroutinePool } from "coroutine-pool"
 *
 * declare const pool: CoroutinePool.CoroutinePool
 *
 * const program = Effect.gen(function*() {
 *   if (yield* CoroutinePool.tryAcquire(pool, "job")) {
 *     yield* CoroutinePool.release(pool, "job")
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const tryAcquire: {
  (worker: WorkerId): <P>(pool: CoroutinePool<P>) => Effect.Effect<boolean, P>
  <P>(pool: CoroutinePool<P>, worker: WorkerId): Effect.Effect<boolean, P>
} = dual(2, <P>(pool: CoroutinePool<P>, worker: WorkerId) => pool.tryAcquire(worker))

/**
 * Returns a permit taken with `tryAcquire`; see {@link CoroutinePool.release}.
 * Fails with `PermitNotHeld`, changing nothing, when the worker holds none.
 *
 * @since 0.1.0
 * @category combinators
 */
export const release: {
  (worker: WorkerId): <P>(pool: CoroutinePool<P>) => Effect.Effect<void, PermitNotHeld | P>
  <P>(pool: CoroutinePool<P>, worker: WorkerId): Effect.Effect<void, PermitNotHeld | P>
} = dual(2, <P>(pool: CoroutinePool<P>, worker: WorkerId) => pool.release(worker))
