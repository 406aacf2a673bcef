import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Scheduler, Schema, Scope, Stream } from "effect"
import { TestClock, TestConsole } from "effect/testing"
import { CoroutinePool, Demo, SharedPool, Timeline } from "../src/index.ts"
import * as ManualClock from "./utils/ManualClock.ts"
import * as VirtualTime from "./utils/VirtualTime.ts"

const picture = readFileSync(new URL("./fixtures/timeline.txt", import.meta.url), "utf8")
const expected = readFileSync(new URL("./fixtures/expected-output.txt", import.meta.url), "utf8")
  .trimEnd()
  .split("\n")

const legend = "# holds a permit  ~ queued  x rejected  t timed out  a abandoned  r resized  . idle"

type WorkerEvent = Exclude<CoroutinePool.PoolEvent, CoroutinePool.Resized | SharedPool.Warming>

// An entry of a one-permit pool.
const entry = (
  at: number,
  _tag: WorkerEvent["_tag"],
  worker: CoroutinePool.WorkerId,
  active: number,
  waiting = 0
): Timeline.Entry => ({ at, event: { _tag, worker, active, max: 1, waiting } })

// `render` in a test that expects a picture.
const draw = (...args: Parameters<typeof Timeline.render>) => Effect.runSync(Timeline.render(...args))

const rows = (rendered: string) =>
  rendered.split("\n").filter((line) => line.startsWith("Worker") || line.startsWith("Pool"))

const scale = (rendered: string) => rendered.split("\n").at(-1)

describe("Timeline.render", () => {
  it("draws a hold, a rejection, a wait then a hold, and a wait that timed out", () => {
    const rendered = draw(
      {
        entries: [
          entry(0, "Acquired", 0, 1),
          entry(0, "Rejected", 1, 1),
          entry(10, "Queued", 2, 1, 1),
          entry(20, "Queued", 3, 1, 2),
          entry(40, "Released", 0, 0, 2),
          entry(40, "Acquired", 2, 1, 1),
          entry(50, "TimedOut", 3, 1, 0),
          entry(60, "Released", 2, 0)
        ],
        end: 60
      },
      { columnMillis: 10 }
    )
    assert.strictEqual(
      rendered,
      [
        "time (ms)  0",
        "           |------",
        "Worker 0   ####..",
        "Worker 1   x.....",
        "Worker 2   .~~~##",
        "Worker 3   ..~~~t",
        "",
        legend,
        "1 column = 10 ms (times rounded to the nearest 10 ms)"
      ].join("\n")
    )
  })

  it.effect("refuses a picture too wide to read, or times it cannot draw, with a typed error at once", () =>
    Effect.gen(function* () {
      const record = { entries: [entry(0, "Acquired", 0, 1), entry(200, "Released", 0, 0)], end: 200 }
      // 1e-6 ran 31 s and threw a RangeError; 1e-9 never finished.
      for (const columnMillis of [1e-6, 1e-9, 0.1]) {
        const error = yield* Effect.flip(Timeline.render(record, { columnMillis }))
        assert.deepStrictEqual(
          [error._tag, error.option, error.value, error.expected],
          [
            "InvalidRenderOption",
            "columnMillis",
            columnMillis,
            "at least 0.2002002002 for this run, so that the picture is at most 1000 columns wide"
          ]
        )
      }
      // The smallest column it asks for draws: an 11-character label, then 999 columns.
      assert.strictEqual(rows(yield* Timeline.render(record, { columnMillis: 0.2002002002 }))[0]?.length, 11 + 999)
      for (const columnMillis of [0, -10, Number.NaN, Number.POSITIVE_INFINITY]) {
        const error = yield* Effect.flip(Timeline.render(record, { columnMillis }))
        assert.deepStrictEqual([error.option, error.expected], ["columnMillis", "a number of millis above 0"])
      }
      const nan = yield* Effect.flip(Timeline.render({ entries: [entry(Number.NaN, "Rejected", 0, 1)] }))
      assert.deepStrictEqual([nan.option, Number.isNaN(nan.value)], ["entries", true])
      const end = yield* Effect.flip(Timeline.render({ entries: [], end: Number.POSITIVE_INFINITY }))
      assert.strictEqual(end.message, "Invalid end: expected 0 millis or more, got Infinity")
    })
  )

  it("chooses the coarsest step that puts every time on a column boundary, in 16 to 60 columns", () => {
    const run = (times: ReadonlyArray<number>, end: number) =>
      scale(draw({ entries: times.map((at) => entry(at, "Rejected", 0, 1)), end }))
    assert.strictEqual(run([0, 100], 200), "1 column = 10 ms (times rounded to the nearest 10 ms)")
    assert.strictEqual(run([0, 50, 250], 500), "1 column = 25 ms (times rounded to the nearest 25 ms)")
    assert.strictEqual(run([0, 300, 1500], 7500), "1 column = 300 ms (times rounded to the nearest 300 ms)")
    assert.strictEqual(run([0, 3, 7], 16), "1 column = 1 ms (times rounded to the nearest 1 ms)")
    // No exact step (times from a real clock): the coarsest of 1, 2, 5, 10... with 16 columns or more.
    assert.strictEqual(run([0, 103, 207], 211), "1 column = 10 ms (times rounded to the nearest 10 ms)")
    assert.strictEqual(run([0.5], 3), "1 column = 1 ms (times rounded to the nearest 1 ms)")
  })

  it("rounds times to the nearest column boundary", () => {
    const late = draw(
      { entries: [entry(4, "Acquired", 0, 1), entry(104, "Released", 0, 0)], end: 203 },
      { columnMillis: 10 }
    )
    assert.deepStrictEqual(rows(late), ["Worker 0   ##########.........."])
  })

  it("labels the axis every ten columns and sizes the label column to the longest label", () => {
    const rendered = draw({ entries: [entry(0, "Rejected", "checkout", 1)], end: 250 }, { columnMillis: 10 }).split(
      "\n"
    )
    assert.deepStrictEqual(rendered.slice(0, 3), [
      "time (ms)        0         100       200",
      "                 |---------|---------|-----",
      "Worker checkout  x........................"
    ])
  })

  it("draws a hold shorter than a column in one column, and a label shared by fibers as one row", () => {
    const rendered = draw(
      {
        entries: [
          entry(0, "Acquired", 0, 1),
          entry(0, "Released", 0, 0),
          entry(0, "Acquired", "db", 1),
          entry(20, "Acquired", "db", 2),
          entry(30, "Released", "db", 1),
          entry(50, "Released", "db", 0)
        ],
        end: 80
      },
      { columnMillis: 10 }
    )
    assert.deepStrictEqual(rows(rendered), ["Worker 0   #.......", "Worker db  #####..."])
  })

  it("counts a hold in permits: a partial release leaves the rest drawn until the last goes back", () => {
    const weighted = (at: number, _tag: "Acquired" | "Released", active: number, permits: number): Timeline.Entry => ({
      at,
      event: { _tag, worker: "batch", active, max: 3, waiting: 0, permits }
    })
    const rendered = draw(
      {
        entries: [
          weighted(10, "Acquired", 3, 3),
          { at: 20, event: { _tag: "Released", worker: "batch", active: 2, max: 3, waiting: 0 } },
          weighted(30, "Released", 0, 2)
        ],
        end: 50
      },
      { columnMillis: 10 }
    )
    assert.deepStrictEqual(rows(rendered), ["Worker batch  .##.."])
  })

  it("draws a moment over a hold and a hold over a wait", () => {
    const rendered = draw(
      {
        entries: [
          entry(0, "Acquired", "api", 1),
          entry(20, "Rejected", "api", 1),
          entry(30, "Queued", "api", 1, 1),
          entry(35, "Released", "api", 0, 1),
          entry(35, "Acquired", "api", 1),
          entry(60, "Released", "api", 0)
        ],
        end: 60
      },
      { columnMillis: 10 }
    )
    assert.deepStrictEqual(rows(rendered), ["Worker api  ##x###"])
  })

  it("lists numbered workers in order, then named ones as they appear, then the pool's resizes", () => {
    const resized: Timeline.Entry = { at: 10, event: { _tag: "Resized", from: 1, max: 2, active: 1, waiting: 0 } }
    const rendered = draw(
      {
        entries: [
          entry(0, "Rejected", "zeta", 1),
          entry(0, "Rejected", 10, 1),
          entry(0, "Rejected", "alpha", 1),
          entry(0, "Rejected", 2, 1),
          resized
        ],
        end: 30
      },
      { columnMillis: 10 }
    )
    assert.deepStrictEqual(rows(rendered), [
      "Worker 2      x..",
      "Worker 10     x..",
      "Worker zeta   x..",
      "Worker alpha  x..",
      "Pool          .r."
    ])
  })

  it("draws an end whose start is missing from the start, and what is still open up to the end", () => {
    const rendered = draw(
      {
        entries: [
          entry(20, "Released", 0, 0),
          entry(30, "Abandoned", 1, 1),
          entry(10, "Acquired", 2, 1),
          entry(20, "Queued", 3, 1, 1)
        ],
        end: 50
      },
      { columnMillis: 10 }
    )
    assert.deepStrictEqual(rows(rendered), [
      "Worker 0   ##...",
      "Worker 1   ~~~a.",
      "Worker 2   .####",
      "Worker 3   ..~~~"
    ])
  })

  it("draws an empty record as one column, and its end as the last entry without `end`", () => {
    assert.strictEqual(
      draw({ entries: [] }),
      ["time (ms)  0", "           |-", "", legend, "1 column = 1 ms (times rounded to the nearest 1 ms)"].join("\n")
    )
    const open = draw(
      { entries: [entry(0, "Acquired", 0, 1), entry(30, "Rejected", 1, 1)] },
      {
        columnMillis: 10
      }
    )
    assert.deepStrictEqual(rows(open), ["Worker 0   ###.", "Worker 1   ...x"])
  })
})

describe("Timeline JSON", () => {
  it("writes one line per entry and reads it back with the event schema", () => {
    const written = Timeline.formatJson(entry(100, "Released", 0, 0))
    assert.strictEqual(written, '{"at":100,"event":{"_tag":"Released","worker":0,"active":0,"max":1,"waiting":0}}')
    assert.deepStrictEqual(
      Schema.decodeUnknownSync(Timeline.EntryFromJsonString)(written),
      entry(100, "Released", 0, 0)
    )
    const resized: Timeline.Entry = { at: 5, event: { _tag: "Resized", from: 2, max: 3, active: 2, waiting: 1 } }
    assert.deepStrictEqual(
      Schema.decodeUnknownSync(Timeline.EntryFromJsonString)(Timeline.formatJson(resized)),
      resized
    )
  })

  it.effect("rejects a line that is not an entry", () =>
    Effect.gen(function* () {
      for (const line of [
        '{"at":0}',
        '{"at":"0","event":{"_tag":"Rejected","worker":1,"active":1,"max":1,"waiting":0}}'
      ]) {
        const exit = yield* Effect.exit(Schema.decodeUnknownEffect(Timeline.EntryFromJsonString)(line))
        assert.isTrue(Exit.isFailure(exit), line)
      }
    })
  )
})

describe("Timeline.stamp", () => {
  it.effect("stamps each event with the Clock's millis since the start", () =>
    Effect.gen(function* () {
      const poolScope = yield* Scope.make()
      const pool = yield* CoroutinePool.make({ max: 1 }).pipe(Scope.provide(poolScope))
      yield* TestClock.adjust("5 millis") // the start need not be 0
      const start = yield* Clock.currentTimeMillis
      const events = yield* pool.subscribe
      const recorder = yield* Effect.forkChild(Stream.runCollect(Timeline.stamp(events, start)))
      const holdA = pool.withPermit(Effect.sleep("30 millis"), { worker: "a" })
      const rejectB = Effect.ignore(pool.withPermit(Effect.void, { worker: "b" }))
      const run = yield* Effect.forkChild(Effect.all([holdA, rejectB], { concurrency: "unbounded" }))
      yield* TestClock.adjust("30 millis")
      yield* Fiber.join(run)
      yield* Scope.close(poolScope, Exit.void)
      const entries = yield* Fiber.join(recorder)
      assert.deepStrictEqual(
        entries.map(({ at, event }) => [at, event._tag]),
        [
          [0, "Acquired"],
          [0, "Rejected"],
          [30, "Released"]
        ]
      )
      assert.deepStrictEqual(rows(draw({ entries, end: 30 }, { columnMillis: 10 })), [
        "Worker a   ###",
        "Worker b   x.."
      ])
    })
  )
})

// A clock that wakes every sleep `lateness` millis late, one sleeper at a
// time, giving the woken fiber a single turn of the scheduler before the next
// wake: the demo's printer falls behind its workers.
const makeLateClock = (lateness: number) => {
  const { clock, now, setNow, sleepers } = ManualClock.make()
  const runUntilDone = <A, E>(fiber: Fiber.Fiber<A, E>) =>
    Effect.gen(function* () {
      while (fiber.pollUnsafe() === undefined) {
        const next = Array.from(sleepers).sort((a, b) => a.at - b.at)[0]
        if (next !== undefined) {
          sleepers.delete(next)
          setNow(next.at + lateness)
          next.wake()
        }
        yield* Effect.yieldNow
      }
      return yield* Fiber.join(fiber)
    })
  return { clock, runUntilDone, now }
}

describe("the demo's timeline", () => {
  it.effect("is the fixture under the TestClock, with events at 0, 100 and 200 millis", () =>
    Effect.gen(function* () {
      const { lines, value } = yield* VirtualTime.run(Demo.run(), "200 millis")
      assert.deepStrictEqual(lines, expected)
      assert.deepStrictEqual(
        value.entries.map((entry) => entry.at),
        [0, 0, 0, 0, 100, 100, 100, 100, 200, 200]
      )
      assert.strictEqual(value.end, 200)
      assert.strictEqual(`${draw(value)}\n`, picture)
    })
  )

  it.effect("is the same under every scheduling budget", () =>
    Effect.gen(function* () {
      for (const budget of [3, 4, 16]) {
        const { value } = yield* VirtualTime.run(Demo.run(), "200 millis").pipe(
          Effect.provideService(Scheduler.MaxOpsBeforeYield, budget)
        )
        assert.strictEqual(`${draw(value)}\n`, picture, `MaxOpsBeforeYield ${budget}`)
      }
    })
  )

  it.effect("is the same when every step wakes late and the printer falls behind", () =>
    Effect.gen(function* () {
      const late = makeLateClock(7)
      const fiber = yield* Effect.forkChild(
        Demo.run({ print: "json" }).pipe(
          Effect.provideService(Scheduler.MaxOpsBeforeYield, 3),
          Effect.provideService(Clock.Clock, late.clock)
        )
      )
      const value = yield* late.runUntilDone(fiber)
      assert.isAbove(late.now(), 200, "the clock ran late")
      assert.strictEqual(`${draw(value)}\n`, picture)
      const lines = yield* TestConsole.logLines
      assert.deepStrictEqual(
        lines.map((line) => Schema.decodeUnknownSync(Timeline.EntryFromJsonString)(line).at),
        [0, 0, 0, 0, 100, 100, 100, 100, 200, 200]
      )
    })
  )

  it.effect('prints one JSON line per event with print: "json", the same events as the lines', () =>
    Effect.gen(function* () {
      const { lines, value } = yield* VirtualTime.run(Demo.run({ print: "json" }), "200 millis")
      const decoded = lines.map((line) => Schema.decodeUnknownSync(Timeline.EntryFromJsonString)(line))
      assert.deepStrictEqual(decoded, value.entries)
      assert.deepStrictEqual(
        decoded.map((entry) => SharedPool.formatEvent(entry.event)),
        expected
      )
    })
  )
})
