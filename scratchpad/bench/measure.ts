// Timing, memory sampling and garbage collection shared by the cases.
import * as os from "node:os"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Effect } from "effect"

/** One timed run of a subject: the wall time of its workload, and what it checked. */
export interface Sample {
  readonly ms: number
  readonly checks?: Readonly<Record<string, number>>
}

/** A contender in a case: runs the case's workload of `ops` operations once. */
export interface Subject {
  readonly name: string
  readonly run: (ops: number) => Promise<Sample>
}

/** The summary of a subject's timed runs. */
export interface Measurement {
  readonly subject: string
  readonly ops: number
  readonly nsPerOp: number
  readonly opsPerSec: number
  readonly runsNsPerOp: ReadonlyArray<number>
  readonly peakHeapMB: number
  readonly peakRssDeltaMB: number
  readonly checks: Readonly<Record<string, number>>
}

// `npm run bench` passes --expose-gc; without it (a bare `node run.ts`) V8 can
// still hand out its collector when the flag is set at run time.
const gcFunction: () => void =
  globalThis.gc ??
  (() => {
    setFlagsFromString("--expose-gc")
    return runInNewContext("gc") as () => void
  })()

/** Collects garbage twice, so objects freed by finalizers are gone too. */
export const collectGarbage = (): void => {
  gcFunction()
  gcFunction()
}

export const megabytes = (bytes: number): number => bytes / 1024 / 1024

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

/**
 * Tracks the peak of `heapUsed` and `rss` while a run is in progress, every
 * 10 ms and whenever a case calls `sample()` at a moment it knows is a peak.
 * Timers only fire when the runs yield to the event loop; every run samples at
 * its start and end as well.
 */
export class MemorySampler {
  peakHeap = 0
  peakRss = 0
  startRss = 0
  private timer: NodeJS.Timeout | undefined

  start(): void {
    this.peakHeap = 0
    this.peakRss = 0
    this.sample()
    this.startRss = this.peakRss
    this.timer = setInterval(() => this.sample(), 10)
  }

  sample(): void {
    const usage = process.memoryUsage()
    if (usage.heapUsed > this.peakHeap) this.peakHeap = usage.heapUsed
    if (usage.rss > this.peakRss) this.peakRss = usage.rss
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.sample()
  }
}

export const sampler = new MemorySampler()

export interface RunPlan {
  readonly ops: number
  readonly warmupOps: number
  readonly repetitions: number
}

/**
 * Runs every subject `warmupOps` once to warm the JIT, then `repetitions`
 * times at `ops`, round-robin (subject A, B, C, A, B, C, ...) so a slow drift
 * of the machine spreads over all subjects. Garbage is collected before every
 * run, outside the timed part. The reported figure is the median run.
 */
export const measureSubjects = async (subjects: ReadonlyArray<Subject>, plan: RunPlan): Promise<Array<Measurement>> => {
  for (const subject of subjects) {
    if (plan.warmupOps > 0) await subject.run(plan.warmupOps)
  }
  const runs = subjects.map(() => ({
    ns: [] as Array<number>,
    peakHeap: 0,
    rssDelta: 0,
    checks: {} as Record<string, number>
  }))
  for (let repetition = 0; repetition < plan.repetitions; repetition++) {
    for (const [index, subject] of subjects.entries()) {
      const record = runs[index]
      if (record === undefined) continue
      collectGarbage()
      sampler.start()
      const sample = await subject.run(plan.ops)
      sampler.stop()
      record.ns.push((sample.ms * 1e6) / plan.ops)
      record.peakHeap = Math.max(record.peakHeap, sampler.peakHeap)
      record.rssDelta = Math.max(record.rssDelta, sampler.peakRss - sampler.startRss)
      record.checks = { ...sample.checks }
    }
  }
  return subjects.map((subject, index) => {
    const record = runs[index] ?? { ns: [], peakHeap: 0, rssDelta: 0, checks: {} }
    const nsPerOp = median(record.ns)
    return {
      subject: subject.name,
      ops: plan.ops,
      nsPerOp,
      opsPerSec: 1e9 / nsPerOp,
      runsNsPerOp: record.ns,
      peakHeapMB: megabytes(record.peakHeap),
      peakRssDeltaMB: megabytes(record.rssDelta),
      checks: record.checks
    }
  })
}

export const machine = () => {
  const cpus = os.cpus()
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: cpus[0]?.model ?? "unknown",
    cores: os.availableParallelism(),
    memoryGB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    load1: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
    date: new Date().toISOString()
  }
}

/** Runs `body` n times in one `Effect.whileLoop`, handing each result to `step`. */
export const loop = <A, E, R>(n: number, body: () => Effect.Effect<A, E, R>, step: (a: A) => void) =>
  Effect.suspend(() => {
    let i = 0
    return Effect.whileLoop({
      while: () => i < n,
      body,
      step: (a) => {
        i++
        step(a)
      }
    })
  })

/** The wall time of an effect, in milliseconds, measured around it only. */
export const timed = <E, R>(self: Effect.Effect<unknown, E, R>): Effect.Effect<number, E, R> =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.map(self, () => performance.now() - start)
  })

/** The wall time of an async function, in milliseconds. */
export const timedAsync = async (run: () => Promise<unknown>): Promise<number> => {
  const start = performance.now()
  await run()
  return performance.now() - start
}

/**
 * Counts the event-loop turns that pass while `run` runs: a callback that
 * re-queues itself with `setImmediate` runs once per turn. It adds one tiny
 * callback per turn, so it is used in a separate, untimed pass.
 */
export const countTurns = async <A>(run: () => Promise<A>): Promise<number> => {
  let turns = 0
  let counting = true
  const tick = () => {
    turns++
    if (counting) setImmediate(tick)
  }
  setImmediate(tick)
  await run()
  counting = false
  return turns
}
