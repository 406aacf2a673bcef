import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { CoroutinePool, SharedPool, Timeline } from "../src/index.ts"
import * as Transcript from "./utils/Transcript.ts"

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
const expected = readFileSync(new URL("./fixtures/expected-output.txt", import.meta.url), "utf8")
const picture = readFileSync(new URL("./fixtures/timeline.txt", import.meta.url), "utf8")

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

// Runs the CLI as a user would, in a process of its own, on the real clock.
const cli = (...args: ReadonlyArray<string>) =>
  Effect.callback<Run>((resume) => {
    const child = execFile(process.execPath, [bin, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
      resume(Effect.succeed({ code, stdout, stderr }))
    })
    return Effect.sync(() => child.kill())
  })

describe.concurrent("the demo CLI", () => {
  it.live("prints the seed's ten lines byte for byte and exits 0", () =>
    Effect.gen(function* () {
      const run = yield* cli()
      assert.deepStrictEqual(run, { code: 0, stdout: expected, stderr: "" })
    })
  )

  it.live("takes --workers, --max, --hold and --retry", () =>
    Effect.gen(function* () {
      const run = yield* cli("--workers", "5", "--max", "2", "--hold", "30 millis", "--retry", "20 millis")
      assert.strictEqual(run.code, 0)
      Transcript.assertConsistent(Transcript.parse(run.stdout.trimEnd().split("\n")), 5, 2)
    })
  )

  it.live("--help describes every flag and exits 0", () =>
    Effect.gen(function* () {
      const run = yield* cli("--help")
      assert.strictEqual(run.code, 0)
      for (const flag of ["--workers", "--max", "--hold", "--retry", "--timeline", "--json"]) {
        assert.include(run.stdout, flag)
      }
    })
  )

  it.live("--version prints the version in package.json", () =>
    Effect.gen(function* () {
      const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
      const run = yield* cli("--version")
      assert.deepStrictEqual(run, { code: 0, stdout: `coroutine-pool-demo v${version}\n`, stderr: "" })
    })
  )

  it.live("--timeline prints the ten lines, then the run's picture byte for byte", () =>
    Effect.gen(function* () {
      const run = yield* cli("--timeline")
      assert.deepStrictEqual(run, { code: 0, stdout: `${expected}\n${picture}`, stderr: "" })
    })
  )

  // Each line is an entry: `at` and an event that the PoolEvent schema decodes.
  const decodeJsonLines = (stdout: string) =>
    stdout
      .trimEnd()
      .split("\n")
      .map((line) => {
        const entry = Schema.decodeUnknownSync(Timeline.EntryFromJsonString)(line)
        assert.deepStrictEqual(Schema.decodeUnknownSync(CoroutinePool.PoolEvent)(JSON.parse(line).event), entry.event)
        return entry
      })

  it.live("--json prints one JSON line per event instead of the ten lines: the same events, with their times", () =>
    Effect.gen(function* () {
      const run = yield* cli("--json")
      assert.strictEqual(run.code, 0)
      assert.strictEqual(run.stderr, "")
      const entries = decodeJsonLines(run.stdout)
      assert.deepStrictEqual(
        entries.map((entry) => SharedPool.formatEvent(entry.event)),
        expected.trimEnd().split("\n")
      )
      assert.deepStrictEqual(
        entries.map((entry) => entry.at),
        [0, 0, 0, 0, 100, 100, 100, 100, 200, 200]
      )
      assert.strictEqual(
        `${Effect.runSync(Timeline.render({ entries }))}\n`,
        picture,
        "another tool can redraw the picture"
      )
    })
  )

  it.live("--json --timeline keeps stdout to JSON lines and draws the picture on stderr", () =>
    Effect.gen(function* () {
      const run = yield* cli("--json", "--timeline")
      assert.strictEqual(run.code, 0)
      assert.strictEqual(decodeJsonLines(run.stdout).length, expected.trimEnd().split("\n").length)
      assert.strictEqual(run.stderr, `\n${picture}`)
    })
  )

  const bad: ReadonlyArray<[ReadonlyArray<string>, string]> = [
    [["--max", "0"], "Invalid value for flag --max: expected a positive integer, got 0"],
    [["--workers", "-3"], "Invalid value for flag --workers: expected an integer from 1 to 1000, got -3"],
    [
      ["--hold", "abc"],
      'Invalid value for flag --hold: "abc". Expected: a duration such as "250 millis" or "1.5 seconds" (see --help)'
    ],
    [
      ["--retry", "0 millis"],
      'Invalid value for flag --retry: expected a duration from 1 millisecond to 1 minute, such as "100 millis", got 0 millis'
    ],
    [
      ["--workers", "many"],
      'Invalid value for flag --workers: "many". Expected a string representing a finite number (see --help)'
    ],
    [["--max", "1.5"], 'Invalid value for flag --max: "1.5". Expected an integer (see --help)']
  ]
  for (const [args, line] of bad) {
    it.live(`${args.join(" ")}: one line naming the flag on stderr, no stack trace, exit 1`, () =>
      Effect.gen(function* () {
        const run = yield* cli(...args)
        assert.deepStrictEqual(run, { code: 1, stdout: "", stderr: `${line}\n` })
      })
    )
  }
})
