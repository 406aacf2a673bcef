#!/usr/bin/env node
/**
 * The demo's command line: `npm start -- --workers 6 --max 3`.
 *
 * `--json` prints each event as one line of JSON instead of the tutorial's
 * line; `--timeline` draws the run after its lines (on stderr with `--json`,
 * so stdout stays one JSON value per line).
 *
 * Every failure a user can cause (a malformed or out-of-range flag) is printed
 * as one line on stderr and ends the process with exit code 1, never with a
 * stack trace.
 *
 * It runs on `@effect/platform-node`, an optional peer dependency of the
 * package (the library itself does not need it): when that is not installed
 * it says so in one line on stderr and exits with code 1.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import { Console, Duration, Effect, Option, Runtime, Schema } from "effect"
import { CliOutput, Command, Flag } from "effect/cli"
import * as Demo from "./Demo.ts"
import * as Timeline from "./Timeline.ts"

const duration = (name: string, description: string, fallback: Duration.Duration) =>
  Flag.String(name).pipe(
    Flag.filterMap(
      Schema.decodeUnknownOption(Schema.DurationFromString),
      () => `a duration such as "250 millis" or "1.5 seconds"`
    ),
    Flag.withDescription(`${description}, e.g. "250 millis" (default "${Duration.toMillis(fallback)} millis")`),
    Flag.withDefault(fallback)
  )

const flags = {
  workers: Flag.Int("workers").pipe(
    Flag.withDescription(`Number of worker fibers, 1 to 1000 (default ${Demo.defaults.workers})`),
    Flag.withDefault(Demo.defaults.workers)
  ),
  max: Flag.Int("max").pipe(
    Flag.withDescription(`Number of permits in the pool (default ${Demo.defaults.max})`),
    Flag.withDefault(Demo.defaults.max)
  ),
  hold: duration("hold", "How long an admitted worker holds its permit", Demo.defaults.hold),
  retry: duration("retry", "How long a rejected worker waits before trying again", Demo.defaults.retry),
  maxWaiting: Flag.Int("max-waiting").pipe(
    Flag.withDescription("How many workers may queue for permits instead of being rejected (default 0)"),
    Flag.withDefault(0)
  ),
  maxWait: Flag.String("max-wait").pipe(
    Flag.filterMap(
      Schema.decodeUnknownOption(Schema.DurationFromString),
      () => `a duration such as "150 millis" or "1.5 seconds"`
    ),
    Flag.withDescription('How long a queued worker waits before it gives up, e.g. "150 millis" (default: no limit)'),
    Flag.optional
  ),
  permits: Flag.Int("permits").pipe(
    Flag.withDescription("How many permits each worker asks for, 1 to --max (default 1)"),
    Flag.withDefault(1)
  ),
  timeline: Flag.Boolean("timeline").pipe(
    Flag.withDescription(
      "After the run, draw it: a row per worker, time along the columns (on stderr with --json, so stdout stays JSON lines)"
    ),
    Flag.withDefault(false)
  ),
  json: Flag.Boolean("json").pipe(
    Flag.withDescription(
      'Print each event as a line of JSON instead: {"at":<millis since the start, on the schedule>,"event":<PoolEvent>}'
    ),
    Flag.withDefault(false)
  )
}

// A failure that has been printed already: `runMain` exits with code 1 without
// logging it again.
class Reported extends Error {
  override readonly [Runtime.errorReported] = false
}

// The flag each option of `Demo.run` comes from.
const flagOf = (option: string) => option.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)

const demo = Command.make("coroutine-pool-demo", flags, ({ json, maxWait, timeline, ...options }) =>
  Demo.run({ ...options, maxWait: Option.getOrUndefined(maxWait), print: json ? "json" : "lines" }).pipe(
    Effect.flatMap((record) => {
      if (!timeline) return Effect.void
      const print = json ? Console.error : Console.log
      return Effect.flatMap(Timeline.render(record), (picture) => print(`\n${picture}`))
    }),
    Effect.catchTags({
      InvalidOption: (error) =>
        Effect.andThen(
          Console.error(`Invalid value for flag --${flagOf(error.option)}: ${error.detail}`),
          Effect.fail(new Reported(error.message))
        ),
      // The demo's own record always draws; kept typed all the same.
      InvalidRenderOption: (error) =>
        Effect.andThen(Console.error(error.message), Effect.fail(new Reported(error.message)))
    })
  )
).pipe(
  Command.withDescription(
    "Runs the Coroutine pattern's demo: workers ask a pool for permits and are admitted, queued (--max-waiting) or rejected, and retry."
  )
)

// A parse error gets one line, naming the flag, instead of the whole help text.
const presenter: CliOutput.Presenter = {
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Console.error(`${event.errors[0]?.message.replace(/\s*\n\s*/g, " ")} (see --help)`)
      : CliOutput.defaultPresenter.present(event)
}

// This file is src/bin.ts in the repository and dist/bin.js in the package:
// either way the package's package.json is one directory up.
const { version } = createRequire(import.meta.url)("../package.json") as { readonly version: string }

const platformInstalled = (): boolean => {
  try {
    import.meta.resolve("@effect/platform-node/NodeRuntime")
    return true
  } catch {
    return false
  }
}

if (platformInstalled()) {
  const [NodeRuntime, NodeServices] = await Promise.all([
    import("@effect/platform-node/NodeRuntime"),
    import("@effect/platform-node/NodeServices")
  ])
  demo.pipe(
    Command.run({ version }),
    Effect.provide(CliOutput.layerPresenter(presenter)),
    Effect.provide(NodeServices.layer),
    NodeRuntime.runMain
  )
} else {
  process.stderr.write(
    "coroutine-pool: the demo needs @effect/platform-node, which is not installed (an optional peer dependency); " +
      "run it with: npx -p coroutine-pool -p @effect/platform-node coroutine-pool --workers 6\n"
  )
  process.exitCode = 1
}
