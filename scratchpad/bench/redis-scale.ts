// Case R, at scale: what queued callers cost Redis, how fast a permit freed in
// one process reaches a caller queued in another, and how fast several
// processes drain one key. Run by redis.ts after the throughput rows, on the
// same redis-server; worker processes are test/utils/redis-worker.ts.
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Context, Effect, Fiber, Layer, Logger, References } from "effect"
import { PoolStore, SharedPool } from "../../src/index.ts"
import type * as RedisServer from "../../test/utils/RedisServer.ts"
import { is, maxOverlap, mono, relayRound, spawnWorker, type Worker } from "../../test/utils/RedisWorkers.ts"

export interface ScaleSizes {
  readonly queued: number
  readonly loadMs: number
  readonly handOffs: number
  readonly drain: { readonly processes: number; readonly callers: number; readonly max: number; readonly hold: number }
}

export const fullScale: ScaleSizes = {
  queued: 1000,
  loadMs: 3000,
  handOffs: 100,
  drain: { processes: 4, callers: 250, max: 8, hold: 20 }
}
export const quickScale: ScaleSizes = {
  queued: 1000,
  loadMs: 1000,
  handOffs: 20,
  drain: { processes: 4, callers: 50, max: 8, hold: 20 }
}

export interface ScaleResults {
  /** Redis commands per second (scripts' own commands included) while `queued` callers wait in one process. */
  readonly queuedCommandsPerSec: number
  readonly queued: number
  /** Milliseconds from a release in one process to the work of a caller queued in another. */
  readonly handOffMs: {
    readonly p50: number
    readonly p99: number
    readonly max: number
    readonly runs: ReadonlyArray<number>
  }
  /** The drain: wall time from the first grant to the last release, and the ideal (every permit always busy). */
  readonly drain: ScaleSizes["drain"] & { readonly ms: number; readonly idealMs: number; readonly peak: number }
}

const ttl = 1000

const quiet = Layer.merge(
  Logger.layer([Logger.withConsoleError(Logger.formatSimple)]),
  Layer.succeed(References.MinimumLogLevel, "Error")
)

// Worker processes use the prefix "t" (see test/utils/RedisWorkers.ts).
const connect = (server: RedisServer.RedisServer, prefix = "t") =>
  Effect.map(
    Layer.build(
      PoolStore.layerStoreRedis({ prefix }).pipe(
        Layer.provideMerge(NodeRedis.layer({ url: server.url })),
        Layer.provide(quiet)
      )
    ),
    (context) => Context.get(context, PoolStore.PoolStore)
  )

const warm = (server: RedisServer.RedisServer, key: string, max: number) =>
  Effect.gen(function* () {
    const store = yield* connect(server)
    const first = yield* store.acquire({ key, max, ttl })
    if (first._tag === "Warming") yield* Effect.sleep(first.retryAfter + 5)
  })

const commands = (server: RedisServer.RedisServer) =>
  Effect.map(server.cli("INFO", "commandstats"), (info) =>
    [...info.matchAll(/calls=(\d+)/g)].reduce((sum, [, calls]) => sum + Number(calls), 0)
  )

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

// 1,000 callers queued in this process while a pool on another connection
// holds the only permit: the Redis commands run per second.
const queuedLoad = (server: RedisServer.RedisServer, sizes: ScaleSizes) =>
  Effect.gen(function* () {
    yield* warm(server, "crowd", 1)
    const elsewhere = yield* SharedPool.make({ key: "crowd", max: 1, ttl }).pipe(
      Effect.provideService(PoolStore.PoolStore, yield* connect(server))
    )
    const pool = yield* SharedPool.make({ key: "crowd", max: 1, ttl, maxWaiting: sizes.queued }).pipe(
      Effect.provideService(PoolStore.PoolStore, yield* connect(server))
    )
    const holder = yield* Effect.forkChild(elsewhere.withPermit(Effect.never), { startImmediately: true })
    while ((yield* elsewhere.active) < 1) yield* Effect.sleep(5)
    const crowd = yield* Effect.forkChild(
      Effect.forEach(Array.from({ length: sizes.queued }), () => pool.withPermit(Effect.void), {
        concurrency: "unbounded",
        discard: true
      }),
      { startImmediately: true }
    )
    yield* Effect.sleep(300)
    const waiting = (yield* pool.stats).waiting
    if (waiting !== sizes.queued) throw new Error(`queued load: ${waiting} of ${sizes.queued} queued`)
    const before = yield* commands(server)
    const start = mono()
    yield* Effect.sleep(sizes.loadMs)
    const perSec = (((yield* commands(server)) - before) * 1000) / (mono() - start)
    yield* Fiber.interrupt(holder)
    yield* Fiber.join(crowd)
    return perSec
  }).pipe(Effect.scoped)

// Round after round, a holder process releases the only permit to a caller
// queued in a waiter process (poll 30 s: only a pushed wake-up is quick).
const handOffs = (server: RedisServer.RedisServer, rounds: number) =>
  Effect.gen(function* () {
    yield* warm(server, "relay", 1)
    const relay = (name: string) =>
      spawnWorker(server, {
        name,
        key: "relay",
        max: 1,
        ttl,
        poll: 30_000,
        maxWaiting: 1,
        timeout: 2000,
        scenario: { _tag: "relay", rounds }
      })
    const holder = yield* relay("holder")
    const waiter = yield* relay("waiter")
    yield* holder.ready
    yield* waiter.ready
    const latencies: Array<number> = []
    for (let round = 1; round <= rounds; round++) latencies.push(yield* relayRound(holder, waiter, round))
    return latencies
  }).pipe(Effect.scoped)

// Processes with callers queued at once on one key drain it.
const drain = (server: RedisServer.RedisServer, sizes: ScaleSizes["drain"]) =>
  Effect.gen(function* () {
    yield* warm(server, "drain", sizes.max)
    const workers: Array<Worker> = []
    for (let i = 0; i < sizes.processes; i++) {
      workers.push(
        yield* spawnWorker(server, {
          name: `p${i}`,
          key: "drain",
          max: sizes.max,
          ttl,
          maxWaiting: sizes.callers,
          timeout: 2000,
          gate: true,
          scenario: { _tag: "queue", fibers: sizes.callers, hold: sizes.hold }
        })
      )
    }
    for (const worker of workers) yield* worker.ready
    for (const worker of workers) yield* worker.go
    for (const worker of workers) yield* worker.waitFor(is("done"), 120_000)
    const held = workers.flatMap((worker) => worker.events.filter(is("held")))
    const peak = maxOverlap(held).most
    if (held.length !== sizes.processes * sizes.callers || peak > sizes.max) {
      throw new Error(`drain not trusted: ${held.length} holds, peak ${peak}`)
    }
    const ms = Math.max(...held.map((h) => h.end)) - Math.min(...held.map((h) => h.start))
    return { ...sizes, ms, idealMs: (sizes.processes * sizes.callers * sizes.hold) / sizes.max, peak }
  }).pipe(Effect.scoped)

export const measureScale = (
  server: RedisServer.RedisServer,
  sizes: ScaleSizes,
  progress: (line: string) => void
): Promise<ScaleResults> =>
  Effect.runPromise(
    Effect.gen(function* () {
      progress(`R scale: ${sizes.queued} queued callers, Redis commands over ${sizes.loadMs} ms`)
      const queuedCommandsPerSec = yield* queuedLoad(server, sizes)
      progress(`R scale: ${sizes.handOffs} hand-offs between two processes`)
      const runs = yield* handOffs(server, sizes.handOffs)
      const { callers, processes } = sizes.drain
      progress(`R scale: ${processes} processes x ${callers} queued callers drain one key`)
      const drained = yield* drain(server, sizes.drain)
      return {
        queuedCommandsPerSec,
        queued: sizes.queued,
        handOffMs: { p50: percentile(runs, 50), p99: percentile(runs, 99), max: Math.max(...runs), runs },
        drain: drained
      }
    })
  )
