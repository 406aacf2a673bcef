// Case 2: contended waiting. `clients` concurrent clients (1,000) each submit
// their share of the tasks one after another through a limit of 2, so about
// 998 callers are queued at any moment. Every subject runs the same workload.
//
// A task holds its permit across one asynchronous yield to the event loop,
// so that the other tasks really have to wait and the limiter's wake-up path
// is exercised:
// - Effect subjects: `Effect.yieldNow`. The fiber goes back to Effect's
//   scheduler, which runs its queued tasks from a `setImmediate`: one
//   macrotask turn, batched with the other fibers that yielded meanwhile.
// - promise subjects: `await new Promise((resolve) => setImmediate(resolve))`:
//   one macrotask turn too, batched by Node's check phase the same way.
// `await Promise.resolve()` would be a microtask: it never lets timers or I/O
// in, so it is cheaper than what `Effect.yieldNow` does and not the same
// work; the macrotask is the fair counterpart.
//
// Each run is checked by a Probe counting inside the task: every task ran
// exactly once and never more than 2 at a time, or the run throws.
import { Sema } from "async-sema"
import { bulkhead } from "cockatiel"
import { Effect, Semaphore } from "effect"
import pLimit from "p-limit"
import PQueue from "p-queue"
import { CoroutinePool } from "../../src/index.ts"
import { type Sample, type Subject, timed, timedAsync } from "./measure.ts"
import { Probe } from "./probe.ts"

export const max = 2
export const clients = 1_000

const tasksPerClient = (tasks: number): number => {
  if (tasks % clients !== 0) throw new Error(`tasks (${tasks}) must be a multiple of ${clients} clients`)
  return tasks / clients
}

const clientIds = Array.from({ length: clients }, (_, client) => client)

// One task of the workload, as an effect: enter, yield once, leave.
const effectTask = (probe: Probe, task: number): Effect.Effect<void> =>
  Effect.andThen(
    Effect.sync(() => probe.enter(task)),
    Effect.andThen(
      Effect.yieldNow,
      Effect.sync(() => probe.leave())
    )
  )

// Every client submits its tasks one after another through `guard`; the
// clients run concurrently.
const effectClients = <E>(
  probe: Probe,
  guard: (client: number, task: Effect.Effect<void>) => Effect.Effect<void, E>
): Effect.Effect<void, E> => {
  const perClient = tasksPerClient(probe.tasks)
  return Effect.forEach(
    clientIds,
    (client) =>
      Effect.suspend(() => {
        let i = 0
        return Effect.whileLoop({
          while: () => i < perClient,
          body: () => guard(client, effectTask(probe, client * perClient + i)),
          step: () => {
            i++
          }
        })
      }),
    { concurrency: "unbounded", discard: true }
  )
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

// The same task, as a promise.
const promiseTask = async (probe: Probe, task: number): Promise<void> => {
  probe.enter(task)
  await nextTurn()
  probe.leave()
}

const promiseClients = async (probe: Probe, submit: (task: number) => Promise<unknown>): Promise<void> => {
  const perClient = tasksPerClient(probe.tasks)
  await Promise.all(
    clientIds.map(async (client) => {
      for (let i = 0; i < perClient; i++) await submit(client * perClient + i)
    })
  )
}

// A pool where each task takes `permits` of `max`, so 2 run at a time
// whatever the weight; `clients` may queue. `drive` runs the tasks through
// the guard (the clients of case 2, or the fan-out of case 2f).
type Drive = (
  probe: Probe,
  guard: (task: Effect.Effect<void>) => Effect.Effect<void, unknown>
) => Effect.Effect<void, unknown>

const poolSubject = (name: string, max: number, permits: number, drive: Drive): Subject => ({
  name,
  run: (tasks) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const pool = yield* CoroutinePool.make({ max, maxWaiting: clients })
          const probe = new Probe(tasks)
          const ms = yield* timed(drive(probe, pool.withPermits(permits)))
          yield* checkStats(name, pool, tasks)
          return { ms, checks: probe.verify(name, 2) } satisfies Sample
        })
      )
    )
})

const byClients: Drive = (probe, guard) => effectClients(probe, (_, task) => guard(task))

const checkStats = (name: string, pool: CoroutinePool.CoroutinePool, tasks: number) =>
  Effect.map(pool.stats, (stats) => {
    if (stats.acquired !== tasks || stats.rejected !== 0 || stats.active !== 0 || stats.waiting !== 0) {
      throw new Error(`${name}: run not trusted: stats ${JSON.stringify(stats)}`)
    }
  })

/** The pool: FIFO waiting with room for every client in the queue. */
export const pool: Subject = poolSubject("CoroutinePool.withPermit", max, 1, byClients)

/** The same, each task weighing 3 permits of 6. */
export const weighted: Subject = poolSubject("CoroutinePool.withPermits(3), max 6", max * 3, 3, byClients)

export const semaphore: Subject = {
  name: "Semaphore.withPermits",
  run: (tasks) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const semaphore = yield* Semaphore.make(max)
        const probe = new Probe(tasks)
        const ms = yield* timed(effectClients(probe, (_, task) => semaphore.withPermits(1)(task)))
        return { ms, checks: probe.verify("Semaphore.withPermits", max) } satisfies Sample
      })
    )
}

const pLimitSubject: Subject = {
  name: "p-limit",
  run: async (tasks) => {
    const limit = pLimit(max)
    const probe = new Probe(tasks)
    const ms = await timedAsync(() => promiseClients(probe, (task) => limit(promiseTask, probe, task)))
    return { ms, checks: probe.verify("p-limit", max) }
  }
}

const pQueue: Subject = {
  name: "p-queue",
  run: async (tasks) => {
    const queue = new PQueue({ concurrency: max })
    const probe = new Probe(tasks)
    const ms = await timedAsync(() => promiseClients(probe, (task) => queue.add(() => promiseTask(probe, task))))
    return { ms, checks: probe.verify("p-queue", max) }
  }
}

const asyncSema: Subject = {
  name: "async-sema acquire/release",
  run: async (tasks) => {
    const sema = new Sema(max)
    const probe = new Probe(tasks)
    const ms = await timedAsync(() =>
      promiseClients(probe, async (task) => {
        await sema.acquire()
        try {
          await promiseTask(probe, task)
        } finally {
          sema.release()
        }
      })
    )
    return { ms, checks: probe.verify("async-sema acquire/release", max) }
  }
}

const cockatiel: Subject = {
  name: "cockatiel bulkhead(2, 1000)",
  run: async (tasks) => {
    const policy = bulkhead(max, clients)
    const probe = new Probe(tasks)
    const ms = await timedAsync(() => promiseClients(probe, (task) => policy.execute(() => promiseTask(probe, task))))
    return { ms, checks: probe.verify("cockatiel bulkhead(2, 1000)", max) }
  }
}

// The floors: the same tasks taken from a shared counter by 2 workers, so 2
// run at a time with no limiter and nobody waiting. What a limiter's row costs
// above its runtime's floor is the price of the waiting and waking.
const effectFloor: Subject = {
  name: "floor: 2 fibers, no limiter",
  run: (tasks) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const probe = new Probe(tasks)
        let next = 0
        const worker = Effect.whileLoop({
          while: () => next < tasks,
          body: () => effectTask(probe, next++),
          step: () => {}
        })
        const ms = yield* timed(Effect.all([worker, worker], { concurrency: max, discard: true }))
        return { ms, checks: probe.verify("floor: 2 fibers, no limiter", max) } satisfies Sample
      })
    )
}

const promiseFloor: Subject = {
  name: "floor: 2 async loops, no limiter",
  run: async (tasks) => {
    const probe = new Probe(tasks)
    let next = 0
    const worker = async () => {
      while (next < tasks) await promiseTask(probe, next++)
    }
    const ms = await timedAsync(() => Promise.all([worker(), worker()]))
    return { ms, checks: probe.verify("floor: 2 async loops, no limiter", max) }
  }
}

/** The Semaphore is measured apart, see run.ts. */
export const peers: ReadonlyArray<Subject> = [pLimitSubject, pQueue, asyncSema, cockatiel, effectFloor, promiseFloor]

// The same tasks as elements of one `Effect.forEach` with `clients` at once
// (a fiber forked per task), through `guard`: how a caller fans work out.
const fanOut = <E>(probe: Probe, guard: (task: Effect.Effect<void>) => Effect.Effect<void, E>) =>
  Effect.forEach(taskIds(probe.tasks), (task) => guard(effectTask(probe, task)), {
    concurrency: clients,
    discard: true
  })

const taskIds = (tasks: number) => Array.from({ length: tasks }, (_, task) => task)

/** Fan-out: no limiter, `clients` tasks at once (the reference of case 2f). */
export const fanOutFloor: Subject = {
  name: "Effect.forEach, no limiter (floor)",
  run: (tasks) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const probe = new Probe(tasks)
        const ms = yield* timed(fanOut(probe, (task) => task))
        return { ms, checks: probe.verify("Effect.forEach, no limiter (floor)", clients) } satisfies Sample
      })
    )
}

/** Fan-out through the pool, 2 at a time: 1 permit of 2, and 3 permits of 6. */
export const fanOutPools: ReadonlyArray<Subject> = [
  poolSubject("Effect.forEach + CoroutinePool.withPermit", max, 1, fanOut),
  poolSubject("Effect.forEach + CoroutinePool.withPermits(3), max 6", max * 3, 3, fanOut),
  {
    name: "Effect.forEach + Semaphore.withPermits(1)",
    run: (tasks) =>
      Effect.runPromise(
        Effect.gen(function* () {
          const semaphore = yield* Semaphore.make(max)
          const probe = new Probe(tasks)
          const ms = yield* timed(fanOut(probe, semaphore.withPermits(1)))
          return { ms, checks: probe.verify("Effect.forEach + Semaphore.withPermits(1)", max) } satisfies Sample
        })
      )
  }
]
