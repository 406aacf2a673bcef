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

/** The events about one worker every pool publishes. */
export type WorkerTag = "Acquired" | "Rejected" | "Released" | "Queued" | "TimedOut" | "Abandoned"

/** Any event a pool publishes: the base events, and those its source adds. */
export interface Event {
  readonly _tag: string
  readonly [field: string]: unknown
}

// Upper bounds, in seconds, of the wait and hold time histograms.
export const boundaries: ReadonlyArray<number> = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

// A histogram the pool records into and the metrics registry reads when it
// is scraped, so recording costs a few arithmetic operations. Values known
// to be 0 (`zeros`) and values not measured (`unmeasured`, see
// `Ledger.sampling`) are only counted; a scrape puts the first in the first
// bucket and spreads the others as the measured ones are spread.
export class Buckets {
  readonly counts = new Array<number>(boundaries.length + 1).fill(0)
  // Measured values: their count and sum.
  measured = 0
  sum = 0
  min = Number.MAX_VALUE
  max = -Number.MAX_VALUE
  zeros = 0
  unmeasured = 0

  observe(value: number): void {
    let bucket = 0
    while (bucket < boundaries.length && value > (boundaries[bucket] as number)) bucket++
    this.counts[bucket] = (this.counts[bucket] as number) + 1
    this.measured++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }

  // Cumulative counts per upper bound, as Effect's own histograms report them
  // (the `+Inf` bucket is `count`). Every value is counted; those not
  // measured are spread (rounded down, cumulatively, so the counts never
  // decrease) and added to the sum at the mean of the measured ones.
  state(): Metric.HistogramState {
    const { measured, unmeasured, zeros } = this
    const spread = measured === 0 ? 0 : unmeasured / measured
    let cumulated = 0
    const buckets = boundaries.map((boundary, i): [number, number] => {
      cumulated += this.counts[i] as number
      return [boundary, zeros + cumulated + Math.floor(cumulated * spread)]
    })
    // (Before any measured value has come back, those not measured are in
    // the count alone.)
    const count = zeros + measured + unmeasured
    const sum = this.sum + (measured === 0 ? 0 : (this.sum / measured) * unmeasured)
    const min = zeros > 0 ? Math.min(0, this.min) : this.min
    const max = zeros > 0 ? Math.max(0, this.max) : this.max
    return { buckets, count, min, max, sum }
  }
}

export class Ledger {
  // Events published, by tag (`Lost`: a shared pool's leases).
  readonly totals = { Acquired: 0, Rejected: 0, Released: 0, Queued: 0, TimedOut: 0, Abandoned: 0, Lost: 0 }
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

  // Hold times are measured on 1 in `sampling` admissions without a wait
  // (on average, at random intervals so that no periodic workload is seen
  // through one phase of it); the others are counted, and spread as the
  // measured ones. Admissions after a wait read the clock anyway: always
  // measured.
  readonly sampling: number
  private untilSample = 1
  private seed = 0x9e3779b9

  constructor(
    pubsub: PubSub.PubSub<Take.Take<Event>>,
    capacity: number,
    clock: Clock.Clock | undefined,
    sampling: number
  ) {
    this.pubsub = pubsub
    this.capacity = capacity
    this.clock = clock
    this.origin = clock === undefined ? 0 : clock.currentTimeMillisUnsafe()
    this.sampling = sampling
    this.waitSeconds = clock === undefined ? undefined : new Buckets()
    this.holdSeconds = clock === undefined ? undefined : new Buckets()
  }

  // The clock's reading when the pool was made: times are kept from it, as
  // small integers (the epoch's millis would each take a heap number).
  private readonly origin: number

  /** Millis of the pool's clock since the pool was made; 0 when timing is off (the clock is never read). */
  now(): number {
    return this.clock === undefined ? 0 : this.clock.currentTimeMillisUnsafe() - this.origin
  }

  /**
   * Permits are taken without a wait: it lasted 0 ms, no clock is read for
   * that. Answers when the hold began, or `undefined` when it is not timed.
   */
  admittedNow(): number | undefined {
    if (this.clock === undefined) return undefined
    ;(this.waitSeconds as Buckets).zeros++
    if (--this.untilSample > 0) return undefined
    this.untilSample = this.nextSample()
    return this.clock.currentTimeMillisUnsafe() - this.origin
  }

  /** Permits are taken after a wait that began at `since`: answers the time of admission. */
  admitted(since: number): number | undefined {
    if (this.clock === undefined) return undefined
    const now = this.clock.currentTimeMillisUnsafe() - this.origin
    ;(this.waitSeconds as Buckets).observe((now - since) / 1000)
    return now
  }

  /** Permits whose hold began at `since` (`undefined`: not timed) came back. */
  held(since: number | undefined): void {
    if (this.clock === undefined) return
    if (since === undefined) (this.holdSeconds as Buckets).unmeasured++
    else (this.holdSeconds as Buckets).observe((this.clock.currentTimeMillisUnsafe() - this.origin - since) / 1000)
  }

  // A whole number from 1 to 2 × sampling - 1, evenly (xorshift32): the
  // admissions until the next measured one, `sampling` on average.
  private nextSample(): number {
    if (this.sampling === 1) return 1
    let x = this.seed
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.seed = x >>> 0
    return 1 + (this.seed % (2 * this.sampling - 1))
  }

  /** Counts a worker's event and publishes it with the pool's figures right after it. */
  publish(_tag: WorkerTag, worker: WorkerId, permits: number, figures: Figures): void {
    // One named field per tag: a keyed update would cost more than the
    // rest of this method on the paths every call takes.
    const totals = this.totals
    switch (_tag) {
      case "Acquired":
        totals.Acquired++
        break
      case "Released":
        totals.Released++
        break
      case "Rejected":
        totals.Rejected++
        break
      case "Queued":
        totals.Queued++
        break
      case "TimedOut":
        totals.TimedOut++
        break
      case "Abandoned":
        totals.Abandoned++
        break
    }
    if (this.listeners === 0) return
    const event = { _tag, worker, active: figures.shown, max: figures.max, waiting: figures.waiting }
    // A single permit, the usual case, goes without saying.
    this.emit(permits === 1 ? event : { ...event, permits })
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
export const make = (capacity: number, clock: Clock.Clock | undefined, sampling: number): Effect.Effect<Ledger> =>
  Effect.map(PubSub.sliding<Take.Take<Event>>(capacity), (pubsub) => new Ledger(pubsub, capacity, clock, sampling))
