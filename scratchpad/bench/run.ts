// The benchmark suite: every case in one process, side by side, then a table
// on stdout and the full results in results.json. See README.md here.
//
//   npm run bench                      # full sizes, a few minutes
//   npm run bench -- --quick           # small sizes, a few seconds
//   npm run bench -- --out /tmp/r.json # write the results elsewhere
//   npm run bench -- --redis [--quick] # only case R (Redis), see redis.ts
import { writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { Effect } from "effect"
import * as contended from "./contended.ts"
import { countTurns, machine, measureSubjects } from "./measure.ts"
import * as parked from "./parked.ts"
import * as rejection from "./rejection.ts"
import {
  type CaseResult,
  fromMeasurement,
  fromParked,
  makeCase,
  notes,
  type Target,
  table,
  target,
  targetsTable,
  toJson,
  type Unrated
} from "./report.ts"
import * as threads from "./threads.ts"
import * as uncontended from "./uncontended.ts"

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    out: { type: "string" },
    redis: { type: "boolean", default: false }
  }
})
const quick = values.quick ?? false
if (values.redis) {
  // Case R needs redis-server and writes its own results file: it runs alone
  // (loaded only here, so the other cases never load a Redis client).
  const redis = await import("./redis.ts")
  await redis.main({ quick, out: values.out })
  process.exit()
}
// A quick run never overwrites the full run's results, which the README cites.
const out = values.out ?? new URL(quick ? "./results-quick.json" : "./results.json", import.meta.url).pathname

const sizes = quick
  ? {
      uncontended: { ops: 10_000, warmupOps: 5_000, repetitions: 3 },
      rejection: { ops: 10_000, warmupOps: 5_000, repetitions: 3 },
      contended: { ops: 4_000, warmupOps: 1_000, repetitions: 2 },
      fanOut: { ops: 4_000, warmupOps: 1_000, repetitions: 2 },
      turnsOps: 2_000,
      semaphoreBudgetMs: 5_000,
      scaling: [
        { ops: 2_000, warmupOps: 0, repetitions: 2 },
        { ops: 5_000, warmupOps: 0, repetitions: 2 },
        { ops: 10_000, warmupOps: 0, repetitions: 2 }
      ],
      parkedWaiters: 5_000,
      semaphoreParkedWaiters: 5_000,
      threads: { ops: 1_000, warmupOps: 0, repetitions: 1 },
      threadCap: 8
    }
  : {
      uncontended: { ops: 1_000_000, warmupOps: 1_000_000, repetitions: 7 },
      rejection: { ops: 1_000_000, warmupOps: 1_000_000, repetitions: 7 },
      contended: { ops: 100_000, warmupOps: 10_000, repetitions: 3 },
      fanOut: { ops: 20_000, warmupOps: 10_000, repetitions: 5 },
      turnsOps: 20_000,
      semaphoreBudgetMs: 60_000,
      scaling: [
        { ops: 10_000, warmupOps: 0, repetitions: 5 },
        { ops: 100_000, warmupOps: 0, repetitions: 3 },
        { ops: 1_000_000, warmupOps: 0, repetitions: 3 }
      ],
      parkedWaiters: 100_000,
      semaphoreParkedWaiters: 20_000,
      threads: { ops: 10_000, warmupOps: 1_000, repetitions: 3 },
      threadCap: threads.threadCap
    }

const started = performance.now()
// The load average tells whether something else shared the cores.
const host = machine()
const progress = (line: string) =>
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}\n`)

// 1 ---------------------------------------------------------------------------
progress(`1 uncontended: ${sizes.uncontended.ops} calls x ${sizes.uncontended.repetitions}`)
const case1 = makeCase(
  {
    id: "1",
    title: "uncontended with-permit, sequential calls, no-op body",
    reference: "Semaphore.withPermitsIfAvailable",
    ratioOf: "ns/op",
    notes: [
      "Effect subjects: one Effect.whileLoop of N calls, the guarded effect built per call; promise subjects: one async loop",
      "async-sema's tryAcquire/release are synchronous (no await); cockatiel's execute is async (awaited per call)",
      "Ref.modify counter: take if below max, give back; no interruption safety, events or holder bookkeeping (a floor)",
      "CoroutinePool.withPermit records wait and hold times by default (an immediate admission waited 0 ms: no clock read; hold times sampled, every hold counted); the timing: false row shows the permit without them",
      "Effect loop, no permit: the same loop around a bare Effect.void, i.e. the runtime's share of every Effect row"
    ]
  },
  (await measureSubjects(uncontended.subjects, sizes.uncontended)).map((m) => fromMeasurement(m))
)

// 2 ---------------------------------------------------------------------------
progress(`2 contended: ${sizes.contended.ops} tasks x ${sizes.contended.repetitions}`)
const case2Main = await measureSubjects([contended.pool, contended.weighted, ...contended.peers], sizes.contended)
// Effect's Semaphore pays O(waiters) per release; project its full run from a
// warm-up and shrink its task count (same 1,000 clients) to fit the budget.
const calibration = await contended.semaphore.run(sizes.contended.warmupOps)
const projectedMs = (calibration.ms / sizes.contended.warmupOps) * sizes.contended.ops * sizes.contended.repetitions
const semaphoreOps =
  projectedMs <= sizes.semaphoreBudgetMs
    ? sizes.contended.ops
    : Math.max(
        contended.clients * 2,
        Math.floor((sizes.contended.ops * sizes.semaphoreBudgetMs) / projectedMs / contended.clients) *
          contended.clients
      )
progress(`2 contended: Semaphore.withPermits at ${semaphoreOps} tasks (projected full: ${Math.round(projectedMs)} ms)`)
const [semaphoreRun] = await measureSubjects([contended.semaphore], {
  ...sizes.contended,
  ops: semaphoreOps,
  warmupOps: 0
})
// Why a subject is as fast as it is: how many event-loop turns a task costs.
progress(`2 contended: counting event-loop turns at ${sizes.turnsOps} tasks`)
const turnsPerTask = new Map<string, number>()
for (const subject of [contended.pool, contended.weighted, ...contended.peers, contended.semaphore]) {
  turnsPerTask.set(subject.name, (await countTurns(() => subject.run(sizes.turnsOps))) / sizes.turnsOps)
}
const withTurns = <R extends { readonly subject: string }>(row: R) => ({
  ...row,
  turnsPerOp: turnsPerTask.get(row.subject) ?? Number.NaN
})
const case2 = makeCase(
  {
    id: "2",
    title: `contended waiting: ${contended.clients} concurrent clients, tasks one after another each, max ${contended.max}`,
    reference: contended.pool.name,
    ratioOf: "ns/op",
    notes: [
      "a task holds its permit across one macrotask yield: Effect.yieldNow (Effect's scheduler runs on setImmediate) vs `await new Promise(r => setImmediate(r))` for promise libraries; `await Promise.resolve()` would be a cheaper microtask that lets no I/O in, so not the same work",
      `every run checked: each task ran exactly once, peak concurrency <= ${contended.max}`,
      "floors: the same tasks pulled from a counter by 2 workers, no limiter, nobody waiting; a row minus its runtime's floor is what waiting and waking cost",
      "CoroutinePool.withPermits(3), max 6: the same workload, each task weighing 3 permits of 6, so 2 still run at a time",
      `event-loop turns per task (separate untimed pass, ${sizes.turnsOps} tasks): ${[...turnsPerTask].map(([name, turns]) => `${name} ${turns.toFixed(2)}`).join(", ")}`
    ]
  },
  [
    ...case2Main.map((m) => withTurns(fromMeasurement(m))),
    ...(semaphoreRun === undefined
      ? []
      : [
          withTurns(
            fromMeasurement(
              semaphoreRun,
              semaphoreOps === sizes.contended.ops
                ? undefined
                : `measured at ${semaphoreOps} tasks (same ${contended.clients} clients), not ${sizes.contended.ops}: the full run was projected at ${Math.round(projectedMs / 1000)} s; ratio is per task`
            )
          )
        ])
  ]
)

// 2f --------------------------------------------------------------------------
progress(`2f fan-out: ${sizes.fanOut.ops} tasks x ${sizes.fanOut.repetitions}`)
const case2f = makeCase(
  {
    id: "2f",
    title: `contended fan-out: Effect.forEach over the tasks, ${contended.clients} at once, max ${contended.max}`,
    reference: contended.fanOutFloor.name,
    ratioOf: "ns/op",
    notes: [
      "the case-2 task (enter, Effect.yieldNow, leave) as the elements of one Effect.forEach with concurrency 1,000 (a fiber forked per task); the floor is the same forEach with no limiter",
      "every run checked: each task ran exactly once, peak concurrency <= 2 with a limiter; the pool's stats balanced",
      "a limiter serializes the tasks to 2 at a time, which alone costs turns the floor does not pay (p-limit pays it too, see case 2)"
    ]
  },
  (await measureSubjects([contended.fanOutFloor, ...contended.fanOutPools], sizes.fanOut)).map((m) =>
    fromMeasurement(m)
  )
)

// 3 ---------------------------------------------------------------------------
const scalingRows: Array<Unrated> = []
for (const plan of sizes.scaling) {
  progress(`3 scaling: pool at ${plan.ops} tasks x ${plan.repetitions}`)
  const [measurement] = await measureSubjects([contended.pool], plan)
  if (measurement !== undefined)
    scalingRows.push(fromMeasurement({ ...measurement, subject: `pool @ ${plan.ops} tasks` }))
}
const smallest = sizes.scaling[0]?.ops ?? 0
const largest = sizes.scaling.at(-1)?.ops ?? 0
// What one more task costs between two sizes: the slope of the total time,
// free of the fixed cost of a run (forking the clients, the first turns).
const marginal = Object.fromEntries(
  scalingRows.slice(1).map((row, index) => {
    const previous = scalingRows[index] ?? row
    const slope = (row.nsPerOp * row.ops - previous.nsPerOp * previous.ops) / (row.ops - previous.ops)
    return [`marginal ns/task ${previous.ops}->${row.ops}`, slope]
  })
)
const case3 = makeCase(
  {
    id: "3",
    title: `scaling: the case-2 pool workload (${contended.clients} clients) at growing task counts`,
    reference: `pool @ ${smallest} tasks`,
    ratioOf: "ns/op",
    notes: [
      "every run checked like case 2",
      "a run has a fixed cost (forking the clients, its first turns while the heap grows back after the pre-run GC), so small runs cost more per task; a ratio below 1 means no growth with size",
      `marginal cost of one more task (slope of total time): ${Object.entries(marginal)
        .map(([name, ns]) => `${name.replace("marginal ns/task ", "")}: ${Math.round(ns)} ns`)
        .join(", ")}`
    ],
    derived: marginal
  },
  scalingRows
)

// 4 ---------------------------------------------------------------------------
progress(`4 parked: ${sizes.parkedWaiters} waiters`)
const parkedRun = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
// A small round first so the JIT has seen the code paths.
await parkedRun(parked.bareFiber(1_000))
await parkedRun(parked.semaphoreTake(1_000))
await parkedRun(parked.pool(1_000))
const bare = await parkedRun(parked.bareFiber(sizes.parkedWaiters))
const semaphoreParked = await parkedRun(parked.semaphoreTake(sizes.semaphoreParkedWaiters))
const poolParked = await parkedRun(parked.pool(sizes.parkedWaiters))
const case4 = makeCase(
  {
    id: "4",
    title: "memory per parked waiter: a blocker holds the only permit, N fibers wait",
    reference: bare.subject,
    ratioOf: "bytes/op",
    notes: [
      "B/op = heapUsed after all are parked - before the first fork (both after a full GC) / N, the fiber included; ns/op = fork + park time per waiter",
      "both heap readings follow a 20 ms pause (earlier work's queued tasks and timers run) and a full GC",
      "parking verified before measuring (pool stats.waiting = N; every fiber reached its park point and none ended); all interrupted afterwards (cleanupMs in the JSON)",
      `above a bare fiber: pool ${Math.round(poolParked.bytesPerWaiter - bare.bytesPerWaiter)} B, Semaphore.take ${Math.round(semaphoreParked.bytesPerWaiter - bare.bytesPerWaiter)} B per waiter`
    ],
    derived: {
      "pool B/waiter above a bare fiber": poolParked.bytesPerWaiter - bare.bytesPerWaiter,
      "Semaphore.take B/waiter above a bare fiber": semaphoreParked.bytesPerWaiter - bare.bytesPerWaiter
    }
  },
  [
    fromParked(bare),
    fromParked(
      semaphoreParked,
      semaphoreParked.waiters === sizes.parkedWaiters
        ? undefined
        : `measured at ${semaphoreParked.waiters} waiters: each new waiter scans the whole queue (firstAvailableWaiter finds no fit while the permit is held), so parking N is O(N²)`
    ),
    fromParked(poolParked)
  ]
)

// 5 ---------------------------------------------------------------------------
progress(`5 threads vs coroutines: ${sizes.threads.ops} tasks x ${sizes.threads.repetitions}`)
const case5Subjects = threads.subjects(sizes.threadCap)
const case5 = makeCase(
  {
    id: "5",
    title: `threads vs coroutines: ${sizes.threads.ops} tasks, each waits ${threads.taskMs} ms`,
    reference: case5Subjects[0]?.name ?? "",
    ratioOf: "ns/op",
    notes: [
      `fibers Effect.sleep(${threads.taskMs} ms) inside the pool; threads block ${threads.taskMs} ms per task (Atomics.wait), ${sizes.threadCap} threads, tasks split evenly, start-up and exit included`,
      `fibers, pool max=${sizes.threadCap}: the threads' concurrency with fibers; fibers, no pool: the same fibers unguarded, what the pool adds`,
      "RSS Δ is the comparable memory figure (worker heaps are outside the main heap); for CPU-bound tasks threads would win on cores, fibers do not add cores"
    ]
  },
  (await measureSubjects(case5Subjects, sizes.threads)).map((m) => fromMeasurement(m))
)

// 6 ---------------------------------------------------------------------------
progress(`6 rejection: ${sizes.rejection.ops} calls x ${sizes.rejection.repetitions}`)
const case6 = makeCase(
  {
    id: "6",
    title: "turned away: every permit held, sequential calls, no-op body",
    reference: rejection.semaphore.name,
    ratioOf: "ns/op",
    notes: [
      "the pool's withPermit fails with a PoolRejected (a real instance with its fields, built without a stack trace), read with Effect.exit; withPermitIfAvailable answers None; both count the rejection and publish its event",
      "Effect.exit(Effect.fail(prebuilt)): the runtime's floor for a failure that is read",
      "every run checked: every call turned away; the pool's stats count every rejection"
    ]
  },
  (await measureSubjects(rejection.subjects, sizes.rejection)).map((m) => fromMeasurement(m))
)

// report ----------------------------------------------------------------------
const cases: ReadonlyArray<CaseResult> = [case1, case2, case2f, case3, case4, case5, case6]
const ratioIn = (result: CaseResult, subject: string): number =>
  result.rows.find((row) => row.subject === subject)?.ratio ?? Number.NaN
const ratioBetween = (result: CaseResult, subject: string, base: string): number =>
  (result.rows.find((row) => row.subject === subject)?.nsPerOp ?? Number.NaN) /
  (result.rows.find((row) => row.subject === base)?.nsPerOp ?? Number.NaN)
const targets: ReadonlyArray<Target> = [
  target(
    "1",
    "(1) uncontended withPermit, histograms on / Semaphore.withPermitsIfAvailable ns/op",
    ratioIn(case1, "CoroutinePool.withPermit"),
    "<=",
    0.9
  ),
  target(
    "6a",
    "(6) rejection, typed PoolRejected / Semaphore.withPermitsIfAvailable on a full semaphore ns/op",
    ratioIn(case6, "CoroutinePool.withPermit, PoolRejected"),
    "<=",
    2.5
  ),
  target(
    "6b",
    "(6) withPermitIfAvailable on a full pool / the same ns/op",
    ratioIn(case6, "CoroutinePool.withPermitIfAvailable, None"),
    "<=",
    1.2
  ),
  target(
    "2f",
    "(2f) contended, per task / no-limiter floor (Effect.forEach) ns/task",
    ratioIn(case2f, "Effect.forEach + CoroutinePool.withPermit"),
    "<=",
    2
  ),
  target("4", "(4) bytes per parked pool waiter, fiber included", poolParked.bytesPerWaiter, "<=", 900),
  target(
    "2w",
    "(2f) weighted withPermits(3) under contention / withPermits(1) ns/task",
    ratioBetween(
      case2f,
      "Effect.forEach + CoroutinePool.withPermits(3), max 6",
      "Effect.forEach + CoroutinePool.withPermit"
    ),
    "<=",
    1.2
  ),
  target("2a", "(2) Semaphore.withPermits / pool ns/task", ratioIn(case2, contended.semaphore.name), ">=", 10),
  target("2b", "(2) p-limit / pool ns/task", ratioIn(case2, "p-limit"), ">", 1),
  target(
    "3",
    `(3) ns/task at ${largest} / ns/task at ${smallest}`,
    ratioIn(case3, `pool @ ${largest} tasks`),
    "<=",
    1.5
  )
]
const ratios = Object.fromEntries(
  cases.flatMap((result) =>
    result.rows
      .filter((row) => row.subject !== result.reference)
      .map((row) => [`${result.id}: ${row.subject} / ${result.reference} (${result.ratioOf})`, row.ratio])
  )
)
const durationSec = (performance.now() - started) / 1000

const loadAtEnd = machine().load1
progress("done")
console.log(
  `CoroutinePool benchmarks (${quick ? "quick" : "full"}): node ${host.node}, ${host.cores} cores ${host.cpu}, load ${host.load1} at start / ${loadAtEnd} at end, ${host.date}\n`
)
console.log(table(cases))
console.log(`\n${targetsTable(targets)}`)
console.log(`\nNotes\n${notes(cases)}`)
console.log(`\n${durationSec.toFixed(1)} s; results in ${out}`)

writeFileSync(
  out,
  toJson({
    machine: { ...host, load1AtEnd: loadAtEnd },
    options: { quick, sizes },
    durationSec,
    cases,
    ratios,
    targets
  })
)
