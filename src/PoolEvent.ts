/**
 * What a pool publishes: one event per transition, in the order they
 * happened, and the tutorial's line for each. `CoroutinePool` re-exports all
 * of it.
 *
 * @since 0.3.0
 */

import * as Events from "./internal/events.ts"

/**
 * The label a caller gives itself when it asks for a permit: a number or a
 * string. Labels name the worker in events and errors and need not be unique
 * (an HTTP route name is fine).
 *
 * @since 0.1.0
 * @category models
 */
export const WorkerId: typeof Events.WorkerId = Events.WorkerId

/**
 * @since 0.1.0
 * @category models
 */
export type WorkerId = Events.WorkerId

/**
 * A worker was admitted, at once or when its turn in the queue came; `active`
 * is the count right after. One event per call, whatever its count of
 * permits (`permits`, when more than one).
 *
 * @since 0.1.0
 * @category events
 */
export const Acquired: typeof Events.Acquired = Events.Acquired

/**
 * @since 0.1.0
 * @category events
 */
export interface Acquired extends Events.Acquired {}

/**
 * A worker was turned away at once: too few permits were free (or others
 * were queued ahead of it) and it could not queue, because the queue was full
 * or its call never waits (`tryAcquire`, the `IfAvailable` calls). A
 * rejection changes no figure. Not published for a call after the pool closed.
 *
 * @since 0.1.0
 * @category events
 */
export const Rejected: typeof Events.Rejected = Events.Rejected

/**
 * @since 0.1.0
 * @category events
 */
export interface Rejected extends Events.Rejected {}

/**
 * A worker returned permits (`permits` of them, when more than one: all of a
 * call's, or part of a `tryAcquire` take). When someone was queued, the
 * freed permits went straight to the head of the queue if it fits, and its
 * `Acquired` event follows at once.
 *
 * @since 0.1.0
 * @category events
 */
export const Released: typeof Events.Released = Events.Released

/**
 * @since 0.1.0
 * @category events
 */
export interface Released extends Events.Released {}

/**
 * Too few permits were free (or others were queued ahead of it) and the
 * worker joined the back of the queue.
 *
 * @since 0.1.0
 * @category events
 */
export const Queued: typeof Events.Queued = Events.Queued

/**
 * @since 0.1.0
 * @category events
 */
export interface Queued extends Events.Queued {}

/**
 * A queued worker waited `maxWait` without getting a permit and left the queue.
 *
 * @since 0.1.0
 * @category events
 */
export const TimedOut: typeof Events.TimedOut = Events.TimedOut

/**
 * @since 0.1.0
 * @category events
 */
export interface TimedOut extends Events.TimedOut {}

/**
 * A queued worker left the queue without a permit: it was interrupted, the
 * pool closed, or a `resize` left `max` below what it asked for.
 *
 * @since 0.1.0
 * @category events
 */
export const Abandoned: typeof Events.Abandoned = Events.Abandoned

/**
 * @since 0.1.0
 * @category events
 */
export interface Abandoned extends Events.Abandoned {}

/**
 * `resize` changed the number of permits from `from` to `max`. Growing admits
 * waiters at once; shrinking takes no permit back, so `active` may stay above
 * `max` until holders release.
 *
 * @since 0.1.0
 * @category events
 */
export const Resized: typeof Events.Resized = Events.Resized

/**
 * @since 0.1.0
 * @category events
 */
export interface Resized extends Events.Resized {}

/**
 * One transition of a pool, as published on {@link CoroutinePool.events}.
 *
 * **Details**
 *
 * A worker's life in the pool reads `Acquired`, then `Released`; or
 * `Rejected`; or `Queued`, then `Acquired` (and later `Released`), `TimedOut`
 * or `Abandoned`. `Resized` marks a change of `max`. A worker event carries
 * `permits` only when the worker asked for more than one (since 0.4). A
 * shared pool adds its own (see `SharedPool.PoolEvent`). The schema decodes
 * events written out as JSON.
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
export const PoolEvent: typeof Events.PoolEvent = Events.PoolEvent

/**
 * @since 0.1.0
 * @category events
 */
export type PoolEvent = Events.PoolEvent

/**
 * Renders an event as one line, in the seed tutorial's words. The queue
 * length is shown only when someone waits, and the count of permits only
 * when it is more than one, so a pool without waiting prints exactly the
 * seed's lines.
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
 * CoroutinePool.formatEvent({ _tag: "Acquired", worker: 4, active: 3, max: 4, waiting: 0, permits: 3 })
 * // => "Worker 4: acquired 3 permits (3/4 active)"
 * ```
 *
 * @since 0.1.0
 * @category events
 */
export const formatEvent: (event: PoolEvent) => string = Events.formatEvent
