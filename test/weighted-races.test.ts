// Weighted callers (withPermits(n) and acquire(n)) thrown together with
// interrupts, timeouts, resizes and maxWait at random instants (many of them
// equal), under scheduler budgets down to 3 operations per slice; and one
// weighted waiter stepped by hand through a release, an interrupt, and both
// in one step. Whatever the interleaving, the event log must obey the pool's
// rules (strict FIFO, a head never overtaken, never more than max permits
// taken), agree with the stats, and account for every permit.
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Option, Scheduler, Schema } from "effect"
import { TestClock } from "effect/testing"
import type { CoroutinePool } from "../src/index.ts"
import * as RecordedPool from "./utils/RecordedPool.ts"
import * as Stepper from "./utils/Stepper.ts"
import * as VirtualTime from "./utils/VirtualTime.ts"

const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

const Worker = Schema.Struct({
  start: between(0, 10),
  hold: between(0, 15),
  // Its weight is 1..max: ((permits - 1) % max) + 1 (12 is a multiple of every max).
  permits: between(1, 12),
  // withPermits(n), or acquire(n) in a scope of its own.
  api: Schema.Literals(["with", "acquire"]),
  // Undefined: left alone; otherwise interrupted, or wrapped in Effect.timeout, at that instant.
  cut: Schema.UndefinedOr(Schema.Struct({ at: between(0, 30), by: Schema.Literals(["interrupt", "timeout"]) }))
})

type Outcome = CoroutinePool.PoolRejected["reason"] | "ran" | "interrupted" | "invalid"

// The lives a worker may lead, as the event log tells them.
const lives = [
  "",
  "Acquired, Released",
  "Rejected",
  "Queued, Acquired, Released",
  "Queued, TimedOut",
  "Queued, Abandoned"
]

type Event = CoroutinePool.PoolEvent

const permitsOf = (event: Event) => ("permits" in event && event.permits !== undefined ? event.permits : 1)

describe("weighted callers, any interleaving", () => {
  it.effect.prop(
    "interrupts, timeouts, resizes and maxWait racing weighted hand-offs keep FIFO and max, and lose no permit",
    {
      max: between(1, 4),
      maxWaiting: between(0, 4),
      maxWait: Schema.UndefinedOr(between(0, 20)),
      workers: Schema.Array(Worker).check(Schema.isMinLength(1), Schema.isMaxLength(8)),
      resizes: Schema.Array(Schema.Struct({ at: between(0, 15), max: between(1, 4) })).check(Schema.isMaxLength(2)),
      budget: Schema.Literals([3, 4, 7, 16, 2048])
    },
    ({ budget, max, maxWait, maxWaiting, resizes, workers }) =>
      Effect.gen(function* () {
        const weights = workers.map(({ permits }) => ((permits - 1) % max) + 1)
        const { close, events, pool } = yield* RecordedPool.make(max, {
          maxWaiting,
          maxWait: maxWait === undefined ? undefined : `${maxWait} millis`
        })
        let running = 0
        const starts = workers.map(() => 0)
        const body = (worker: number, permits: number, hold: number) =>
          Effect.gen(function* () {
            running += permits
            starts[worker] = (starts[worker] ?? 0) + 1
            const { active } = yield* pool.stats
            assert.isAtMost(running, active, "every running body holds its permits")
            yield* Effect.sleep(hold)
          }).pipe(Effect.ensuring(Effect.sync(() => (running -= permits))))

        const scenario = Effect.gen(function* () {
          const fibers = yield* Effect.forEach(workers, ({ api, cut, hold, start }, worker) => {
            const permits = weights[worker] as number
            const guarded =
              api === "with"
                ? pool.withPermits(permits, { worker })(body(worker, permits, hold))
                : Effect.scoped(Effect.andThen(pool.acquire(permits, { worker }), body(worker, permits, hold)))
            const timed = cut?.by === "timeout" ? Effect.asVoid(Effect.timeout(guarded, cut.at)) : guarded
            return Effect.forkChild(Effect.delay(timed, start))
          })
          yield* Effect.forEach(workers, ({ cut }, worker) =>
            cut?.by === "interrupt"
              ? Effect.forkChild(Effect.delay(Fiber.interrupt(fibers[worker] as Fiber.Fiber<void>), cut.at))
              : Effect.void
          )
          yield* Effect.forEach(resizes, (resize) => Effect.forkChild(Effect.delay(pool.resize(resize.max), resize.at)))
          return yield* Effect.forEach(fibers, Fiber.await)
        }).pipe(Effect.provideService(Scheduler.MaxOpsBeforeYield, budget))

        const fiber = yield* VirtualTime.start(scenario)
        yield* TestClock.adjust("400 millis")
        const exits = yield* Fiber.join(fiber)
        const errors = exits.map((exit) =>
          Exit.isSuccess(exit) ? undefined : Option.getOrUndefined(Cause.findErrorOption(exit.cause))
        )
        const outcomes = exits.map((exit, worker): Outcome => {
          if (Exit.isSuccess(exit)) return "ran"
          const error = errors[worker] as { readonly _tag: string } | undefined
          if (error?._tag === "PoolRejected") return (error as CoroutinePool.PoolRejected).reason
          if (error?._tag === "InvalidPermits") return "invalid"
          // Effect.timeout interrupted the call and failed with its own error.
          if (error?._tag === "TimeoutError") return "interrupted"
          assert.isTrue(
            Exit.hasInterrupts(exit),
            `only PoolRejected, InvalidPermits or interruption, got ${Cause.pretty(exit.cause)}`
          )
          return "interrupted"
        })

        // No permit is lost: all of them can be taken again at once, and nobody waits.
        const stats = yield* pool.stats
        assert.strictEqual(stats.active, 0)
        assert.strictEqual(stats.waiting, 0)
        assert.isTrue(yield* pool.tryAcquire(stats.max, { worker: "probe" }), "every permit is free")
        assert.isFalse(yield* pool.tryAcquire(1, { worker: "one too many" }))
        yield* pool.release(stats.max, { worker: "probe" })
        yield* close
        const log = yield* events
        const isProbe = (event: Event) => typeof RecordedPool.workerOf(event) === "string"
        const probeFree = log.filter((event) => !isProbe(event))

        // Replays the log against a model of the pool.
        let active = 0
        let current = max
        const queue: Array<{ readonly worker: number; readonly permits: number }> = []
        // After a shrink: the queued callers it turns away, in queue order.
        let turnedAway: Array<number> = []
        let handOffDue = false
        const weight = (worker: number) => weights[worker] as number
        for (const [index, event] of probeFree.entries()) {
          const at = `event ${index}: ${JSON.stringify(event)}`
          const worker = RecordedPool.workerOf(event) as number
          if (turnedAway.length > 0) {
            assert.deepStrictEqual(
              [event._tag, worker],
              ["Abandoned", turnedAway[0]],
              `a shrink turns these away first, ${at}`
            )
            turnedAway.shift()
          } else if (handOffDue) {
            assert.deepStrictEqual(
              [event._tag, worker],
              ["Acquired", queue[0]?.worker],
              `freed permits go to the head at once, ${at}`
            )
          }
          if (event._tag !== "Resized") assert.strictEqual(permitsOf(event), weight(worker), `its weight, ${at}`)
          switch (event._tag) {
            case "Resized":
              assert.strictEqual(event.from, current, at)
              current = event.max
              turnedAway = queue.filter((queued) => queued.permits > current).map((queued) => queued.worker)
              break
            case "Acquired": {
              if (queue.some((queued) => queued.worker === worker)) {
                assert.strictEqual(queue[0]?.worker, worker, `strict FIFO: only the head is admitted, ${at}`)
                queue.shift()
              } else {
                assert.deepStrictEqual(queue, [], `nobody is admitted ahead of the queue, ${at}`)
              }
              active += permitsOf(event)
              assert.isAtMost(active, current, `never more than max permits taken, ${at}`)
              break
            }
            case "Released":
              active -= permitsOf(event)
              break
            case "Queued":
              assert.isTrue(
                queue.length > 0 || active + permitsOf(event) > current,
                `queued only when it could not be admitted, ${at}`
              )
              queue.push({ worker, permits: permitsOf(event) })
              assert.isAtMost(queue.length, maxWaiting, at)
              break
            case "Rejected":
              assert.isTrue(
                queue.length > 0 || active + permitsOf(event) > current,
                `rejected only when it could not be admitted, ${at}`
              )
              assert.isAtLeast(queue.length, maxWaiting, `rejected only when the queue is full, ${at}`)
              break
            case "TimedOut":
            case "Abandoned": {
              const position = queue.findIndex((queued) => queued.worker === worker)
              assert.isAtLeast(position, 0, at)
              queue.splice(position, 1)
            }
          }
          assert.deepStrictEqual([event.active, event.max, event.waiting], [active, current, queue.length], at)
          const head = queue[0]
          handOffDue = head !== undefined && active + head.permits <= current
        }
        assert.strictEqual(active, 0)
        assert.deepStrictEqual(queue, [])
        assert.deepStrictEqual(turnedAway, [])

        // Each worker led one of the possible lives, and its outcome matches it.
        workers.forEach((_, worker) => {
          const life = probeFree
            .filter((event) => RecordedPool.workerOf(event) === worker)
            .map((event) => event._tag)
            .join(", ")
          assert.oneOf(life, lives, `worker ${worker}`)
          const outcome = outcomes[worker]
          assert.isAtMost(starts[worker] as number, 1, `worker ${worker} ran its body at most once`)
          if (starts[worker] === 1) assert.include(life, "Acquired", `worker ${worker} ran only once admitted`)
          if (outcome === "ran") assert.strictEqual(starts[worker], 1)
          if (outcome === "ran") assert.isTrue(life.endsWith("Acquired, Released"), `worker ${worker} ran: ${life}`)
          if (outcome === "timeout") assert.strictEqual(life, "Queued, TimedOut")
          if (outcome === "full") assert.strictEqual(life, "Rejected")
          if (outcome === "queue-full") assert.strictEqual(life, "Rejected")
          if (outcome === "invalid") {
            // Asked for more than max at the call (after a shrink), or turned away by a shrink while queued.
            assert.oneOf(life, ["", "Queued, Abandoned"], `worker ${worker}`)
            const error = errors[worker] as CoroutinePool.InvalidPermits
            assert.strictEqual(error.permits, weight(worker))
            assert.isBelow(error.max, weight(worker))
          }
          // An interrupt may land after any decision (even a rejection at the
          // same instant), so an interrupted worker may have led any life.
        })
        assert.notInclude(outcomes, "closed")

        // The stats count exactly the events.
        const count = (tag: Event["_tag"]) => log.filter((event) => event._tag === tag).length
        const final = yield* pool.stats
        assert.deepStrictEqual(
          [final.acquired, final.rejected, final.released, final.queued, final.timedOut, final.abandoned],
          [
            count("Acquired"),
            count("Rejected"),
            count("Released"),
            count("Queued"),
            count("TimedOut"),
            count("Abandoned")
          ]
        )
      }),
    { arbitrary: { runs: 200 } }
  )
})

describe("a weighted waiter stepped one task at a time", () => {
  // A pool of 3: worker 0 takes all 3 by hand; the waiter asks for 2 on a
  // hand-driven scheduler. After `steps` of its tasks, worker 0 gives back 2
  // of its 3 (a part of its take: just what the waiter needs), or the waiter
  // is interrupted, or both in one synchronous step. Worker 0 then gives back
  // its last one. Every permit must be free again, none doubled, the log
  // consistent; the sweep answers what each step led to, in step order.
  const sweep = (act: "release" | "interrupt" | "both") =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const broken: Array<string> = []
      for (let steps = 0; steps < 20; steps++) {
        const { close, events, lines, pool } = yield* RecordedPool.make(3, { maxWaiting: 1 })
        assert.isTrue(yield* pool.tryAcquire(3, { worker: 0 }))
        const stepper = Stepper.make()
        let ran = 0
        const waiter = yield* Effect.yieldNow.pipe(
          Effect.andThen(pool.withPermits(2, { worker: 1 })(Effect.sync(() => ran++))),
          Effect.provideService(Scheduler.Scheduler, stepper.scheduler),
          Effect.forkChild
        )
        yield* Effect.yieldNow
        for (let i = 0; i < steps; i++) stepper.step()
        yield* Effect.sync(() => {
          if (act !== "interrupt") Effect.runSync(pool.release(2, { worker: 0 }))
          if (act !== "release") waiter.interruptUnsafe()
        })
        while (waiter.pollUnsafe() === undefined) {
          if (!stepper.step()) yield* Effect.yieldNow
        }
        const exit = waiter.pollUnsafe() as Exit.Exit<unknown, unknown>
        yield* pool.release(act === "interrupt" ? 3 : 1, { worker: 0 })
        const { active, waiting } = yield* pool.stats
        const all = yield* pool.tryAcquire(3, { worker: "probe" })
        const more = yield* pool.tryAcquire(1, { worker: "more" })
        if (all) yield* pool.release(3, { worker: "probe" })
        const stats = yield* pool.stats
        yield* close
        const log = yield* events
        const life = log
          .filter((event) => RecordedPool.workerOf(event) === 1)
          .map((event) => event._tag)
          .join(", ")
        const led = `${life} -> ${Exit.isSuccess(exit) ? "ran" : Exit.hasInterrupts(exit) ? "interrupted" : "failed"}`
        if (seen.at(-1) !== led) seen.push(led)
        const at = `${act} after ${steps} steps`
        try {
          assert.strictEqual(ran, Exit.isSuccess(exit) ? 1 : 0, at)
          assert.deepStrictEqual({ active, waiting, all, more }, { active: 0, waiting: 0, all: true, more: false }, at)
          // Replayed: the figures follow from the events, and the permits add up.
          let taken = 0
          for (const event of log) {
            if (event._tag === "Acquired") taken += permitsOf(event)
            if (event._tag === "Released") taken -= permitsOf(event)
            assert.isAtMost(taken, 3, at)
            if (event._tag !== "Resized") assert.strictEqual(event.active, taken, at)
          }
          assert.strictEqual(taken, 0, at)
          const count = (tag: Event["_tag"]) => log.filter((event) => event._tag === tag).length
          assert.deepStrictEqual(
            [stats.acquired, stats.released, stats.queued, stats.abandoned],
            [count("Acquired"), count("Released"), count("Queued"), count("Abandoned")],
            at
          )
          if (life.includes("Acquired")) {
            assert.includeMembers(yield* lines, ["Worker 1: acquired 2 permits (3/3 active)"], at)
          }
        } catch (error) {
          broken.push(error instanceof Error ? error.message : String(error))
        }
      }
      assert.deepStrictEqual(broken, [], `${act}: no permit lost or doubled, a consistent log, at every step`)
      return seen
    })

  it.effect("a partial release at any step admits the waiter exactly once", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* sweep("release"), [
        "Acquired, Released -> ran",
        "Queued, Acquired, Released -> ran"
      ])
    })
  )

  it.effect("an interrupt at any step leaves no permit or queue entry behind", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* sweep("interrupt"), [" -> interrupted", "Queued, Abandoned -> interrupted"])
    })
  )

  it.effect("a partial release and an interrupt in the same step pass the permits on, or run the work first", () =>
    Effect.gen(function* () {
      // Interrupted before it entered; granted before it parked, then
      // interrupted before its work began; or, parked, resumed by the
      // release's own step into its (instant) work, which ran first.
      assert.deepStrictEqual(yield* sweep("both"), [
        " -> interrupted",
        "Queued, Acquired, Released -> interrupted",
        "Queued, Acquired, Released -> ran"
      ])
    })
  )
})
