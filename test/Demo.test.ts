import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Scheduler } from "effect"
import { TestClock, TestConsole } from "effect/testing"
import { Demo } from "../src/index.ts"
import * as ReverseClock from "./utils/ReverseClock.ts"
import * as VirtualTime from "./utils/VirtualTime.ts"

const expected = readFileSync(new URL("./fixtures/expected-output.txt", import.meta.url), "utf8")
  .trimEnd()
  .split("\n")

describe("Demo.run", () => {
  it.effect("prints the seed's ten lines in 200 virtual millis, one Console.log per line", () =>
    Effect.gen(function* () {
      const fiber = yield* VirtualTime.start(Demo.run())
      assert.deepStrictEqual(yield* TestConsole.logLines, expected.slice(0, 4), "the first four lines come at once")
      yield* TestClock.adjust("199 millis")
      assert.isUndefined(fiber.pollUnsafe(), "the last two holders release at 200 millis")
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(yield* TestConsole.logLines, expected)
    })
  )

  it.effect("prints the same ten lines under every scheduling budget", () =>
    Effect.gen(function* () {
      for (const budget of [3, 4, 5, 7, 16, 2048]) {
        const { lines } = yield* VirtualTime.run(Demo.run(), "200 millis").pipe(
          Effect.provideService(Scheduler.MaxOpsBeforeYield, budget)
        )
        assert.deepStrictEqual(lines, expected, `MaxOpsBeforeYield ${budget}`)
      }
    })
  )

  it.effect("prints the same ten lines when equal sleeps wake in reverse order", () =>
    Effect.gen(function* () {
      const reverse = ReverseClock.make()
      const fiber = yield* Effect.forkChild(Effect.provideService(Demo.run(), Clock.Clock, reverse.clock))
      yield* reverse.runAll
      yield* Fiber.join(fiber)
      assert.strictEqual(reverse.now(), 200)
      assert.deepStrictEqual(yield* TestConsole.logLines, expected)
    })
  )

  it.effect("stops every worker when interrupted, after a consistent prefix of the lines", () =>
    Effect.gen(function* () {
      const fiber = yield* VirtualTime.start(Demo.run())
      yield* TestClock.adjust("150 millis")
      yield* Fiber.interrupt(fiber)
      const printed = yield* TestConsole.logLines
      assert.deepStrictEqual(printed, expected.slice(0, printed.length))
      assert.isAtLeast(printed.length, 8)
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* TestConsole.logLines).length, printed.length, "nothing runs on afterwards")
    })
  )

  it.effect("prints nothing and fails with InvalidOption naming the option", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<[Demo.Options, string, string]> = [
        [{ workers: 0 }, "workers", "Invalid workers: expected an integer from 1 to 1000, got 0"],
        [{ workers: 1001 }, "workers", "Invalid workers: expected an integer from 1 to 1000, got 1001"],
        [{ workers: 2.5 }, "workers", "Invalid workers: expected an integer from 1 to 1000, got 2.5"],
        [
          { workers: "4" as unknown as number },
          "workers",
          'Invalid workers: expected an integer from 1 to 1000, got "4"'
        ],
        [{ max: 0 }, "max", "Invalid max: expected a positive integer, got 0"],
        [{ max: Number.NaN }, "max", "Invalid max: expected a positive integer, got NaN"],
        [
          { hold: "abc" as Duration.Input },
          "hold",
          'Invalid hold: expected a duration from 0 to 1 minute, such as "100 millis", got "abc"'
        ],
        [
          { hold: "-5 millis" },
          "hold",
          'Invalid hold: expected a duration from 0 to 1 minute, such as "100 millis", got "-5 millis"'
        ],
        [
          { hold: Duration.infinity },
          "hold",
          'Invalid hold: expected a duration from 0 to 1 minute, such as "100 millis", got Infinity'
        ],
        [
          { retry: 0 },
          "retry",
          'Invalid retry: expected a duration from 1 millisecond to 1 minute, such as "100 millis", got 0'
        ],
        [
          { retry: Duration.zero },
          "retry",
          'Invalid retry: expected a duration from 1 millisecond to 1 minute, such as "100 millis", got 0 millis'
        ],
        // "1 nanos" printed about 2e8 lines while memory grew to a crash.
        [
          { retry: "1 nanos" },
          "retry",
          'Invalid retry: expected a duration from 1 millisecond to 1 minute, such as "100 millis", got "1 nanos"'
        ],
        [
          { hold: "2 minutes" },
          "hold",
          'Invalid hold: expected a duration from 0 to 1 minute, such as "100 millis", got "2 minutes"'
        ],
        // Within bounds, but 999 workers trying again every milli for 999 rounds of a second.
        [
          { workers: 1000, max: 1, hold: "1 second", retry: "1 millis" },
          "retry",
          'Invalid retry: expected at least 10194 millis with these workers, max and hold (a shorter one would print over 100,000 lines), got "1 millis"'
        ]
      ]
      for (const [options, option, message] of cases) {
        const error = yield* Effect.flip(Demo.run(options))
        assert.instanceOf(error, Demo.InvalidOption)
        assert.strictEqual(error.option, option)
        assert.strictEqual(error.message, message)
      }
      assert.deepStrictEqual(yield* TestConsole.logLines, [])
    })
  )

  it.effect("holds for zero time when asked", () =>
    Effect.gen(function* () {
      yield* Demo.run({ workers: 3, max: 1, hold: 0 })
      assert.deepStrictEqual(yield* TestConsole.logLines, [
        "Worker 0: acquired (1/1 active)",
        "Worker 0: released (0/1 active)",
        "Worker 1: acquired (1/1 active)",
        "Worker 1: released (0/1 active)",
        "Worker 2: acquired (1/1 active)",
        "Worker 2: released (0/1 active)"
      ])
    })
  )
})
