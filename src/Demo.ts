/**
 * The seed tutorial's scenario, run on a {@link CoroutinePool}.
 *
 * Every worker is a fiber that asks the pool for a permit (or several), holds
 * it for a while and returns it; a rejected worker waits and tries again until
 * it is admitted. Each transition is printed as the tutorial prints it.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as CoroutinePool from "./CoroutinePool.ts"
import * as Decode from "./internal/options.ts"
import * as Timeline from "./Timeline.ts"

/**
 * What {@link run} takes; every field is optional and defaults to the seed's
 * scenario ({@link defaults}).
 *
 * **Example** (A busier run)
 *
 * ```ts
 * import type { Demo } from "coroutine-pool"
 *
 * const options: Demo.Options = { workers: 6, max: 3, hold: "250 millis", retry: "50 millis" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How many workers to start, 1 to 1000. Default 4. */
  readonly workers?: number | undefined
  /** The pool's number of permits. Default 2. */
  readonly max?: number | undefined
  /** How long an admitted worker holds its permit. Default 100 millis. */
  readonly hold?: Duration.Input | undefined
  /** How long a rejected worker waits before it tries again. Default 100 millis. */
  readonly retry?: Duration.Input | undefined
  /** How many workers may queue for permits (the pool's `maxWaiting`). Default 0: nobody waits. */
  readonly maxWaiting?: number | undefined
  /** How long a queued worker waits before it gives up (and tries again later). Default: no limit. */
  readonly maxWait?: Duration.Input | undefined
  /** How many permits each worker asks for, 1 to `max`. Default 1. */
  readonly permits?: number | undefined
  /**
   * How each event is printed as it happens: `"lines"` (the default), the
   * tutorial's line (`CoroutinePool.formatEvent`); `"json"`, one line of JSON
   * with the millis since the run started (`Timeline.formatJson`).
   */
  readonly print?: "lines" | "json" | undefined
}

/**
 * The seed's scenario: four workers, two permits, each held for 100 millis; a
 * rejected worker tries again 100 millis later.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  workers: 4,
  max: 2,
  hold: Duration.millis(100),
  retry: Duration.millis(100)
} as const

/**
 * An option of {@link run} is out of range. `option` names it, `value` is what
 * was given and `expected` says what would have been accepted. Nothing is
 * printed and no worker starts.
 *
 * **Example** (Reporting a bad option)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Demo } from "coroutine-pool"
 *
 * const program = Demo.run({ workers: 0 }).pipe(
 *   Effect.catchTag("InvalidOption", (error) => Effect.succeed(error.message))
 * ) // "Invalid workers: expected an integer from 1 to 1000, got 0"
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOption extends Schema.TaggedError<InvalidOption>()("InvalidOption", {
  option: Schema.Literals(["workers", "max", "hold", "retry", "maxWaiting", "maxWait", "permits"]),
  value: Schema.Unknown,
  expected: Schema.String
}) {
  /** What was expected and what was given, e.g. `expected a positive integer, got 0`. */
  get detail(): string {
    return `expected ${this.expected}, got ${show(this.value)}`
  }

  override get message(): string {
    return `Invalid ${this.option}: ${this.detail}`
  }
}

const show = (value: unknown): string =>
  Duration.isDuration(value)
    ? Duration.isFinite(value)
      ? `${Duration.toMillis(value)} millis`
      : Duration.format(value)
    : typeof value === "string"
      ? JSON.stringify(value)
      : String(value)

const Workers = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 }))

const decodeWorkers = (value: unknown) =>
  Schema.decodeUnknownEffect(Workers)(value).pipe(
    Effect.mapError(() => new InvalidOption({ option: "workers", value, expected: "an integer from 1 to 1000" }))
  )

const decodeDuration = (
  option: "hold" | "retry" | "maxWait",
  value: Duration.Input,
  bounds: { readonly min: number; readonly max: number },
  expected: string
) => {
  const millis = Decode.millis(value, bounds)
  return millis === undefined
    ? Effect.fail(new InvalidOption({ option, value, expected }))
    : Effect.succeed(Duration.millis(millis))
}

// A run prints a line per admission, release and rejection. Past this many
// it is no demo any more (and its record would fill the memory).
const maxLines = 100_000

const decodeOptions = Effect.fnUntraced(function* (options: Options) {
  const workers = yield* decodeWorkers(options.workers ?? defaults.workers)
  const max = options.max ?? defaults.max
  const hold = yield* decodeDuration(
    "hold",
    options.hold ?? defaults.hold,
    { min: 0, max: 60_000 },
    'a duration from 0 to 1 minute, such as "100 millis"'
  )
  // A zero retry would spin: a rejected worker would try again at the same
  // instant forever, and time would never reach the holders' releases.
  const retry = yield* decodeDuration(
    "retry",
    options.retry ?? defaults.retry,
    { min: 1, max: 60_000 },
    'a duration from 1 millisecond to 1 minute, such as "100 millis"'
  )
  // Each worker that finds the pool full tries again every `retry` until its
  // round comes: about (workers - max) x rounds x hold / retry rejections.
  const rounds = Number.isSafeInteger(max) && max >= 1 ? Math.ceil(workers / max) : 1
  const rejections = (Math.max(0, workers - max) * rounds * Duration.toMillis(hold)) / Duration.toMillis(retry)
  if (2 * workers + rejections > maxLines) {
    const least = Math.ceil((Math.max(0, workers - max) * rounds * Duration.toMillis(hold)) / (maxLines - 2 * workers))
    return yield* new InvalidOption({
      option: "retry",
      value: options.retry ?? defaults.retry,
      expected: `at least ${least} millis with these workers, max and hold (a shorter one would print over ${maxLines.toLocaleString("en")} lines)`
    })
  }
  const maxWaiting = options.maxWaiting ?? 0
  if (!Number.isSafeInteger(maxWaiting) || maxWaiting < 0 || maxWaiting > 1000) {
    return yield* new InvalidOption({ option: "maxWaiting", value: maxWaiting, expected: "an integer from 0 to 1000" })
  }
  const maxWait =
    options.maxWait === undefined
      ? undefined
      : yield* decodeDuration(
          "maxWait",
          options.maxWait,
          { min: 1, max: 60_000 },
          'a duration from 1 millisecond to 1 minute, such as "150 millis"'
        )
  const permits = options.permits ?? 1
  // Against a valid max only: a bad max is named as such when the pool is made.
  if (!Number.isSafeInteger(permits) || permits < 1 || (Number.isSafeInteger(max) && max >= 1 && permits > max)) {
    return yield* new InvalidOption({
      option: "permits",
      value: permits,
      expected: `an integer from 1 to max (${max})`
    })
  }
  return { workers, max, hold, retry, maxWaiting, maxWait, permits }
})

// The demo's clock. Steps that fall due at the same instant (two holders
// releasing, a retry meeting a release) run in worker order, on the real clock
// and the TestClock alike and under any scheduling, instead of in whichever
// order the runtime wakes two equal sleeps. A worker may act only when its
// (due time, id) is the smallest of all workers'; it keeps that turn until it
// schedules its next step or leaves.
//
// Steps are due on a schedule (the step being run's due time plus the pause),
// not at whatever time the clock shows when the next one is planned: on the
// real clock each step runs a little late, and that lateness does not add up.
// The schedule's instant is the due time of the step being run, the clock's
// time on the TestClock; `onInstant` hears each new one before any step due
// then runs.
const makeTurnstile = (workers: number, start: number, onInstant: (instant: number) => Effect.Effect<void>) => {
  const due = Array.from({ length: workers }, () => start)
  const parked: Array<(() => void) | undefined> = []
  let instant = start

  const first = () => {
    let found = 0
    due.forEach((time, id) => {
      if (time < (due[found] ?? time)) found = id
    })
    return found
  }

  const passOn = () => {
    const next = first()
    const resume = parked[next]
    parked[next] = undefined
    resume?.()
  }

  const wait = (id: number) =>
    Effect.callback<void>((resume) => {
      if (first() === id) return resume(Effect.void)
      parked[id] = () => resume(Effect.void)
      return Effect.sync(() => {
        parked[id] = undefined
      })
    })

  /** Waits for this worker's turn. */
  const turn = (id: number) =>
    Effect.flatMap(wait(id), () => {
      const next = due[id] ?? instant
      if (next === instant) return Effect.void
      instant = next
      return onInstant(next)
    })

  /** Waits `duration` after the step being run, then for this worker's turn. */
  const after = (id: number, duration: Duration.Duration) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const next = instant + Duration.toMillis(duration)
      due[id] = next
      passOn()
      return Effect.andThen(Effect.sleep(Duration.millis(Math.max(0, next - now))), turn(id))
    })

  const leave = (id: number) =>
    Effect.sync(() => {
      due[id] = Number.POSITIVE_INFINITY
      passOn()
    })

  // A worker queued in the pool gives up its turn: it is next due when its
  // wait would time out (or never), unless a release admits it first.
  const queued = (id: number, until: number) => {
    due[id] = until
    passOn()
  }

  return { turn, after, leave, queued, now: () => instant }
}

/**
 * Runs the seed scenario and prints every transition through `Console`, one
 * `Console.log` call per line, in the order the transitions happened. Returns
 * the run's record for `Timeline.render`.
 *
 * **When to use**
 *
 * To see the pool at work, or to reproduce the tutorial's expected output.
 * `npm start` runs it with the defaults.
 *
 * **Details**
 *
 * Each worker is a fiber that calls `withPermits(permits)` on one pool and
 * holds the permits for `hold`; it queues when the pool allows
 * (`maxWaiting`, `maxWait`), and a worker turned away (or timed out) waits
 * `retry` and tries again until it is admitted. Steps due at the same instant run in worker order, so the
 * output depends only on the options, never on scheduling. Completes once
 * every worker is done and every line is printed. Fails with `InvalidOption`,
 * having printed nothing, when an option is out of range.
 *
 * The record stamps every event with its instant on the demo's schedule, in
 * millis since the run started: the clock's time under the `TestClock`; on
 * the real clock, when the step that caused it was due (each step runs a few
 * millis late, more or less from run to run). So the record, like the lines,
 * is the same on every clock: with the defaults, events at 0, 100 and 200
 * millis and an `end` of 200, when the last worker is done.
 *
 * **Example** (Printing the seed's ten lines)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Demo } from "coroutine-pool"
 *
 * Effect.runPromise(Demo.run())
 * // Worker 0: acquired (1/2 active)
 * // Worker 1: acquired (2/2 active)
 * // Worker 2: rejected (2/2 active)
 * // ...
 * ```
 *
 * **Example** (Drawing the run)
 *
 * ```ts
 * import { Console, Effect } from "effect"
 * import { Demo, Timeline } from "coroutine-pool"
 *
 * const program = Effect.gen(function*() {
 *   // Prints {"at":0,"event":{"_tag":"Acquired","worker":0,...}} and nine more lines
 *   const record = yield* Demo.run({ print: "json" })
 *   // Then the picture: one row per worker, 10 millis per column
 *   yield* Console.log(yield* Timeline.render(record))
 * })
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run: (options?: Options) => Effect.Effect<Timeline.Timeline, InvalidOption> = Effect.fn("Demo.run")(
  function* (options: Options = {}) {
    const { hold, max, maxWait, maxWaiting, permits, retry, workers } = yield* decodeOptions(options)
    // The pool lives in a scope of its own so that closing it ends the event
    // stream while the printer's subscription is still open.
    const poolScope = yield* Scope.fork(yield* Effect.scope)
    const pool = yield* CoroutinePool.make({ max, maxWaiting, maxWait }).pipe(
      Scope.provide(poolScope),
      Effect.mapError(() => new InvalidOption({ option: "max", value: max, expected: "a positive integer" }))
    )
    const events = yield* pool.subscribe
    // Each event is stamped with the schedule's instant when it happened, not
    // with the clock's time when the printer gets to it: the two agree on the
    // TestClock, but on the real clock the printer reads it a few millis late,
    // more or less from run to run. Only the worker whose turn it is acts, so
    // the pool's event count when an instant begins tells which events belong
    // to it (`pool.stats` counts every event published).
    const instants: Array<{ readonly from: number; readonly at: number }> = [{ from: 0, at: 0 }]
    const start = yield* Clock.currentTimeMillis
    const turnstile = makeTurnstile(workers, start, (instant) =>
      Effect.map(pool.stats, (stats) => {
        const from = stats.acquired + stats.rejected + stats.released + stats.queued + stats.timedOut + stats.abandoned
        instants.push({ from, at: instant - start })
      })
    )
    const entries: Array<Timeline.Entry> = []
    const format = (entry: Timeline.Entry, event: CoroutinePool.PoolEvent) =>
      options.print === "json" ? Timeline.formatJson(entry) : CoroutinePool.formatEvent(event)
    let current = 0
    // When each queued worker queued, on the schedule: a wait that times out
    // ends `maxWait` after it (its timer does not keep the schedule).
    const queuedAt = new Map<CoroutinePool.WorkerId, number>()
    const waitMillis = maxWait === undefined ? Number.POSITIVE_INFINITY : Duration.toMillis(maxWait)
    const printer = yield* Effect.forkChild(
      Stream.runForEach(events, (event) => {
        while ((instants[current + 1]?.from ?? Number.POSITIVE_INFINITY) <= entries.length) current++
        let at = instants[current]?.at ?? 0
        if (event._tag === "Queued") {
          queuedAt.set(event.worker, at)
          turnstile.queued(event.worker as number, start + at + waitMillis)
        } else if (event._tag === "TimedOut") at = (queuedAt.get(event.worker) ?? at) + waitMillis
        const entry: Timeline.Entry = { at, event }
        entries.push(entry)
        return Console.log(format(entry, event))
      })
    )

    const worker = (id: number) => {
      // The pool outlives the workers, so a rejection here is "full",
      // "queue-full" or "timeout": the worker tries again later (after a
      // timeout, from when its wait ended on the schedule).
      const attempt: Effect.Effect<void, InvalidOption> = pool
        .withPermits(permits, { worker: id })(turnstile.after(id, hold))
        .pipe(
          Effect.catchTags({
            PoolRejected: (rejected) =>
              rejected.reason === "timeout"
                ? Effect.andThen(turnstile.turn(id), Effect.andThen(turnstile.after(id, retry), attempt))
                : Effect.andThen(turnstile.after(id, retry), attempt),
            // Checked above: `permits` is at most `max`, which never changes here.
            InvalidPermits: () =>
              Effect.fail(new InvalidOption({ option: "permits", value: permits, expected: `at most max (${max})` }))
          })
        )
      return turnstile.turn(id).pipe(Effect.andThen(attempt), Effect.andThen(turnstile.leave(id)))
    }
    yield* Effect.forEach(
      Array.from({ length: workers }, (_, id) => id),
      worker,
      {
        concurrency: "unbounded",
        discard: true
      }
    )

    const end = turnstile.now() - start

    yield* Scope.close(poolScope, Exit.void)
    yield* Fiber.join(printer)
    return { entries, end }
  },
  Effect.scoped
)
