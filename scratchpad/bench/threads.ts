// Case 5: threads vs coroutines. The same tasks, each waiting 1 ms (a timer:
// the shape of a short I/O call, which is what a pool of coroutines is for),
// run three ways:
// - fibers, all admitted: one fiber per task through a pool with a permit for
//   every task (`withPermit`); each task `Effect.sleep`s 1 ms, so they all
//   wait at the same time.
// - fibers, 64 at a time: the same through a pool of 64 permits with
//   `withPermitWaiting`, i.e. the concurrency of the thread pool below, to
//   show which part of the difference is concurrency and which is mechanism.
// - fibers, no pool: the same fibers unguarded, the floor that shows what the
//   pool itself adds.
// - threads: `worker_threads`, capped at 64 (nobody runs 10,000 threads),
//   the tasks split evenly between them; each thread runs its share one
//   after another, blocking 1 ms per task with `Atomics.wait` (see
//   thread-worker.ts). Wall time runs from the first spawn to the last
//   thread's exit, so thread start-up and teardown are included, as they
//   are in real use.
// Memory: peak RSS above the run's start (threads keep their heaps outside
// the main heap, so RSS is the comparable figure) and peak main heap.
//
// A CPU-bound task would tell a different story: fibers share one core,
// threads use them all (2 here). Coroutines pay off for waiting, not computing.
import { Worker } from "node:worker_threads"
import { Effect } from "effect"
import { CoroutinePool } from "../../src/index.ts"
import { type Sample, type Subject, sampler, timed, timedAsync } from "./measure.ts"
import { Probe } from "./probe.ts"

export const taskMs = 1
export const threadCap = 64

const sleepTask = (probe: Probe, task: number, peak: number): Effect.Effect<void> =>
  Effect.andThen(
    Effect.sync(() => {
      probe.enter(task)
      // Every task is in flight: the memory peak of the run.
      if (probe.running === peak) sampler.sample()
    }),
    Effect.andThen(
      Effect.sleep(taskMs),
      Effect.sync(() => probe.leave())
    )
  )

type Permits = "none" | "all" | number

const fibersName = (permits: Permits): string =>
  permits === "none"
    ? "fibers, no pool (floor)"
    : permits === "all"
      ? "fibers, pool max=tasks (all admitted)"
      : `fibers, pool max=${permits} (withPermitWaiting)`

const fibers = (permits: Permits): Subject => {
  const name = fibersName(permits)
  return {
    name,
    run: (tasks) =>
      Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const max = permits === "none" || permits === "all" ? tasks : permits
            const pool = yield* CoroutinePool.make({ max, maxWaiting: tasks })
            // With max = tasks every call is admitted at once; below it, callers queue.
            const guard =
              permits === "none"
                ? () => (task: Effect.Effect<void>) => task
                : (worker: number) => (task: Effect.Effect<void>) => pool.withPermit(task, { worker })
            const probe = new Probe(tasks)
            const ids = Array.from({ length: tasks }, (_, task) => task)
            const ms = yield* timed(
              Effect.forEach(ids, (task) => guard(task)(sleepTask(probe, task, max)), {
                concurrency: "unbounded",
                discard: true
              })
            )
            // The peak is reported, not required: on a loaded machine the
            // first timers can fire before the last fibers have started.
            return { ms, checks: probe.verify(name, max) } satisfies Sample
          })
        )
      )
  }
}

const runThread = (tasks: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./thread-worker.ts", import.meta.url), { workerData: { tasks, taskMs } })
    let done = -1
    worker.once("message", (message: { readonly done: number }) => {
      done = message.done
      sampler.sample()
    })
    worker.once("error", reject)
    worker.once("exit", (code) => (code === 0 && done >= 0 ? resolve(done) : reject(new Error(`thread exit ${code}`))))
  })

const threads = (cap: number): Subject => ({
  name: `worker_threads (${cap} threads)`,
  run: async (tasks) => {
    const count = Math.min(cap, tasks)
    let done = 0
    const ms = await timedAsync(async () => {
      const shares = Array.from(
        { length: count },
        (_, thread) => Math.floor(tasks / count) + (thread < tasks % count ? 1 : 0)
      )
      const results = await Promise.all(shares.map(runThread))
      done = results.reduce((sum, n) => sum + n, 0)
    })
    if (done !== tasks) throw new Error(`worker_threads: run not trusted: ${done} of ${tasks} tasks ran`)
    return { ms, checks: { tasks, threads: count } }
  }
})

/**
 * The reference (all admitted) first; the pool of `cap` permits matches the
 * threads; the floor runs the same fibers without a pool.
 */
export const subjects = (cap: number): ReadonlyArray<Subject> => [
  fibers("all"),
  fibers(cap),
  threads(cap),
  fibers("none")
]
