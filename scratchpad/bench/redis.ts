// Case R: one limit shared through Redis. Acquire-then-release round trips on
// a local redis-server, for CoroutinePool's Redis store and for the
// `redis-semaphore` package, side by side in one process and one run.
//
//   npm run bench -- --redis             # about 40 seconds, results-redis.json
//   npm run bench -- --redis --quick     # about 7 seconds, results-redis-quick.json
//   node --expose-gc scratchpad/bench/redis.ts [--quick] [--out file]
//
// It starts its own redis-server (on 127.0.0.1, a free port, no persistence)
// and stops it by pid at the end, also when a run fails. See README.md here.
import { writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { Redis as IORedis } from "ioredis"
import { Semaphore as RedisSemaphore } from "redis-semaphore"
import { PoolStore, SharedPool } from "../../src/index.ts"
import * as RedisServer from "../../test/utils/RedisServer.ts"
import { collectGarbage, machine, median } from "./measure.ts"
import { fullScale, measureScale, quickScale, type ScaleResults } from "./redis-scale.ts"
import { type Target, target, targetsTable, toJson } from "./report.ts"

/** What every subject is given: the lease TTL (redis-semaphore's `lockTimeout`), in milliseconds. */
export const ttl = 1000
/** Our store's key prefix; redis-semaphore writes `semaphore:<key>`. */
const prefix = "cp-bench"

export interface Sizes {
  readonly concurrencies: ReadonlyArray<number>
  /** Wall time of one run: every caller loops until it has passed. */
  readonly runMs: number
  readonly warmupMs: number
  readonly repetitions: number
}

const fullSizes: Sizes = { concurrencies: [1, 16, 64], runMs: 400, warmupMs: 300, repetitions: 5 }
const quickSizes: Sizes = { concurrencies: [1, 16], runMs: 100, warmupMs: 100, repetitions: 2 }

type NodeRedisClient = NodeRedis.NodeRedis["Service"]["client"]
type SemaphoreClient = ConstructorParameters<typeof RedisSemaphore>[0]

/** What one run did: how many round trips, how many of them were admitted. */
interface Tally {
  readonly ops: number
  readonly granted: number
}

/**
 * A contender: `concurrency` callers on one key with `max = concurrency`, each
 * taking a permit and giving it back in a loop until `until` (a
 * `performance.now()` time) has passed.
 */
interface Subject {
  readonly name: string
  readonly library: "coroutine-pool" | "redis-semaphore"
  readonly client: "node-redis" | "ioredis"
  readonly run: (concurrency: number, until: number) => Promise<Tally>
  /** After a run: throws unless every permit was given back. */
  readonly check: (concurrency: number) => Promise<void>
}

export interface Row {
  readonly concurrency: number
  readonly subject: string
  readonly library: Subject["library"]
  readonly client: Subject["client"]
  /** Median over the repetitions of round trips / wall time. */
  readonly opsPerSec: number
  readonly runsOpsPerSec: ReadonlyArray<number>
  /** This process's CPU time (user + system) per round trip, median: the client side, both libraries alike. */
  readonly clientCpuUsPerOp: number
  /** redis-server's CPU time per round trip, median: what the scripts cost the server. */
  readonly serverCpuUsPerOp: number
  /** Round trips in the median run. */
  readonly ops: number
  /** ops/s ÷ redis-semaphore over ioredis at the same concurrency. */
  readonly ratio: number
  /** ops/s ÷ redis-semaphore over node-redis at the same concurrency (the same client as ours). */
  readonly ratioSameClient: number
}

// ---------------------------------------------------------------------------
// subjects
// ---------------------------------------------------------------------------

// Runs `one` in `concurrency` fibers, each in a loop until `until`.
const effectCallers = <E>(
  concurrency: number,
  until: number,
  one: (caller: number) => Effect.Effect<boolean, E>
): Effect.Effect<Tally, E> =>
  Effect.suspend(() => {
    let ops = 0
    let granted = 0
    const caller = (index: number) =>
      Effect.whileLoop({
        while: () => performance.now() < until,
        body: () => one(index),
        step: (admitted) => {
          ops++
          if (admitted) granted++
        }
      })
    return Effect.map(Effect.forEach(range(concurrency), caller, { concurrency: "unbounded", discard: true }), () => ({
      ops,
      granted
    }))
  })

// Runs `one` in `concurrency` async loops, each until `until`.
const promiseCallers = async (concurrency: number, until: number, one: () => Promise<boolean>): Promise<Tally> => {
  let ops = 0
  let granted = 0
  await Promise.all(
    range(concurrency).map(async () => {
      while (performance.now() < until) {
        const admitted = await one()
        ops++
        if (admitted) granted++
      }
    })
  )
  return { ops, granted }
}

const range = (n: number): Array<number> => Array.from({ length: n }, (_, i) => i)

const zcard = async (client: NodeRedisClient, key: string): Promise<number> =>
  Number(await client.sendCommand(["ZCARD", key]))

const expectEmpty = async (client: NodeRedisClient, subject: string, key: string) => {
  const left = await zcard(client, key)
  if (left !== 0) throw new Error(`${subject}: run not trusted: ${left} leases left in ${key}`)
}

/**
 * redis-semaphore speaks to an ioredis-shaped client; a `Semaphore` needs only
 * `evalsha`, `eval` and `zrem`, which this passes to node-redis as raw
 * commands (the same way our store sends its scripts).
 */
const semaphoreClientOverNodeRedis = (client: NodeRedisClient): SemaphoreClient => {
  const command =
    (name: string) =>
    (...args: ReadonlyArray<string | number>) =>
      client.sendCommand([name, ...args.map(String)])
  const unused = (name: string) => () => Promise.reject(new Error(`${name} is not used by a Semaphore`))
  const adapter = {
    evalsha: command("EVALSHA"),
    eval: command("EVAL"),
    zrem: command("ZREM"),
    get: unused("get"),
    set: unused("set"),
    options: {}
  }
  return adapter as unknown as SemaphoreClient
}

const redisSemaphore = (
  name: string,
  clientName: Subject["client"],
  client: SemaphoreClient,
  inspector: NodeRedisClient
): Subject => {
  const key = (concurrency: number) => `${clientName}-c${concurrency}`
  return {
    name,
    library: "redis-semaphore",
    client: clientName,
    // A Semaphore object is one holder (one identifier), made per permit as
    // its README does; its refresh timer starts on acquire, stops on release.
    run: (concurrency, until) =>
      promiseCallers(concurrency, until, async () => {
        const semaphore = new RedisSemaphore(client, key(concurrency), concurrency, {
          lockTimeout: ttl,
          acquireAttemptsLimit: 1
        })
        if (!(await semaphore.tryAcquire())) return false
        await semaphore.release()
        return true
      }),
    check: (concurrency) => expectEmpty(inspector, name, `semaphore:${key(concurrency)}`)
  }
}

type Runtime = ManagedRuntime.ManagedRuntime<PoolStore.PoolStore | NodeRedis.NodeRedis, unknown>

const storeSubject = (runtime: Runtime, store: PoolStore.PoolStore["Service"], inspector: NodeRedisClient): Subject => {
  const name = "PoolStore.layerStoreRedis acquire + release"
  const key = (concurrency: number) => `store-c${concurrency}`
  return {
    name,
    library: "coroutine-pool",
    client: "node-redis",
    run: (concurrency, until) => {
      const options = { key: key(concurrency), max: concurrency, ttl }
      return runtime.runPromise(
        effectCallers(concurrency, until, () =>
          Effect.flatMap(store.acquire(options), (admission) =>
            admission._tag === "Granted"
              ? Effect.flatMap(store.release({ key: options.key, lease: admission.lease }), (left) =>
                  left < 0 ? Effect.die(new Error(`${name}: a release found no lease`)) : Effect.succeed(true)
                )
              : Effect.succeed(false)
          )
        )
      )
    },
    check: (concurrency) => expectEmpty(inspector, name, `{${prefix}:${key(concurrency)}}:leases`)
  }
}

const poolKey = (concurrency: number) => `pool-c${concurrency}`

const sharedPoolSubject = (
  runtime: Runtime,
  pools: ReadonlyMap<number, SharedPool.SharedPool>,
  inspector: NodeRedisClient
): Subject => {
  const name = "SharedPool withPermit(Effect.void)"
  const poolOf = (concurrency: number) => {
    const pool = pools.get(concurrency)
    if (pool === undefined) throw new Error(`${name}: no pool for concurrency ${concurrency}`)
    return pool
  }
  return {
    name,
    library: "coroutine-pool",
    client: "node-redis",
    run: (concurrency, until) => {
      const pool = poolOf(concurrency)
      return runtime.runPromise(
        effectCallers(concurrency, until, (caller) =>
          pool.withPermit(Effect.void, { worker: caller }).pipe(
            Effect.as(true),
            Effect.catchTag("PoolRejected", () => Effect.succeed(false))
          )
        )
      )
    },
    check: async (concurrency) => {
      const stats = await runtime.runPromise(poolOf(concurrency).stats)
      if (stats.active !== 0 || stats.acquired !== stats.released || stats.lost !== 0) {
        throw new Error(`${name}: run not trusted: stats ${JSON.stringify(stats)}`)
      }
      await expectEmpty(inspector, name, `{${prefix}:${poolKey(concurrency)}}:leases`)
    }
  }
}

// ---------------------------------------------------------------------------
// measuring
// ---------------------------------------------------------------------------

// redis-server's CPU time so far (user + system, all threads), in microseconds.
const serverCpuUs = async (client: NodeRedisClient): Promise<number> => {
  const info = String(await client.sendCommand(["INFO", "cpu"]))
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? Number.NaN)
  return (field("used_cpu_sys") + field("used_cpu_user")) * 1e6
}

interface Run {
  readonly ops: number
  readonly opsPerSec: number
  readonly clientCpuUsPerOp: number
  readonly serverCpuUsPerOp: number
}

const runOnce = async (subject: Subject, concurrency: number, ms: number, inspector: NodeRedisClient): Promise<Run> => {
  collectGarbage()
  const serverBefore = await serverCpuUs(inspector)
  const cpuBefore = process.cpuUsage()
  const start = performance.now()
  const tally = await subject.run(concurrency, start + ms)
  const elapsed = performance.now() - start
  const cpu = process.cpuUsage(cpuBefore)
  const serverCpu = (await serverCpuUs(inspector)) - serverBefore
  if (tally.granted !== tally.ops || tally.ops === 0) {
    throw new Error(`${subject.name}: run not trusted: ${tally.granted} of ${tally.ops} admitted at c=${concurrency}`)
  }
  await subject.check(concurrency)
  return {
    ops: tally.ops,
    opsPerSec: (tally.ops * 1000) / elapsed,
    clientCpuUsPerOp: (cpu.user + cpu.system) / tally.ops,
    serverCpuUsPerOp: serverCpu / tally.ops
  }
}

/**
 * Each concurrency in turn: every subject runs once to warm up, then the timed
 * runs go round-robin, the first subject moving by one each repetition, with
 * garbage collected before every run. The figures are medians.
 */
const measure = async (
  subjects: ReadonlyArray<Subject>,
  sizes: Sizes,
  inspector: NodeRedisClient,
  progress: (line: string) => void
): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  for (const concurrency of sizes.concurrencies) {
    progress(
      `R concurrency ${concurrency}: ${subjects.length} subjects x ${sizes.repetitions} runs of ${sizes.runMs} ms`
    )
    for (const subject of subjects) await runOnce(subject, concurrency, sizes.warmupMs, inspector)
    const runs = subjects.map((): Array<Run> => [])
    for (let repetition = 0; repetition < sizes.repetitions; repetition++) {
      for (let offset = 0; offset < subjects.length; offset++) {
        const index = (repetition + offset) % subjects.length
        const subject = subjects[index]
        if (subject !== undefined) runs[index]?.push(await runOnce(subject, concurrency, sizes.runMs, inspector))
      }
    }
    const summaries = subjects.map((subject, index) => {
      const own = runs[index] ?? []
      const opsPerSec = median(own.map((run) => run.opsPerSec))
      const middle = [...own].sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(own.length / 2)]
      return {
        subject,
        opsPerSec,
        runsOpsPerSec: own.map((run) => run.opsPerSec),
        clientCpuUsPerOp: median(own.map((run) => run.clientCpuUsPerOp)),
        serverCpuUsPerOp: median(own.map((run) => run.serverCpuUsPerOp)),
        ops: middle?.ops ?? 0
      }
    })
    const reference = (client: Subject["client"]) =>
      summaries.find((s) => s.subject.library === "redis-semaphore" && s.subject.client === client)?.opsPerSec ??
      Number.NaN
    for (const summary of summaries) {
      rows.push({
        concurrency,
        subject: summary.subject.name,
        library: summary.subject.library,
        client: summary.subject.client,
        opsPerSec: summary.opsPerSec,
        runsOpsPerSec: summary.runsOpsPerSec,
        clientCpuUsPerOp: summary.clientCpuUsPerOp,
        serverCpuUsPerOp: summary.serverCpuUsPerOp,
        ops: summary.ops,
        ratio: summary.opsPerSec / reference("ioredis"),
        ratioSameClient: summary.opsPerSec / reference("node-redis")
      })
    }
  }
  return rows
}

// ---------------------------------------------------------------------------
// the table
// ---------------------------------------------------------------------------

const fixed = (value: number, digits: number): string =>
  Number.isFinite(value)
    ? value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "-"

export const redisTable = (rows: ReadonlyArray<Row>): string => {
  const header = [
    "c",
    "subject",
    "client",
    "ops/s",
    "runs min-max",
    "client CPU µs/op",
    "Redis CPU µs/op",
    "× rs ioredis",
    "× rs node-redis"
  ]
  const lines = rows.map((row) => [
    String(row.concurrency),
    row.library === "redis-semaphore" ? `redis-semaphore ${row.subject}` : row.subject,
    row.client,
    fixed(row.opsPerSec, 0),
    `${fixed(Math.min(...row.runsOpsPerSec), 0)}-${fixed(Math.max(...row.runsOpsPerSec), 0)}`,
    fixed(row.clientCpuUsPerOp, 1),
    fixed(row.serverCpuUsPerOp, 1),
    fixed(row.ratio, 2),
    fixed(row.ratioSameClient, 2)
  ])
  const all = [header, ...lines]
  const right = [true, false, false, true, true, true, true, true, true]
  const widths = header.map((_, column) => Math.max(...all.map((line) => line[column]?.length ?? 0)))
  const render = (line: ReadonlyArray<string>) =>
    line
      .map((cell, column) => (right[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd()
  return [render(header), widths.map((width) => "-".repeat(width)).join("  "), ...lines.map(render)].join("\n")
}

const ratioAt = (rows: ReadonlyArray<Row>, concurrency: number, subject: string) =>
  rows.find((row) => row.concurrency === concurrency && row.subject === subject)?.ratio ?? Number.NaN

const storeName = "PoolStore.layerStoreRedis acquire + release"
const poolName = "SharedPool withPermit(Effect.void)"

/** Issue 14's targets: against redis-semaphore over ioredis (the client it supports). */
const redisTargets = (rows: ReadonlyArray<Row>, scale: ScaleResults): ReadonlyArray<Target> => [
  target("R16", "acquire + release/s, c=16 / redis-semaphore", ratioAt(rows, 16, storeName), ">=", 1.5),
  target("R64", "acquire + release/s, c=64 / redis-semaphore", ratioAt(rows, 64, storeName), ">=", 2),
  target("R1", "acquire + release/s, c=1 / redis-semaphore", ratioAt(rows, 1, storeName), ">=", 0.9),
  target("RP16", "SharedPool.withPermit/s, c=16 / redis-semaphore", ratioAt(rows, 16, poolName), ">=", 1.2),
  target("RQ", `Redis commands/s, ${scale.queued} queued in one process`, scale.queuedCommandsPerSec, "<=", 100),
  target("RH50", "hand-off across processes, p50 ms", scale.handOffMs.p50, "<=", 5),
  target("RH99", "hand-off across processes, p99 ms", scale.handOffMs.p99, "<=", 20),
  target(
    "RD",
    `${scale.drain.processes} processes x ${scale.drain.callers} queued, max ${scale.drain.max}: drain / ideal`,
    scale.drain.ms / scale.drain.idealMs,
    "<=",
    1.3
  )
]

const scaleLines = (scale: ScaleResults): Array<string> => [
  `queued: ${scale.queued} callers queued in one process, the permit held by another: ${scale.queuedCommandsPerSec.toFixed(1)} Redis commands/s (scripts' own commands included)`,
  `hand-off: ${scale.handOffMs.runs.length} releases in one process to a caller queued in another (poll 30 s): p50 ${scale.handOffMs.p50.toFixed(2)} ms, p99 ${scale.handOffMs.p99.toFixed(2)} ms, max ${scale.handOffMs.max.toFixed(2)} ms`,
  `drain: ${scale.drain.processes} processes x ${scale.drain.callers} callers queued at once, max ${scale.drain.max}, each holding ${scale.drain.hold} ms: ${Math.round(scale.drain.ms)} ms (ideal ${scale.drain.idealMs} ms: every permit always busy), peak ${scale.drain.peak} held`
]

// ---------------------------------------------------------------------------
// the run
// ---------------------------------------------------------------------------

export interface RedisBenchOptions {
  readonly quick: boolean
  /** Where to write the JSON; default results-redis.json (quick: results-redis-quick.json) here. */
  readonly out?: string | undefined
}

/** Starts a redis-server, measures every subject, stops the server, prints the table and writes the JSON. */
export const main = async (options: RedisBenchOptions): Promise<void> => {
  const sizes = options.quick ? quickSizes : fullSizes
  const out =
    options.out ??
    new URL(options.quick ? "./results-redis-quick.json" : "./results-redis.json", import.meta.url).pathname
  const started = performance.now()
  const host = machine()
  const progress = (line: string) =>
    process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}\n`)

  const server = await RedisServer.start()
  // Stopped by pid however this ends; RedisServer also SIGKILLs it if the process exits first.
  const stopServer = () => Effect.runPromise(server.stop())
  const onSignal = () => {
    void stopServer().finally(() => process.exit(130))
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  progress(`redis-server pid ${server.pid} on ${server.url}`)

  let runtime: Runtime | undefined
  let ioredis: IORedis | undefined
  const poolScope = Scope.makeUnsafe()
  try {
    const layer = PoolStore.layerStoreRedis({ prefix }).pipe(Layer.provideMerge(NodeRedis.layer({ url: server.url })))
    const live: Runtime = ManagedRuntime.make(layer)
    runtime = live
    const store = await live.runPromise(Effect.service(PoolStore.PoolStore))
    const client = (await live.runPromise(Effect.service(NodeRedis.NodeRedis))).client
    const serverVersion = /^redis_version:(\S+)/m.exec(String(await client.sendCommand(["INFO", "server"])))?.[1]
    ioredis = new IORedis(server.url, { lazyConnect: true })
    await ioredis.connect()

    // A key the store has no record of refuses grants for one TTL (`Warming`):
    // ask once for every key of ours, then wait that TTL out.
    const ourKeys = sizes.concurrencies.flatMap((c) => [
      { key: `store-c${c}`, max: c },
      { key: poolKey(c), max: c }
    ])
    const waits = await live.runPromise(
      Effect.forEach(ourKeys, ({ key, max }) =>
        Effect.map(store.acquire({ key, max, ttl }), (admission) =>
          admission._tag === "Warming" ? admission.retryAfter : 0
        )
      )
    )
    progress(`warming our ${ourKeys.length} keys for ${Math.max(...waits)} ms (one TTL)`)
    await new Promise((resume) => setTimeout(resume, Math.max(...waits) + 10))

    const pools = new Map<number, SharedPool.SharedPool>()
    for (const concurrency of sizes.concurrencies) {
      const pool = await live.runPromise(
        Scope.provide(SharedPool.make({ key: poolKey(concurrency), max: concurrency, ttl }), poolScope)
      )
      pools.set(concurrency, pool)
    }

    const subjects: ReadonlyArray<Subject> = [
      storeSubject(live, store, client),
      sharedPoolSubject(live, pools, client),
      redisSemaphore("Semaphore tryAcquire + release", "ioredis", ioredis, client),
      redisSemaphore("Semaphore tryAcquire + release", "node-redis", semaphoreClientOverNodeRedis(client), client)
    ]
    const rows = await measure(subjects, sizes, client, progress)
    const scale = await measureScale(server, options.quick ? quickScale : fullScale, progress)
    const targets = redisTargets(rows, scale)

    const durationSec = (performance.now() - started) / 1000
    const loadAtEnd = machine().load1
    progress("done")
    console.log(
      `CoroutinePool Redis benchmark (${options.quick ? "quick" : "full"}): redis-server ${serverVersion} on loopback, node ${host.node}, ${host.cores} cores ${host.cpu}, load ${host.load1} at start / ${loadAtEnd} at end, ${host.date}\n`
    )
    console.log(redisTable(rows))
    console.log(
      `\nc = concurrent callers on one key, max = c (nothing is turned away); ${sizes.repetitions} runs of ${sizes.runMs} ms each, medians; lease TTL ${ttl} ms`
    )
    console.log(`\n${scaleLines(scale).join("\n")}`)
    console.log(`\n${targetsTable(targets)}`)
    console.log(`${durationSec.toFixed(1)} s; results in ${out}`)
    writeFileSync(
      out,
      toJson({
        machine: { ...host, load1AtEnd: loadAtEnd },
        redis: { version: serverVersion, bind: "127.0.0.1", save: "", appendonly: "no" },
        options: { quick: options.quick, sizes, ttl },
        durationSec,
        rows,
        scale,
        targets
      })
    )
  } finally {
    await Effect.runPromise(Scope.close(poolScope, Exit.void)).catch(() => undefined)
    ioredis?.disconnect()
    await runtime?.dispose().catch(() => undefined)
    await stopServer()
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
    progress(`redis-server pid ${server.pid} stopped`)
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { quick: { type: "boolean", default: false }, out: { type: "string" } }
  })
  await main({ quick: values.quick ?? false, out: values.out })
}
