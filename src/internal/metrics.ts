// The pool's metrics: their definitions, the histogram the pool records
// into, and their registration, read from the pool when scraped.

import type * as Context from "effect/Context"
import { constVoid } from "effect/Function"
import * as Metric from "effect/Metric"
import { boundaries, type Ledger } from "./ledger.ts"

export const metrics = {
  active: Metric.gauge("coroutine_pool_active", { description: "Permits taken right now" }),
  waiting: Metric.gauge("coroutine_pool_waiting", { description: "Callers queued for a permit right now" }),
  max: Metric.gauge("coroutine_pool_max", { description: "Permits in force" }),
  acquired: Metric.counter("coroutine_pool_acquired_total", {
    description: "Admissions (Acquired events: one per call, whatever its count of permits), at once or after a wait",
    incremental: true
  }),
  rejected: Metric.counter("coroutine_pool_rejected_total", {
    description: "Callers turned away, by reason",
    incremental: true
  }),
  released: Metric.counter("coroutine_pool_released_total", {
    description: "Returns (Released events: one per call, whatever its count of permits)",
    incremental: true
  }),
  abandoned: Metric.counter("coroutine_pool_abandoned_total", {
    description: "Queued callers that left without a permit (interrupted, or the pool closed)",
    incremental: true
  }),
  dropped: Metric.counter("coroutine_pool_events_dropped_total", {
    description: "Events a subscriber that fell behind never saw",
    incremental: true
  }),
  wait: Metric.histogram("coroutine_pool_wait_seconds", {
    description: "Time from asking for permits to getting them (0 for an admission without a wait)",
    boundaries
  }),
  hold: Metric.histogram("coroutine_pool_hold_seconds", {
    description: "Time permits were held (sampled: see holdSampling; every hold counted)",
    boundaries
  })
} as const

/** Registers one series read from the pool at scrape time, in `context`'s registry. */
export const series = <State>(
  context: Context.Context<never>,
  metric: Metric.Metric<number, State>,
  attributes: Metric.Metric.AttributeSet,
  get: () => State
): Metric.Registration =>
  Metric.registerUnsafe(Metric.withAttributes(metric, attributes), context, {
    get,
    update: constVoid,
    modify: constVoid
  })

/** A counter's state read from a number. */
export const counted = (count: () => number) => () => ({ count: count(), incremental: true })

/** Registers the series every pool reports, labelled `pool=<name>`. */
export const register = (
  engine: { readonly active: number; readonly waiting: number; readonly max: number },
  ledger: Ledger,
  pool: string,
  context: Context.Context<never>
): Array<Metric.Registration> => {
  const labels = { pool }
  const { refused, totals } = ledger
  const registrations = [
    series(context, metrics.active, labels, () => ({ value: engine.active })),
    series(context, metrics.waiting, labels, () => ({ value: engine.waiting })),
    series(context, metrics.max, labels, () => ({ value: engine.max })),
    series(
      context,
      metrics.acquired,
      labels,
      counted(() => totals.Acquired)
    ),
    series(
      context,
      metrics.released,
      labels,
      counted(() => totals.Released)
    ),
    series(
      context,
      metrics.abandoned,
      labels,
      counted(() => totals.Abandoned)
    ),
    series(
      context,
      metrics.dropped,
      labels,
      counted(() => ledger.dropped)
    ),
    series(
      context,
      metrics.rejected,
      { pool, reason: "full" },
      counted(() => refused.full)
    ),
    series(
      context,
      metrics.rejected,
      { pool, reason: "queue-full" },
      counted(() => refused["queue-full"])
    ),
    series(
      context,
      metrics.rejected,
      { pool, reason: "timeout" },
      counted(() => totals.TimedOut)
    ),
    series(
      context,
      metrics.rejected,
      { pool, reason: "closed" },
      counted(() => refused.closed)
    )
  ]
  const { holdSeconds, waitSeconds } = ledger
  if (waitSeconds !== undefined && holdSeconds !== undefined) {
    registrations.push(series(context, metrics.wait, labels, () => waitSeconds.state()))
    registrations.push(series(context, metrics.hold, labels, () => holdSeconds.state()))
  }
  return registrations
}
