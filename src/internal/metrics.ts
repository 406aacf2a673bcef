// The pool's metrics: their definitions, the histogram the pool records
// into, and their registration, read from the pool when scraped. Shared by
// the in-process pool and SharedPool.

import type * as Context from "effect/Context"
import { constVoid } from "effect/Function"
import * as Metric from "effect/Metric"
import type { PoolStats } from "../CoroutinePool.ts"

// Upper bounds, in seconds, of the wait and hold time histograms.
const boundaries: ReadonlyArray<number> = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

// A histogram the pool records into and the metrics registry reads when it
// is scraped, so recording costs a few arithmetic operations.
export class Buckets {
  readonly counts = new Array<number>(boundaries.length + 1).fill(0)
  count = 0
  sum = 0
  min = Number.MAX_VALUE
  max = -Number.MAX_VALUE

  observe(value: number): void {
    let bucket = 0
    while (bucket < boundaries.length && value > (boundaries[bucket] as number)) bucket++
    this.counts[bucket] = (this.counts[bucket] as number) + 1
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }

  // Cumulative counts per upper bound, as Effect's own histograms report them
  // (the `+Inf` bucket is `count`).
  state(): Metric.HistogramState {
    let cumulated = 0
    const buckets = boundaries.map((boundary, i): [number, number] => {
      cumulated += this.counts[i] as number
      return [boundary, cumulated]
    })
    return { buckets, count: this.count, min: this.min, max: this.max, sum: this.sum }
  }
}

export const metrics = {
  active: Metric.gauge("coroutine_pool_active", { description: "Permits taken right now" }),
  waiting: Metric.gauge("coroutine_pool_waiting", { description: "Callers queued for a permit right now" }),
  max: Metric.gauge("coroutine_pool_max", { description: "Permits in force" }),
  acquired: Metric.counter("coroutine_pool_acquired_total", {
    description: "Permits taken, at once or after a wait",
    incremental: true
  }),
  rejected: Metric.counter("coroutine_pool_rejected_total", {
    description: "Callers turned away, by reason",
    incremental: true
  }),
  released: Metric.counter("coroutine_pool_released_total", { description: "Permits returned", incremental: true }),
  abandoned: Metric.counter("coroutine_pool_abandoned_total", {
    description: "Queued callers that left without a permit (interrupted, or the pool closed)",
    incremental: true
  }),
  wait: Metric.histogram("coroutine_pool_wait_seconds", {
    description: "Time from asking for a permit to getting it",
    boundaries
  }),
  lost: Metric.counter("coroutine_pool_lost_total", {
    description: "Leases lost while held (shared pools)",
    incremental: true
  }),
  hold: Metric.histogram("coroutine_pool_hold_seconds", {
    description: "Time a permit was held",
    boundaries
  })
} as const

// What the registry reads from a pool when it is scraped, and `stats` too.
export interface Source {
  readonly active: number
  readonly waiting: number
  readonly max: number
  readonly maxWaiting: number
  readonly totals: {
    readonly Acquired: number
    readonly Rejected: number
    readonly Released: number
    readonly Queued: number
    readonly TimedOut: number
    readonly Abandoned: number
  }
  readonly refused: { readonly full: number; readonly "queue-full": number; readonly closed: number }
}

// What a shared pool adds: lost leases and warm-up refusals.
export interface SharedSource extends Source {
  readonly totals: Source["totals"] & { readonly Lost: number }
  readonly refused: Source["refused"] & { readonly warming: number }
}

// A pool's `stats`: its figures and the totals of its events, read in one step.
export const stats = (state: Source | SharedSource): PoolStats => {
  const { totals } = state
  return {
    active: state.active,
    waiting: state.waiting,
    max: state.max,
    maxWaiting: state.maxWaiting,
    acquired: totals.Acquired,
    rejected: totals.Rejected,
    released: totals.Released,
    queued: totals.Queued,
    timedOut: totals.TimedOut,
    abandoned: totals.Abandoned,
    lost: "Lost" in totals ? totals.Lost : 0
  }
}

export interface Timing {
  readonly waitSeconds: Buckets
  readonly holdSeconds: Buckets
}

export const register = (
  state: Source | SharedSource,
  timing: Timing | undefined,
  pool: string,
  context: Context.Context<never>
): ReadonlyArray<Metric.Registration> => {
  const register = <State>(
    metric: Metric.Metric<number, State>,
    attributes: Metric.Metric.AttributeSet,
    get: () => State
  ) =>
    Metric.registerUnsafe(Metric.withAttributes(metric, attributes), context, {
      get,
      update: constVoid,
      modify: constVoid
    })
  const labels = { pool }
  const counter = (count: () => number) => () => ({ count: count(), incremental: true })
  return [
    register(metrics.active, labels, () => ({ value: state.active })),
    register(metrics.waiting, labels, () => ({ value: state.waiting })),
    register(metrics.max, labels, () => ({ value: state.max })),
    register(
      metrics.acquired,
      labels,
      counter(() => state.totals.Acquired)
    ),
    register(
      metrics.released,
      labels,
      counter(() => state.totals.Released)
    ),
    register(
      metrics.abandoned,
      labels,
      counter(() => state.totals.Abandoned)
    ),
    register(
      metrics.rejected,
      { pool, reason: "full" },
      counter(() => state.refused.full)
    ),
    register(
      metrics.rejected,
      { pool, reason: "queue-full" },
      counter(() => state.refused["queue-full"])
    ),
    register(
      metrics.rejected,
      { pool, reason: "timeout" },
      counter(() => state.totals.TimedOut)
    ),
    register(
      metrics.rejected,
      { pool, reason: "closed" },
      counter(() => state.refused.closed)
    ),
    ...("Lost" in state.totals && "warming" in state.refused
      ? [
          register(
            metrics.lost,
            labels,
            counter(() => (state as SharedSource).totals.Lost)
          ),
          register(
            metrics.rejected,
            { pool, reason: "warming" },
            counter(() => (state as SharedSource).refused.warming)
          )
        ]
      : []),
    ...(timing === undefined
      ? []
      : [
          register(metrics.wait, labels, () => timing.waitSeconds.state()),
          register(metrics.hold, labels, () => timing.holdSeconds.state())
        ])
  ]
}
