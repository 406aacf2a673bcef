// A worker process for test/redis.test.ts: one shared pool on a real Redis,
// running one scenario and printing what happened as JSON lines on stdout.
//
//   node test/utils/redis-worker.ts '<json WorkerArgs>'
//
// Stamps (`start`, `end`, `at`) are monotonic milliseconds: CLOCK_MONOTONIC is
// one clock for every process on the host, so intervals printed by different
// workers (and the test process) compare directly, and faketime leaves it
// alone (FAKETIME_DONT_FAKE_MONOTONIC=1), unlike performance.timeOrigin.
// The worker exits when its stdin closes, so it cannot outlive the test.

import { createInterface } from "node:readline"
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Cause, Effect, Exit, Layer, Logger, References } from "effect"
import * as PoolStore from "../../src/PoolStore.ts"
import * as SharedPool from "../../src/SharedPool.ts"

export interface WorkerArgs {
  readonly name: string
  readonly url: string
  readonly prefix: string
  readonly key: string
  readonly max: number
  readonly ttl: number
  /** The store's operation timeout, millis. */
  readonly timeout: number
  /** Wait for a line "go" on stdin after "ready" before running the scenario. */
  readonly gate?: boolean | undefined
  readonly scenario:
    | {
        /** Fibers that loop over withPermit(sleep(random hold)) until `duration` has passed. */
        readonly _tag: "churn"
        readonly fibers: number
        readonly duration: number
        readonly hold: readonly [number, number]
        readonly backoff: readonly [number, number]
      }
    | {
        /** Waits for a permit (retrying while full or warming), then holds it until the lease is lost or killed. */
        readonly _tag: "hold"
      }
    | {
        /** `tries` attempts of withPermit(void), `interval` millis apart. */
        readonly _tag: "try"
        readonly tries: number
        readonly interval: number
      }
    | {
        /** `fibers` callers at once, each holding a permit `hold` millis once (they queue). */
        readonly _tag: "queue"
        readonly fibers: number
        readonly hold: number
      }
    | {
        /**
         * Round after round: on a line "take", one withPermit whose work says
         * `granted` and holds until a line "release" (then says `releasing`).
         */
        readonly _tag: "relay"
        readonly rounds: number
      }
  /** The pool's `poll`, millis (default the library's). */
  readonly poll?: number | undefined
  /** The pool's `maxWaiting` (default 0). */
  readonly maxWaiting?: number | undefined
}

/** A line the worker prints. */
export type WorkerEvent =
  | { readonly event: "ready"; readonly pid: number; readonly wall: number; readonly at: number }
  | { readonly event: "granted"; readonly worker: string; readonly start: number }
  | { readonly event: "releasing"; readonly worker: string; readonly at: number }
  | { readonly event: "held"; readonly worker: string; readonly start: number; readonly end: number }
  | { readonly event: "interrupted"; readonly worker: string; readonly at: number }
  | { readonly event: "leaselost"; readonly worker: string; readonly reason: string; readonly at: number }
  | { readonly event: "try"; readonly outcome: string; readonly retryAfter?: number; readonly at: number }
  | { readonly event: "warming"; readonly worker: string; readonly at: number }
  | { readonly event: "error"; readonly tag: string; readonly detail: string; readonly at: number }
  | {
      readonly event: "done"
      readonly grants: number
      readonly rejected: Readonly<Record<string, number>>
      readonly errors: Readonly<Record<string, number>>
      readonly lost: number
    }
  | { readonly event: "fatal"; readonly detail: string }

const mono = () => Number(process.hrtime.bigint()) / 1e6
const emit = (event: WorkerEvent) => {
  process.stdout.write(`${JSON.stringify(event)}\n`)
}
const between = ([low, high]: readonly [number, number]) => low + Math.floor(Math.random() * (high - low + 1))

type Pool = SharedPool.SharedPool

const churn = (pool: Pool, args: WorkerArgs, scenario: Extract<WorkerArgs["scenario"], { _tag: "churn" }>) =>
  Effect.gen(function* () {
    const until = mono() + scenario.duration
    let grants = 0
    let lost = 0
    const rejected: Record<string, number> = {}
    const errors: Record<string, number> = {}
    const fiber = (i: number) =>
      Effect.gen(function* () {
        const worker = `${args.name}-${i}`
        while (mono() < until) {
          const hold = between(scenario.hold)
          const result = yield* pool
            .withPermit(
              Effect.suspend(() => {
                const start = mono()
                grants++
                return Effect.sleep(hold).pipe(
                  Effect.ensuring(Effect.sync(() => emit({ event: "held", worker, start, end: mono() })))
                )
              }),
              { worker: worker }
            )
            .pipe(Effect.result)
          if (result._tag === "Success") continue
          const error = result.failure
          if (error._tag === "PoolRejected") {
            rejected[error.reason] = (rejected[error.reason] ?? 0) + 1
            if (error.reason === "warming") emit({ event: "warming", worker, at: mono() })
          } else {
            if (error._tag === "LeaseLost") {
              lost++
              emit({ event: "leaselost", worker, reason: error.reason, at: mono() })
            } else {
              errors[error._tag] = (errors[error._tag] ?? 0) + 1
              emit({ event: "error", tag: error._tag, detail: error.message, at: mono() })
            }
          }
          yield* Effect.sleep(between(scenario.backoff))
        }
      })
    yield* Effect.forEach(
      Array.from({ length: scenario.fibers }, (_, i) => i),
      fiber,
      { concurrency: "unbounded", discard: true }
    )
    emit({ event: "done", grants, rejected, errors, lost })
  })

const hold = (pool: Pool, args: WorkerArgs) =>
  Effect.gen(function* () {
    const worker = `${args.name}-0`
    for (;;) {
      const exit = yield* pool
        .withPermit(
          Effect.suspend(() => {
            emit({ event: "granted", worker, start: mono() })
            return Effect.never
          }).pipe(Effect.onInterrupt(() => Effect.sync(() => emit({ event: "interrupted", worker, at: mono() })))),
          { worker: worker }
        )
        .pipe(Effect.exit)
      if (Exit.isSuccess(exit)) {
        emit({ event: "done", grants: 1, rejected: {}, errors: {}, lost: 0 })
        return
      }
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "None") return yield* Effect.failCause(exit.cause)
      const failure = error.value
      if (failure._tag === "PoolRejected") {
        yield* Effect.sleep(Math.max(5, Math.min(failure.retryAfter ?? 20, 50)))
        continue
      }
      if (failure._tag === "LeaseLost") {
        emit({ event: "leaselost", worker, reason: failure.reason, at: mono() })
        emit({ event: "done", grants: 1, rejected: {}, errors: {}, lost: 1 })
        return
      }
      emit({ event: "error", tag: failure._tag, detail: failure.message, at: mono() })
      yield* Effect.sleep(20)
    }
  })

const tries = (pool: Pool, args: WorkerArgs, count: number, interval: number) =>
  Effect.gen(function* () {
    const worker = `${args.name}-0`
    for (let i = 0; i < count; i++) {
      if (i > 0) yield* Effect.sleep(interval)
      const result = yield* Effect.result(pool.withPermit(Effect.void, { worker: worker }))
      if (result._tag === "Success") emit({ event: "try", outcome: "granted", at: mono() })
      else if (result.failure._tag === "PoolRejected") {
        const { reason, retryAfter } = result.failure
        emit({ event: "try", outcome: reason, ...(retryAfter === undefined ? {} : { retryAfter }), at: mono() })
      } else emit({ event: "try", outcome: result.failure._tag, at: mono() })
    }
    emit({ event: "done", grants: 0, rejected: {}, errors: {}, lost: 0 })
  })

const queue = (pool: Pool, args: WorkerArgs, fibers: number, hold: number) =>
  Effect.gen(function* () {
    yield* Effect.forEach(
      Array.from({ length: fibers }, (_, i) => `${args.name}-${i}`),
      (worker) =>
        pool.withPermit(
          Effect.suspend(() => {
            const start = mono()
            emit({ event: "granted", worker, start })
            return Effect.sleep(hold).pipe(
              Effect.ensuring(Effect.sync(() => emit({ event: "held", worker, start, end: mono() })))
            )
          }),
          { worker }
        ),
      { concurrency: "unbounded", discard: true }
    )
    emit({ event: "done", grants: fibers, rejected: {}, errors: {}, lost: 0 })
  })

const relay = (pool: Pool, args: WorkerArgs, rounds: number) =>
  Effect.gen(function* () {
    const worker = `${args.name}-0`
    for (let round = 0; round < rounds; round++) {
      yield* Effect.promise(() => line("take"))
      yield* pool.withPermit(
        Effect.gen(function* () {
          emit({ event: "granted", worker, start: mono() })
          yield* Effect.promise(() => line("release"))
          emit({ event: "releasing", worker, at: mono() })
        }),
        { worker }
      )
    }
    emit({ event: "done", grants: rounds, rejected: {}, errors: {}, lost: 0 })
  })

const main = (args: WorkerArgs) =>
  Effect.gen(function* () {
    const pool = yield* SharedPool.make({
      key: args.key,
      max: args.max,
      ttl: args.ttl,
      maxWaiting: args.maxWaiting ?? 0,
      ...(args.poll === undefined ? {} : { poll: args.poll })
    })
    emit({ event: "ready", pid: process.pid, wall: Date.now(), at: mono() })
    if (args.gate === true) yield* Effect.promise(() => gate)
    const scenario = args.scenario
    switch (scenario._tag) {
      case "churn":
        return yield* churn(pool, args, scenario)
      case "hold":
        return yield* hold(pool, args)
      case "try":
        return yield* tries(pool, args, scenario.tries, scenario.interval)
      case "queue":
        return yield* queue(pool, args, scenario.fibers, scenario.hold)
      case "relay":
        return yield* relay(pool, args, scenario.rounds)
    }
  }).pipe(
    Effect.scoped,
    Effect.provide(
      PoolStore.layerStoreRedis({ prefix: args.prefix, timeout: args.timeout }).pipe(
        Layer.provide(NodeRedis.layer({ url: args.url, disableOfflineQueue: true }))
      )
    ),
    // NodeRedis logs reconnects as warnings: keep them off stdout.
    Effect.provide(
      Layer.merge(
        Logger.layer([Logger.withConsoleError(Logger.formatSimple)]),
        Layer.succeed(References.MinimumLogLevel, "Error")
      )
    )
  )

// The lines read on stdin, in order, each taken once by `line`.
const lines: Array<string> = []
const readers: Array<() => void> = []
const line = (expected: string): Promise<void> =>
  new Promise((taken) => {
    const look = () => {
      const index = lines.indexOf(expected)
      if (index < 0) return readers.push(look)
      lines.splice(index, 1)
      taken()
    }
    look()
  })

// Opens on a line "go" on stdin.
let gate: Promise<void> = Promise.resolve()

// Only when run as a script (the test file imports the types).
if (import.meta.main) {
  process.stdin.on("end", () => process.exit(2))
  createInterface({ input: process.stdin }).on("line", (text) => {
    lines.push(text.trim())
    for (const reader of readers.splice(0)) reader()
  })
  gate = line("go")
  const args = JSON.parse(process.argv[2] ?? "{}") as WorkerArgs
  Effect.runPromiseExit(main(args)).then((exit) => {
    if (Exit.isFailure(exit)) emit({ event: "fatal", detail: Cause.pretty(exit.cause) })
    process.stdout.write("", () => process.exit(Exit.isSuccess(exit) ? 0 : 1))
  })
}
