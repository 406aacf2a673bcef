/**
 * CoroutinePool: a bounded pool of permits for Effect fibers: admitted at
 * once, queued in a bounded FIFO or turned away, with an ordered stream of
 * events; one limit across processes with `SharedPool`.
 *
 * @since 0.1.0
 */

/**
 * The pool: `make`, `layer`, the `CoroutinePool` service, its events and errors.
 *
 * @since 0.1.0
 */
export * as CoroutinePool from "./CoroutinePool.ts"

/**
 * The seed tutorial's scenario, run on a pool and printed line by line.
 *
 * @since 0.1.0
 */
export * as Demo from "./Demo.ts"

/**
 * Admission control for Effect's HTTP router: each request under a permit, `503` with `Retry-After` when turned away.
 *
 * @since 0.1.0
 */
export * as HttpAdmission from "./HttpAdmission.ts"

/**
 * Where a shared pool's permits live: leases in this process or in Redis.
 *
 * @since 0.2.0
 */
export * as PoolStore from "./PoolStore.ts"

/**
 * A `CoroutinePool` whose permits are leases in a store: one limit across
 * many processes.
 *
 * @since 0.2.0
 */
export * as SharedPool from "./SharedPool.ts"

/**
 * A picture of a run: events stamped with their time, as JSON lines or as an
 * ASCII timeline.
 *
 * @since 0.1.0
 */
export * as Timeline from "./Timeline.ts"
