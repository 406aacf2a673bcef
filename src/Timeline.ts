/**
 * A picture of a pool's run: its events stamped with their time, written as
 * JSON lines or drawn as an ASCII timeline.
 *
 * {@link stamp} pairs each event of a pool's stream with the `Clock`'s time
 * since the run started; {@link render} draws the stamped events as one row
 * per worker with time along the columns; {@link formatJson} writes one entry
 * as a line of JSON that {@link EntryFromJsonString} reads back. Rendering is
 * pure: the same entries always give the same picture.
 * `npm start -- --timeline` and `npm start -- --json` show the demo's run
 * both ways.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as CoroutinePool from "./CoroutinePool.ts"
import * as SharedEvents from "./internal/sharedEvents.ts"

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * One event of a pool and its time: `at` millis after the run started.
 *
 * **When to use**
 *
 * To check or read entries that come from outside the program; entries made
 * by {@link stamp} need no decoding.
 *
 * **Details**
 *
 * The schema reads and writes entries as plain data; with
 * {@link EntryFromJsonString} it reads and writes them as JSON. The event is
 * a {@link CoroutinePool.PoolEvent} (or a shared pool's, `SharedPool.PoolEvent`), checked by its schema.
 *
 * **Example** (Decoding an entry)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { Timeline } from "coroutine-pool"
 *
 * const entry = Schema.decodeUnknownSync(Timeline.Entry)({
 *   at: 100,
 *   event: { _tag: "Released", worker: 0, active: 1, max: 2, waiting: 0 }
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const Entry = Schema.Struct({ at: Schema.Finite, event: SharedEvents.SharedEvent })

/**
 * @since 0.1.0
 * @category models
 */
export interface Entry extends Schema.Schema.Type<typeof Entry> {}

/**
 * The stamped events of one run, in the order they happened, and when the run
 * ended (millis after it started).
 *
 * **When to use**
 *
 * As the input of {@link render}. `Demo.run` returns one; gather your own
 * with {@link stamp}, or decode lines written by {@link formatJson}.
 *
 * **Details**
 *
 * `end` closes the permits still held and the waits still open when the
 * record stops. Without it the record ends at its last entry.
 *
 * **Example** (A record read back from JSON lines)
 *
 * ```ts
 * import { Console, Effect, Schema } from "effect"
 * import { Timeline } from "coroutine-pool"
 *
 * declare const lines: ReadonlyArray<string> // the output of `npm start -- --json`
 *
 * const record: Timeline.Timeline = {
 *   entries: lines.map((line) => Schema.decodeUnknownSync(Timeline.EntryFromJsonString)(line))
 * }
 * const program = Effect.flatMap(Timeline.render(record), Console.log)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Timeline {
  readonly entries: ReadonlyArray<Entry>
  readonly end?: number | undefined
}

// ---------------------------------------------------------------------------
// recording
// ---------------------------------------------------------------------------

/**
 * Pairs each event of a stream with the time it was seen: the `Clock`'s
 * millis minus `start`.
 *
 * **When to use**
 *
 * To record a run for {@link render} or for {@link formatJson}: read the
 * `Clock` when the run starts, subscribe to the pool, and stamp the
 * subscription's stream.
 *
 * **Details**
 *
 * The time is read when the consumer pulls the event, after the pool
 * published it. Under the `TestClock` that is the virtual instant of the
 * transition; on the real clock it is later than the transition by however
 * long the consumer took to get to it: well under a milli in a warm process,
 * several millis in one that has just started. (The demo needs the same record
 * on every clock, so it stamps its events with its own schedule instead.)
 *
 * **Example** (Recording a pool's events)
 *
 * ```ts
 * import { Clock, Console, Effect, Exit, Fiber, Scope, Stream } from "effect"
 * import { CoroutinePool, Timeline } from "coroutine-pool"
 *
 * const program = Effect.gen(function*() {
 *   // The pool gets a scope of its own: closing it ends the event stream.
 *   const poolScope = yield* Scope.make()
 *   const pool = yield* CoroutinePool.make({ max: 1 }).pipe(Scope.provide(poolScope))
 *   const start = yield* Clock.currentTimeMillis
 *   const events = yield* pool.subscribe
 *   const recorder = yield* Effect.forkChild(Stream.runCollect(Timeline.stamp(events, start)))
 *
 *   yield* Effect.all([
 *     pool.withPermit(Effect.sleep("30 millis"), { worker: "a" }),
 *     Effect.ignore(pool.withPermit(Effect.void, { worker: "b" }))
 *   ], { concurrency: "unbounded" })
 *
 *   const end = (yield* Clock.currentTimeMillis) - start
 *   yield* Scope.close(poolScope, Exit.void)
 *   const entries = yield* Fiber.join(recorder)
 *   yield* Console.log(yield* Timeline.render({ entries, end }))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category recording
 */
export const stamp: {
  (start: number): <E, R>(events: Stream.Stream<SharedEvents.SharedEvent, E, R>) => Stream.Stream<Entry, E, R>
  <E, R>(events: Stream.Stream<SharedEvents.SharedEvent, E, R>, start: number): Stream.Stream<Entry, E, R>
} = dual(
  2,
  <E, R>(events: Stream.Stream<SharedEvents.SharedEvent, E, R>, start: number): Stream.Stream<Entry, E, R> =>
    Stream.mapEffect(events, (event) =>
      Effect.map(Clock.currentTimeMillis, (now): Entry => ({ at: now - start, event }))
    )
)

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/**
 * Reads and writes an {@link Entry} as a string of JSON, such as
 * `{"at":100,"event":{"_tag":"Released","worker":0,"active":1,"max":2,"waiting":0}}`.
 *
 * **When to use**
 *
 * To read back the lines of `npm start -- --json`, or any line written with
 * {@link formatJson}.
 *
 * **Example** (Reading a JSON line)
 *
 * ```ts
 * import { Schema } from "effect"
 * import { SharedPool, Timeline } from "coroutine-pool"
 *
 * const entry = Schema.decodeUnknownSync(Timeline.EntryFromJsonString)(
 *   '{"at":0,"event":{"_tag":"Rejected","worker":2,"active":2,"max":2,"waiting":0}}'
 * )
 * SharedPool.formatEvent(entry.event) // => "Worker 2: rejected (2/2 active)"
 * ```
 *
 * @since 0.1.0
 * @category JSON
 */
export const EntryFromJsonString = Schema.fromJsonString(Entry)

/**
 * Writes an entry as one line of JSON: `at` first, then the event as the
 * {@link CoroutinePool.PoolEvent} schema encodes it.
 *
 * **When to use**
 *
 * To hand a run's events to another tool, one JSON value per line. It is the
 * JSON counterpart of {@link CoroutinePool.formatEvent}.
 *
 * **Details**
 *
 * Throws a `SchemaError` for an entry its schema rejects, such as an `at`
 * that is not a finite number.
 *
 * **Example** (Writing a JSON line)
 *
 * ```ts
 * import { Timeline } from "coroutine-pool"
 *
 * Timeline.formatJson({ at: 0, event: { _tag: "Acquired", worker: 0, active: 1, max: 2, waiting: 0 } })
 * // => '{"at":0,"event":{"_tag":"Acquired","worker":0,"active":1,"max":2,"waiting":0}}'
 * ```
 *
 * @since 0.1.0
 * @category JSON
 */
export const formatJson: (entry: Entry) => string = Schema.encodeSync(EntryFromJsonString)

// ---------------------------------------------------------------------------
// rendering
// ---------------------------------------------------------------------------

/**
 * How {@link render} lays out the picture.
 *
 * **When to use**
 *
 * To fix the scale, say to compare two runs of different lengths column for
 * column; the default picks one that fits the run.
 *
 * **Example** (One column per 5 millis)
 *
 * ```ts
 * import { Timeline } from "coroutine-pool"
 *
 * declare const record: Timeline.Timeline
 *
 * // Effect<string, InvalidRenderOption>: refused if over 1,000 columns
 * const picture = Timeline.render(record, { columnMillis: 5 })
 * ```
 *
 * @since 0.1.0
 * @category rendering
 */
export interface RenderOptions {
  /**
   * How many millis one column stands for. Default: the coarsest step that
   * puts every entry and the end exactly on a column boundary, in 16 to 60
   * columns; when there is none, the coarsest of 1, 2, 5, 10, 20, 50, ...
   * millis that gives the run at least 16 columns. The demo's default run
   * (events at 0, 100 and 200 millis) gets 10 millis.
   */
  readonly columnMillis?: number | undefined
}

/**
 * The marks {@link render} draws, one character each, by what they stand for.
 *
 * **When to use**
 *
 * To read a rendered picture back in a tool or a test without repeating the
 * characters.
 *
 * **Example** (Counting the columns a worker held a permit)
 *
 * ```ts
 * import { Timeline } from "coroutine-pool"
 *
 * declare const row: string // e.g. "Worker 0   ##########.........."
 *
 * const held = row.split("").filter((cell) => cell === Timeline.marks.held).length
 * ```
 *
 * @since 0.1.0
 * @category rendering
 */
export const marks = {
  held: "#",
  queued: "~",
  rejected: "x",
  timedOut: "t",
  abandoned: "a",
  resized: "r",
  idle: ".",
  lost: "!",
  warming: "w"
} as const

/**
 * Draws a run as ASCII: a time axis, one row per worker, and a legend.
 *
 * **When to use**
 *
 * To see at a glance who held a permit when, who waited, and who was turned
 * away: `npm start -- --timeline` prints the demo's run this way.
 *
 * **Details**
 *
 * Each column stands for `columnMillis` (see {@link RenderOptions}); times
 * are rounded to the nearest column boundary, so a time a few millis off (as
 * read from the real clock) still lands in the column it belongs to. A row
 * shows `#` while the worker holds a permit (from `Acquired` to `Released`),
 * `~` while it is queued (from `Queued` to its `Acquired`, `TimedOut` or
 * `Abandoned`), and `x`, `t`, `a` in the column where it was rejected, timed
 * out or abandoned the queue; `.` elsewhere. A hold or a wait shorter than a
 * column still takes one. When several things fall in one column, a moment
 * (`x`, `t`, `a`) is drawn over a hold, and a hold over a wait.
 *
 * A worker label shared by several fibers holds while any of them holds.
 * Numbered workers come first, in order, then named ones in the order they
 * first appear. A `Pool` row with an `r` per `Resized` event is added when
 * the pool was resized. A `Released` (or a queue exit) with no start in the
 * entries, as in a record that began mid-run, is drawn from the start.
 *
 * The picture has no trailing newline. Fails with {@link InvalidRenderOption}
 * for a `columnMillis` that is not above 0 or would make the picture over
 * 1,000 columns wide, and for a time or `end` that is not 0 millis or more.
 *
 * **Example** (Drawing a hand-written run)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { Timeline } from "coroutine-pool"
 *
 * const figures = { active: 1, max: 1, waiting: 0 }
 * const picture = Effect.runSync(Timeline.render({
 *   entries: [
 *     { at: 0, event: { _tag: "Acquired", worker: 0, ...figures } },
 *     { at: 0, event: { _tag: "Rejected", worker: 1, ...figures } },
 *     { at: 30, event: { _tag: "Released", worker: 0, ...figures, active: 0 } }
 *   ],
 *   end: 50
 * }, { columnMillis: 10 }))
 * console.log(picture)
 * // time (ms)  0
 * //            |-----
 * // Worker 0   ###..
 * // Worker 1   x....
 * //
 * // # holds a permit  ~ queued  x rejected  t timed out  a abandoned  r resized  . idle
 * // 1 column = 10 ms (times rounded to the nearest 10 ms)
 * ```
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (timeline: Timeline, options: RenderOptions = {}): Effect.Effect<string, InvalidRenderOption> =>
  Effect.suspend(() => {
    const times = timeline.entries.map((entry) => entry.at)
    const bad = times.findIndex((at) => !isTime(at))
    if (bad >= 0) return invalid("entries", times[bad], "times of 0 millis or more")
    if (timeline.end !== undefined && !isTime(timeline.end)) return invalid("end", timeline.end, "0 millis or more")
    const last = times.reduce((latest, at) => Math.max(latest, at), 0)
    const end = Math.max(timeline.end ?? last, last, 0)
    const { columnMillis } = options
    if (columnMillis !== undefined && !(isTime(columnMillis) && columnMillis > 0)) {
      return invalid("columnMillis", columnMillis, "a number of millis above 0")
    }
    const step = columnMillis ?? autoStep(end, times)
    // The widest column a moment can land in decides the picture's width.
    if (Math.round(end / step) + 1 > maxPictureColumns) {
      return invalid(
        "columnMillis",
        columnMillis,
        `at least ${format(end / (maxPictureColumns - 1))} for this run, so that the picture is at most ${maxPictureColumns} columns wide`
      )
    }
    return Effect.succeed(draw(timeline.entries, end, step))
  })

// A picture wider than this would be unreadable (and, for a tiny column, too
// large to build): `render` refuses it.
const maxPictureColumns = 1000

const isTime = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value) && value >= 0

const invalid = (option: InvalidRenderOption["option"], value: unknown, expected: string) =>
  Effect.fail(new InvalidRenderOption({ option, value, expected }))

/**
 * `render` was given what it cannot draw: a `columnMillis` that is not above
 * 0, or so small that the picture would be over 1,000 columns wide; or an
 * entry time or `end` that is not a number of millis of 0 or more. `option`
 * names it, `value` carries it, `expected` says what would do.
 *
 * @since 0.3.0
 * @category errors
 */
export class InvalidRenderOption extends Schema.TaggedError<InvalidRenderOption>()("InvalidRenderOption", {
  option: Schema.Literals(["columnMillis", "entries", "end"]),
  value: Schema.Unknown,
  expected: Schema.String
}) {
  override get message(): string {
    return `Invalid ${this.option}: expected ${this.expected}, got ${String(this.value)}`
  }
}

const draw = (entries: ReadonlyArray<Entry>, end: number, step: number): string => {
  const column = (at: number) => Math.max(0, Math.round(at / step))

  const rows = track(entries, end)
  let columns = Math.max(1, column(end))
  for (const row of rows) {
    for (const [at] of row.moments) columns = Math.max(columns, column(at) + 1)
  }

  const paint = (row: Row): string => {
    const cells = new Array<string>(columns).fill(marks.idle)
    const fill = (spans: ReadonlyArray<Span>, mark: string) => {
      for (const [from, to] of spans) {
        const first = column(from)
        const last = Math.max(first, column(to) - 1)
        for (let i = first; i <= last && i < columns; i++) cells[i] = mark
      }
    }
    fill(row.waits, marks.queued)
    fill(row.holds, marks.held)
    for (const [at, mark] of row.moments) cells[column(at)] = mark
    return cells.join("")
  }

  const title = "time (ms)"
  const width = Math.max(title.length, ...rows.map((row) => row.label.length)) + 2
  const scale = `${format(step)} ms`
  return [
    title.padEnd(width) + axisLabels(columns, step),
    " ".repeat(width) + ruler(columns),
    ...rows.map((row) => row.label.padEnd(width) + paint(row)),
    "",
    legend(rows),
    `1 column = ${scale} (times rounded to the nearest ${scale})`
  ].join("\n")
}

// What each mark stands for in the legend. Marks only some runs have (a
// shared pool's) are listed only when the picture shows them, so the
// pictures of in-process pools stay as they were.
const meanings: ReadonlyArray<readonly [mark: string, meaning: string, always: boolean]> = [
  [marks.held, "holds a permit", true],
  [marks.queued, "queued", true],
  [marks.rejected, "rejected", true],
  [marks.timedOut, "timed out", true],
  [marks.abandoned, "abandoned", true],
  [marks.resized, "resized", true],
  [marks.idle, "idle", true],
  [marks.lost, "lost its lease", false],
  [marks.warming, "store warming up", false]
]

const legend = (rows: ReadonlyArray<Row>): string => {
  const used = new Set(rows.flatMap((row) => row.moments.map(([, mark]) => mark)))
  return meanings
    .filter(([mark, , always]) => always || used.has(mark))
    .map(([mark, meaning]) => `${mark} ${meaning}`)
    .join("  ")
}

// The picture's width bounds when the step is chosen for it.
const minColumns = 16
const maxColumns = 60

// The coarsest step that puts every time exactly on a column boundary: a
// divisor of their greatest common divisor, for a picture of 16 to 60
// columns. Failing that (times with fractions, or jitter from a real clock),
// the coarsest step of 1, 2, 5, 10, 20, 50, ... millis with 16 columns or more.
const autoStep = (end: number, times: ReadonlyArray<number>): number => {
  const whole = [end, ...times].every((at) => Number.isSafeInteger(at) && at >= 0)
  const common = whole ? times.reduce(gcd, end) : 0
  let exact = 0
  for (let divisor = 1; divisor * divisor <= common; divisor++) {
    if (common % divisor !== 0) continue
    for (const step of [divisor, common / divisor]) {
      const columns = end / step
      if (columns >= minColumns && columns <= maxColumns && step > exact) exact = step
    }
  }
  if (exact > 0) return exact
  let step = 1
  for (let decade = 1; ; decade *= 10) {
    for (const candidate of [decade, 2 * decade, 5 * decade]) {
      if (end / candidate < minColumns) return step
      step = candidate
    }
  }
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b))

const format = (millis: number): string => String(Number(millis.toPrecision(12)))

// Ticks every ten columns, at each column boundary's time.
const ruler = (columns: number): string =>
  Array.from({ length: columns + 1 }, (_, i) => (i % 10 === 0 ? "|" : "-")).join("")

const axisLabels = (columns: number, step: number): string => {
  let line = ""
  for (let i = 0; i <= columns; i += 10) {
    const label = format(i * step)
    // A label that would run into the one before it is left out.
    if (line.length > 0 && line.length >= i) continue
    line = line.padEnd(i) + label
  }
  return line
}

type Span = readonly [from: number, to: number]

interface Row {
  readonly label: string
  readonly holds: Array<Span>
  readonly waits: Array<Span>
  readonly moments: Array<readonly [at: number, mark: string]>
}

// One worker's open holds and waits: how many, and since when the first.
interface Open {
  count: number
  since: number
}

// Replays the entries into spans and moments, one row per worker.
const track = (entries: ReadonlyArray<Entry>, end: number): Array<Row> => {
  const workers = new Map<CoroutinePool.WorkerId, { row: Row; held: Open; queued: Open }>()
  const pool: Row = { label: "Pool", holds: [], waits: [], moments: [] }

  // Holds are counted in permits (a release may return part of a take),
  // waits in callers.
  const open = (state: Open, at: number, n = 1) => {
    if (state.count === 0) state.since = at
    state.count += n
  }
  // An end with no start in the entries (a record begun mid-run) is drawn
  // from the start.
  const close = (state: Open, spans: Array<Span>, at: number, n = 1) => {
    if (state.count === 0) spans.push([0, at])
    else {
      state.count = Math.max(0, state.count - n)
      if (state.count === 0) spans.push([state.since, at])
    }
  }

  for (const { at, event } of entries) {
    if (event._tag === "Resized" || event._tag === "Warming") {
      pool.moments.push([at, event._tag === "Resized" ? marks.resized : marks.warming])
      continue
    }
    let worker = workers.get(event.worker)
    if (worker === undefined) {
      worker = {
        row: { label: `Worker ${event.worker}`, holds: [], waits: [], moments: [] },
        held: { count: 0, since: 0 },
        queued: { count: 0, since: 0 }
      }
      workers.set(event.worker, worker)
    }
    const { row, held, queued } = worker
    switch (event._tag) {
      case "Acquired":
        // No barging: an admission while this worker waits is its turn coming.
        if (queued.count > 0) close(queued, row.waits, at)
        open(held, at, event.permits ?? 1)
        break
      case "Released":
        close(held, row.holds, at, event.permits ?? 1)
        break
      case "Lost":
        close(held, row.holds, at, event.permits ?? 1)
        row.moments.push([at, marks.lost])
        break
      case "Queued":
        open(queued, at)
        break
      case "Rejected":
        row.moments.push([at, marks.rejected])
        break
      case "TimedOut":
        close(queued, row.waits, at)
        row.moments.push([at, marks.timedOut])
        break
      case "Abandoned":
        close(queued, row.waits, at)
        row.moments.push([at, marks.abandoned])
        break
    }
  }

  const ids = Array.from(workers.keys())
  const numbered = ids.filter((id) => typeof id === "number").sort((a, b) => a - b)
  const named = ids.filter((id) => typeof id === "string")
  const rows: Array<Row> = []
  for (const id of [...numbered, ...named]) {
    const worker = workers.get(id)
    if (worker === undefined) continue
    if (worker.held.count > 0) worker.row.holds.push([worker.held.since, end])
    if (worker.queued.count > 0) worker.row.waits.push([worker.queued.since, end])
    rows.push(worker.row)
  }
  if (pool.moments.length > 0) rows.push(pool)
  return rows
}
