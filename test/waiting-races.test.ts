// Waiters, hand-offs, interrupts, timeouts and resizes thrown together at
// random instants (many of them equal), under scheduler budgets down to 3
// operations per slice. Whatever the interleaving, the event log must obey the
// pool's rules, agree with the stats, and account for every permit.
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
  // withPermit, or acquire in a scope of its own.
  api: Schema.Literals(["with", "acquire"]),
  // Undefined: left alone; otherwise interrupted, or wrapped in Effect.timeout, at that instant.
  cut: Schema.UndefinedOr(Schema.Struct({ at: between(0, 30), by: Schema.Literals(["interrupt", "timeout"]) }))
})

type Outcome = CoroutinePool.PoolRejected["reason"] | "ran" | "interrupted"

// The lives a worker may lead, as the event log tells them.
const lives = [
  "",
  "Acquired, Released",
  "Rejected",
  "Queued, Acquired, Released",
  "Queued, TimedOut",
  "Queued, Abandoned"
]

describe("waiting, any interleaving", () => {
  it.effect.prop(
    "interrupts and timeouts racing hand-offs and resizes neither lose nor duplicate a permit",
    {
      max: between(1, 3),
      maxWaiting: between(0, 4),
      maxWait: Schema.UndefinedOr(between(0, 20)),
      workers: Schema.Array(Worker).check(Schema.isMinLength(1), Schema.isMaxLength(8)),
      resizes: Schema.Array(Schema.Struct({ at: between(0, 30), max: between(1, 3) })).check(Schema.isMaxLength(2)),
      budget: Schema.Literals([3, 4, 5, 7, 16, 2048])
    },
    ({ budget, max, maxWait, maxWaiting, resizes, workers }) =>
      Effect.gen(function* () {
        const { close, events, pool } = yield* RecordedPool.make(max, {
          maxWaiting,
          maxWait: maxWait === undefined ? undefined : `${maxWait} millis`
        })
        let running = 0
        const starts = workers.map(() => 0)
        const body = (worker: number, hold: number) =>
          Effect.gen(function* () {
            running++
            starts[worker] = (starts[worker] ?? 0) + 1
            const { active } = yield* pool.stats
            assert.isAtMost(running, active, "every running body holds a permit")
            yield* Effect.sleep(hold)
          }).pipe(Effect.ensuring(Effect.sync(() => running--)))

        const scenario = Effect.gen(function* () {
          const fibers = yield* Effect.forEach(workers, ({ api, cut, hold, start }, worker) => {
            const guarded =
              api === "with"
                ? pool.withPermit(body(worker, hold), { worker: worker })
                : Effect.scoped(Effect.andThen(pool.acquire(1, { worker: worker }), body(worker, hold)))
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
        const outcomes = exits.map((exit): Outcome => {
          if (Exit.isSuccess(exit)) return "ran"
          const error = Cause.findErrorOption(exit.cause)
          if (Option.isSome(error) && error.value._tag === "PoolRejected") return error.value.reason
          // Effect.timeout interrupted the call and failed with its own error.
          if (Option.isSome(error) && error.value._tag === "TimeoutError") return "interrupted"
          assert.isTrue(Exit.hasInterrupts(exit), `only PoolRejected or interruption, got ${Cause.pretty(exit.cause)}`)
          return "interrupted"
        })

        // No permit is lost: every one can be taken again, and nobody waits.
        const stats = yield* pool.stats
        assert.strictEqual(stats.active, 0)
        assert.strictEqual(stats.waiting, 0)
        for (let i = 0; i < stats.max; i++) assert.isTrue(yield* pool.tryAcquire(1, { worker: `probe ${i}` }))
        assert.isFalse(yield* pool.tryAcquire(1, { worker: "one too many" }))
        yield* close
        const log = yield* events
        const isProbe = (event: CoroutinePool.PoolEvent) => typeof RecordedPool.workerOf(event) === "string"
        const probeFree = log.filter((event) => !isProbe(event))

        // Replays the log against a model of the pool.
        let active = 0
        let current = max
        const queue: Array<CoroutinePool.WorkerId> = []
        let handOffDue = false
        for (const [index, event] of probeFree.entries()) {
          const at = `event ${index}: ${JSON.stringify(event)}`
          if (handOffDue) {
            assert.strictEqual(event._tag, "Acquired", `a freed permit goes to the head waiter at once, ${at}`)
          }
          switch (event._tag) {
            case "Resized":
              assert.strictEqual(event.from, current, at)
              current = event.max
              break
            case "Acquired": {
              if (handOffDue || (queue.length > 0 && queue[0] === event.worker)) {
                assert.strictEqual(queue.shift(), event.worker, `strict FIFO, ${at}`)
              }
              active++
              assert.isAtMost(active, current, `admitted only below max, ${at}`)
              break
            }
            case "Released":
              active--
              break
            case "Queued":
              assert.isAtLeast(active, current, `queued only when full, ${at}`)
              queue.push(event.worker)
              assert.isAtMost(queue.length, maxWaiting, at)
              break
            case "Rejected":
              assert.isAtLeast(active, current, `rejected only when full, ${at}`)
              assert.isTrue(queue.length >= maxWaiting, `rejected only when the queue is full, ${at}`)
              break
            case "TimedOut":
            case "Abandoned": {
              const position = queue.indexOf(event.worker)
              assert.isAtLeast(position, 0, at)
              queue.splice(position, 1)
            }
          }
          assert.deepStrictEqual([event.active, event.max, event.waiting], [active, current, queue.length], at)
          handOffDue = queue.length > 0 && active < current
        }
        assert.strictEqual(active, 0)
        assert.deepStrictEqual(queue, [])

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
          // An interrupt may land after any decision (even a rejection at the
          // same instant), so an interrupted worker may have led any life.
        })
        assert.notInclude(outcomes, "closed")

        // The stats count exactly the events.
        const count = (tag: CoroutinePool.PoolEvent["_tag"]) => log.filter((event) => event._tag === tag).length
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

describe("a waiter stepped one task at a time", () => {
  // The waiter runs on a hand-driven scheduler; after `steps` of its tasks the
  // holder releases, or the waiter is interrupted, or both in one synchronous
  // step. The sweep crosses every point of the waiter's path: before it
  // queues, between queueing and parking (granted before it parks), parked.
  // It answers what each step led to, in step order, each once: the
  // waiter's life in the log and how its call ended ("ran" or "interrupted").
  const sweep = (act: "release" | "interrupt" | "both") =>
    Effect.gen(function* () {
      const lives: Array<string> = []
      for (let steps = 0; steps < 16; steps++) {
        const { close, events, pool } = yield* RecordedPool.make(1, { maxWaiting: 1 })
        yield* pool.tryAcquire(1, { worker: 0 })
        const stepper = Stepper.make()
        let ran = 0
        const waiter = yield* Effect.yieldNow.pipe(
          Effect.andThen(
            pool.withPermit(
              Effect.sync(() => ran++),
              { worker: 1 }
            )
          ),
          Effect.provideService(Scheduler.Scheduler, stepper.scheduler),
          Effect.forkChild
        )
        yield* Effect.yieldNow
        for (let i = 0; i < steps; i++) stepper.step()
        yield* Effect.sync(() => {
          if (act !== "interrupt") Effect.runSync(pool.release(1, { worker: 0 }))
          if (act !== "release") waiter.interruptUnsafe()
        })
        while (waiter.pollUnsafe() === undefined) {
          if (!stepper.step()) yield* Effect.yieldNow
        }
        const exit = waiter.pollUnsafe() as Exit.Exit<unknown, unknown>
        assert.isTrue(Exit.isSuccess(exit) || Exit.hasInterrupts(exit), `after ${steps} steps`)
        assert.strictEqual(ran, Exit.isSuccess(exit) ? 1 : 0, `after ${steps} steps`)
        if (act === "interrupt") yield* pool.release(1, { worker: 0 })
        assert.strictEqual(yield* pool.active, 0, `after ${steps} steps`)
        assert.strictEqual((yield* pool.stats).waiting, 0, `after ${steps} steps`)
        yield* close
        const life = (yield* events)
          .filter((event) => RecordedPool.workerOf(event) === 1)
          .map((event) => event._tag)
          .join(", ")
        const led = `${life} -> ${Exit.isSuccess(exit) ? "ran" : "interrupted"}`
        if (lives.at(-1) !== led) lives.push(led)
      }
      return lives
    })

  it.effect("a release at any step admits the waiter exactly once", () =>
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

  it.effect("a release and an interrupt in the same step pass the permit on", () =>
    Effect.gen(function* () {
      // Interrupted before it entered; granted before it parked, then
      // interrupted before its work began (the permit is passed on); or,
      // parked, resumed by the release's own step straight into its work,
      // which ran (it is instant) before the interrupt landed (0.4: no
      // interruption mask, and no trip through the scheduler).
      assert.deepStrictEqual(yield* sweep("both"), [
        " -> interrupted",
        "Queued, Acquired, Released -> interrupted",
        "Queued, Acquired, Released -> ran"
      ])
    })
  )
})
