// What every pool counts and publishes: the totals of its events, the
// rejections by reason, the wait and hold histograms, and the event hub its
// subscribers read. The engine records each transition here, in the same
// synchronous step that made it.

import * as Channel from "effect/Channel"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type * as Metric from "effect/Metric"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Take from "effect/Take"
import type { WorkerId } from "./errors.ts"

// The figures every event carries: permits taken (as the pool shows them),
// permits in force, callers queued.
export interface Figures {
  readonly shown: number
  readonly max: number
  readonly waiting: number
}

/** Any event a pool publishes: the base events, and those its source adds. */
export interface Event {
  readonly _tag: string
  readonly [field: string]: unknown
}

// Upper bounds, in seconds, of the wait and hold time histograms.
export const boundaries: ReadonlyArray<number> = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

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

export class Ledger {
  // Events published, by tag: every base tag, plus whatever a source adds.
  readonly totals: Record<string, number> = {
    Acquired: 0,
    Rejected: 0,
    Released: 0,
    Queued: 0,
    TimedOut: 0,
    Abandoned: 0
  }
  // Callers turned away, by the reason they were given (`timeout` is `TimedOut`).
  readonly refused = { full: 0, "queue-full": 0, closed: 0, warming: 0 }
  // Events a subscriber missed because it fell `capacity` behind.
  dropped = 0
  // How many event subscriptions are open: with none, no event is built.
  listeners = 0
  // Set once the streams have ended: nothing more is published.
  ended = false
  readonly waitSeconds: Buckets | undefined
  readonly holdSeconds: Buckets | undefined
  // The fiber logging transitions at Debug, if any.
  logger: Fiber.Fiber<void> | undefined = undefined

  readonly pubsub: PubSub.PubSub<Take.Take<Event>>
  readonly capacity: number
  // The clock that times waits and holds, unless `timing` is off.
  readonly clock: Clock.Clock | undefined

  constructor(pubsub: PubSub.PubSub<Take.Take<Event>>, capacity: number, clock: Clock.Clock | undefined) {
    this.pubsub = pubsub
    this.capacity = capacity
    this.clock = clock
    this.waitSeconds = clock === undefined ? undefined : new Buckets()
    this.holdSeconds = clock === undefined ? undefined : new Buckets()
  }

  /** Millis of the pool's clock; 0 when timing is off (the clock is never read). */
  now(): number {
    return this.clock === undefined ? 0 : this.clock.currentTimeMillisUnsafe()
  }

  /**
   * Permits are taken after a wait that began at `since` (`undefined`: no
   * wait): answers the time of admission.
   */
  admitted(since: number | undefined): number {
    if (this.clock === undefined) return 0
    const now = this.clock.currentTimeMillisUnsafe()
    this.waitSeconds?.observe(since === undefined ? 0 : (now - since) / 1000)
    return now
  }

  /** Permits taken at `since` came back. */
  held(since: number): void {
    if (this.clock === undefined) return
    this.holdSeconds?.observe((this.clock.currentTimeMillisUnsafe() - since) / 1000)
  }

  /** Counts a worker's event and publishes it with the pool's figures right after it. */
  publish(_tag: string, worker: WorkerId, permits: number, figures: Figures): void {
    this.totals[_tag] = (this.totals[_tag] ?? 0) + 1
    if (this.listeners === 0) return
    const event = { _tag, worker, active: figures.shown, max: figures.max, waiting: figures.waiting }
    // A single permit, the usual case, goes without saying.
    this.emit(permits === 1 ? event : { ...event, permits })
  }

  /** Counts an event of a source's own (it must have a total). */
  count(_tag: string): void {
    this.totals[_tag] = (this.totals[_tag] ?? 0) + 1
  }

  resized(from: number, figures: Figures): void {
    if (this.listeners === 0) return
    this.emit({ _tag: "Resized", from, max: figures.max, active: figures.shown, waiting: figures.waiting })
  }

  /**
   * Publishes an event to every subscriber. A subscriber `capacity` events
   * behind loses its oldest one (the hub slides), so one that stalls costs a
   * bounded buffer; each loss is counted in `dropped`.
   */
  emit(event: Event): void {
    if (this.listeners === 0 || this.ended) return
    if (PubSub.publishUnsafe(this.pubsub, [event])) return
    // A subscriber is `capacity` behind: publishing as the hub's strategy
    // says slides its oldest event out (publishing unsafely never does).
    this.dropped++
    Effect.runSync(PubSub.publish(this.pubsub, [event]))
  }

  /** Ends every subscriber's stream, once the pool has published its last event. */
  readonly end: Effect.Effect<void> = Effect.suspend(() => {
    this.ended = true
    return Effect.asVoid(PubSub.end(this.pubsub, Exit.void))
  })

  // Counted before subscribing and uncounted after unsubscribing, so the
  // count is never below the real number of subscriptions.
  readonly subscribe: Effect.Effect<Stream.Stream<Event>, never, Scope.Scope> = Effect.uninterruptible(
    Effect.suspend(() => {
      this.listeners++
      return Effect.addFinalizer(() =>
        Effect.sync(() => {
          this.listeners--
        })
      ).pipe(
        Effect.andThen(PubSub.subscribe(this.pubsub)),
        Effect.map((subscription) => Stream.fromChannel(Channel.fromEffectTake(PubSub.take(subscription))))
      )
    })
  )
}

/** A ledger whose hub holds up to `capacity` events per subscriber. */
export const make = (capacity: number, clock: Clock.Clock | undefined): Effect.Effect<Ledger> =>
  Effect.map(PubSub.sliding<Take.Take<Event>>(capacity), (pubsub) => new Ledger(pubsub, capacity, clock))
