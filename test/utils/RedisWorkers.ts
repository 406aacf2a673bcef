// Worker processes for the Redis tests: each runs test/utils/redis-worker.ts
// (one shared pool on a real Redis, one scenario) and reports JSON lines.

import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import type * as RedisServer from "./RedisServer.ts"
import type { WorkerArgs, WorkerEvent } from "./redis-worker.ts"

// Monotonic milliseconds. CLOCK_MONOTONIC is one clock for every process on
// the host (and faketime leaves it alone), so stamps from worker processes
// and from the test process compare directly.
export const mono = () => Number(process.hrtime.bigint()) / 1e6

const workerScript = fileURLToPath(new URL("./redis-worker.ts", import.meta.url))

// How long a worker process may take to start and connect (Node boots, loads
// the library and connects to Redis): generous, since a busy machine may
// take seconds. It is never part of a bound a test measures: those start
// once the worker said it is ready.
export const startUp = 60_000

export interface Worker {
  readonly name: string
  readonly events: ReadonlyArray<WorkerEvent>
  /** Waits (up to `startUp` millis) until the worker has made its pool and said so. */
  readonly ready: Effect.Effect<Extract<WorkerEvent, { event: "ready" }>>
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Opens the worker's gate (see `WorkerArgs.gate`). */
  readonly go: Effect.Effect<void>
  /** Writes a line to the worker's stdin (see the `relay` scenario). */
  readonly say: (line: string) => Effect.Effect<void>
  /** Waits (up to `timeout` millis) for an event matching `predicate`; dies with the worker's output otherwise. */
  readonly waitFor: <E extends WorkerEvent>(
    predicate: (event: WorkerEvent) => event is E,
    timeout?: number
  ) => Effect.Effect<E>
  /** Waits for the process to exit; answers its exit code. */
  readonly exit: (timeout?: number) => Effect.Effect<number | null>
  readonly diagnostics: () => string
}

export const is =
  <T extends WorkerEvent["event"]>(tag: T) =>
  (event: WorkerEvent): event is Extract<WorkerEvent, { event: T }> =>
    event.event === tag

// Still our worker? (pids are reused: only signal a pid that runs redis-worker.ts)
const isWorker = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("redis-worker.ts")
  } catch {
    return false
  }
}

const kill = (pid: number | undefined, signal: NodeJS.Signals) => {
  if (pid !== undefined && isWorker(pid)) {
    try {
      process.kill(pid, signal)
    } catch {
      // gone meanwhile
    }
  }
}

// Spawns `node test/utils/redis-worker.ts <args>` (optionally under faketime) for
// this scope; the finalizer SIGKILLs it by pid and waits for it to exit.
export const spawnWorker = (
  server: RedisServer.RedisServer,
  args: Omit<WorkerArgs, "url" | "prefix" | "timeout"> & { readonly timeout?: number },
  options: { readonly faketime?: string } = {}
) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const full: WorkerArgs = { url: server.url, prefix: "t", timeout: 500, ...args }
      const node = [workerScript, JSON.stringify(full)]
      const [file, argv] =
        options.faketime === undefined
          ? [process.execPath, node]
          : ["faketime", ["-f", options.faketime, process.execPath, ...node]]
      const child: ChildProcess = spawn(file, argv, {
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...process.env, FAKETIME_DONT_FAKE_MONOTONIC: "1" }
      })
      const events: Array<WorkerEvent> = []
      let stderr = ""
      let code: number | null | undefined
      const exited = new Promise<void>((resolve) => {
        child.once("close", (exitCode) => {
          code = exitCode
          resolve()
        })
        child.once("error", (error) => {
          stderr += `spawn failed: ${error.message}`
          if (child.pid === undefined) {
            code = -1
            resolve()
          }
        })
      })
      if (child.stdout !== null) {
        createInterface({ input: child.stdout }).on("line", (line) => {
          if (line.startsWith("{")) events.push(JSON.parse(line) as WorkerEvent)
        })
      }
      child.stderr?.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).slice(-4000)
      })
      const diagnostics = () =>
        `worker ${args.name} (exit ${code}):\n${events
          .slice(-20)
          .map((event) => JSON.stringify(event))
          .join("\n")}\nstderr:\n${stderr}`
      const waitFor = <E extends WorkerEvent>(predicate: (event: WorkerEvent) => event is E, timeout = 10_000) =>
        Effect.gen(function* () {
          const deadline = mono() + timeout
          for (;;) {
            const found = events.find(predicate)
            if (found !== undefined) return found
            if (code !== undefined) return yield* Effect.die(new Error(`the worker exited; ${diagnostics()}`))
            if (mono() > deadline) return yield* Effect.die(new Error(`waited ${timeout} ms in vain; ${diagnostics()}`))
            yield* Effect.sleep(5)
          }
        })
      const nodePid = () => (options.faketime === undefined ? child.pid : events.find(is("ready"))?.pid)
      const ready = waitFor(is("ready"), startUp)
      const worker: Worker = {
        name: args.name,
        events,
        ready,
        signal: (signal) =>
          Effect.map(ready, (event) => {
            process.kill(event.pid, signal)
          }),
        go: Effect.sync(() => {
          child.stdin?.write("go\n")
        }),
        say: (line) =>
          Effect.sync(() => {
            child.stdin?.write(`${line}\n`)
          }),
        waitFor,
        exit: (timeout = 30_000) =>
          Effect.promise(() => exited).pipe(
            Effect.timeoutOrElse({
              duration: timeout,
              orElse: () => Effect.die(new Error(`did not exit in ${timeout} ms; ${diagnostics()}`))
            }),
            Effect.map(() => code ?? null)
          ),
        diagnostics
      }
      return { worker, child, exited, nodePid }
    }),
    ({ child, exited, nodePid }) =>
      Effect.promise(async () => {
        if (child.exitCode === null && child.signalCode === null) {
          kill(nodePid(), "SIGKILL")
          if (child.pid !== undefined) process.kill(child.pid, "SIGKILL")
        }
        child.stdin?.destroy()
        await exited
      })
  ).pipe(Effect.map(({ worker }) => worker))

// The most intervals open at one instant (an end and a start at the same
// instant do not overlap), and where.
export const maxOverlap = (intervals: ReadonlyArray<{ readonly start: number; readonly end: number }>) => {
  const points = intervals.flatMap(
    (i): Array<[number, number]> => [
      [i.start, 1],
      [i.end, -1]
    ]
  )
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let open = 0
  let most = 0
  let at = 0
  for (const [time, delta] of points) {
    open += delta
    if (open > most) {
      most = open
      at = time
    }
  }
  return { most, at }
}

const count = (worker: Worker, event: "granted" | "releasing") => worker.events.filter(is(event)).length

/**
 * Round `round` of two `relay` workers: the holder takes the only permit,
 * the waiter queues for it (given `settle` millis to ask and hear it is
 * full), the holder releases. Answers the millis from the holder's release
 * to the waiter's work, then lets the waiter release too.
 */
export const relayRound = (holder: Worker, waiter: Worker, round: number, settle = 30) =>
  Effect.gen(function* () {
    yield* holder.say("take")
    yield* holder.waitFor((event): event is never => is("granted")(event) && count(holder, "granted") >= round)
    yield* waiter.say("take")
    yield* Effect.sleep(settle)
    yield* holder.say("release")
    yield* waiter.waitFor((event): event is never => is("granted")(event) && count(waiter, "granted") >= round, 60_000)
    const granted = waiter.events.filter(is("granted"))[round - 1]?.start ?? Number.NaN
    const released = holder.events.filter(is("releasing"))[round - 1]?.at ?? Number.NaN
    yield* waiter.say("release")
    yield* waiter.waitFor((event): event is never => is("releasing")(event) && count(waiter, "releasing") >= round)
    return granted - released
  })
