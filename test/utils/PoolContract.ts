// The contract every pool keeps, whatever its source of permits: one suite of
// tests registered for a pool maker (a `Subject`). test/contract.test.ts runs
// it against the in-process pool, a shared pool on the memory store and a
// shared pool on a real Redis.
//
// Every test asserts the exact event lines (`format`), the stats, and that
// the stats count exactly the events of the recorded stream. Where a shared
// pool differs from an in-process one by design, the subject says so in a
// parameter (`shared`, `handOff`, `answers`, `figures`) and the test expects
// that pool's own exact behaviour; nothing is loosened for everyone.

import { assert, describe } from "@effect/vitest"
import { Cause, Deferred, type Duration, Effect, Exit, Fiber, Metric, Option, Scheduler, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { CoroutinePool, PoolStore, type SharedPool } from "../../src/index.ts"
import * as Stepper from "./Stepper.ts"

/** Any pool, in-process or shared, as the suite drives it. */
export type Pool = CoroutinePool.CoroutinePool<unknown, SharedPool.PoolEvent>

export type Event = SharedPool.PoolEvent

/** What the suite makes a pool with: `key` names it in a store (distinct per test), `name` its metrics. */
export interface MakeOptions {
  readonly key: string
  readonly name: string
  readonly max: number
  readonly maxWaiting: number
  readonly maxWait?: Duration.Input | undefined
}

/** A pool maker and what it differs in, by design. */
export interface Subject<R> {
  readonly name: string
  /** Makes a pool in the current scope. */
  readonly make: (options: MakeOptions) => Effect.Effect<Pool, unknown, Scope.Scope | R>
  /** An event as one line. */
  readonly format: (event: Event) => string
  /** Registers one test, giving `body` whatever `make` needs. */
  readonly test: (title: string, body: () => Effect.Effect<void, unknown, Scope.Scope | R>) => void
  /** `test`: the TestClock drives time (the suite moves it by hand); `live`: real time. */
  readonly clock: "test" | "live"
  /** The parts of the contract to run. */
  readonly parts: ReadonlyArray<Part>
  /** A shared pool: its stats add `lost`, and `resize` to another max fails with `PoolConfigMismatch`. */
  readonly shared: boolean
  /**
   * How a freed permit reaches the head of the queue: `grant`, handed over
   * in the release's own step (a local count); `ask`, the head is woken to
   * ask its source (leases: only the head asks the store).
   */
  readonly handOff: "grant" | "ask"
  /**
   * When a source answers an ask: `at-once`, within the caller's step (a
   * local count, the memory store); `later`, after a round trip (Redis), so
   * callers arriving meanwhile are decided before the grant is published.
   */
  readonly answers: "at-once" | "later"
  /**
   * The `active` figure of events and rejections: `own`, this pool's count
   * (for one pool on a key the store's count of holders is its own);
   * `last-reported`, the holders as the store last reported them (what the
   * README promises), which a store answering later has not updated yet
   * when a release is published: the figure is then only checked to lie
   * within 0..max, every other field exactly. The `figures` part checks it
   * exactly for every pool.
   */
  readonly figures: "own" | "last-reported"
}

// ---------------------------------------------------------------------------
// the parts, and the pool each one makes
// ---------------------------------------------------------------------------

const settings = {
  admission: { max: 2, maxWaiting: 0 },
  "by-hand": { max: 2, maxWaiting: 0 },
  fifo: { max: 1, maxWaiting: 3 },
  timeout: { max: 1, maxWaiting: 2, maxWait: "50 millis" },
  leaving: { max: 1, maxWaiting: 3 },
  "no-barging": { max: 1, maxWaiting: 1 },
  reasons: { max: 1, maxWaiting: 1, maxWait: "20 millis" },
  closing: { max: 3, maxWaiting: 2 },
  "after-close": { max: 2, maxWaiting: 1 },
  figures: { max: 1, maxWaiting: 0 },
  "stepping-withPermit": { max: 1, maxWaiting: 0 },
  "stepping-waiting": { max: 1, maxWaiting: 1 }
} as const satisfies Record<string, Omit<MakeOptions, "key" | "name">>

export type Part = keyof typeof settings

export const parts: ReadonlyArray<Part> = Object.keys(settings) as Array<Part>

/** The parts that move time by hand (TestClock) or step a scheduler by hand. */
export const handDriven: ReadonlyArray<Part> = ["timeout", "reasons", "stepping-withPermit", "stepping-waiting"]

/** The key a part's pool uses in a store, and its max: what a store must know (and warm up) beforehand. */
export const keys = (of: ReadonlyArray<Part>): ReadonlyArray<{ readonly key: string; readonly max: number }> =>
  of.map((part) => ({ key: `contract-${part}`, max: settings[part].max }))

const optionsOf = (part: Part, suffix = ""): MakeOptions => ({
  key: `contract-${part}${suffix}`,
  name: `contract-${part}`,
  ...settings[part]
})

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

const fork = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.forkChild(effect, { startImmediately: true })

const workerOf = (event: Event): CoroutinePool.WorkerId | undefined => ("worker" in event ? event.worker : undefined)

// A pool in a scope of its own, with every event it publishes recorded from
// the start; `events` completes once `close` has ended the stream.
const recorded = <R>(subject: Subject<R>, part: Part, suffix = "") =>
  Effect.gen(function* () {
    const options = optionsOf(part, suffix)
    const scope = yield* Scope.make()
    const pool = yield* Scope.provide(subject.make(options), scope)
    const recorder = yield* fork(Stream.runCollect(yield* pool.subscribe))
    const events = Fiber.join(recorder)
    return { pool, options, close: Scope.close(scope, Exit.void), events }
  })

// Fails the test, rather than hanging it, when `effect` does not end in
// time: on the TestClock without any time passing, on the real clock within
// seconds.
const within =
  <R>(subject: Subject<R>, what: string) =>
  <A, E, R2>(effect: Effect.Effect<A, E, R2>): Effect.Effect<A, E, R2> =>
    Effect.raceFirst(
      effect,
      Effect.andThen(
        subject.clock === "live"
          ? Effect.sleep("3 seconds")
          : Effect.forEach(Array.from({ length: 1000 }), () => Effect.yieldNow, { discard: true }),
        Effect.die(new Error(`${what}: still running`))
      )
    )

// A caller holding a permit until `finish`: it has started its work when
// this returns; `finish` ends the work and waits for the caller to return.
const holding = <R>(
  subject: Subject<R>,
  pool: Pool,
  worker: CoroutinePool.WorkerId,
  onInterrupt: (worker: CoroutinePool.WorkerId) => void = () => {}
) =>
  Effect.gen(function* () {
    const started = yield* Deferred.make<void>()
    const done = yield* Deferred.make<void>()
    const fiber = yield* fork(
      pool
        .withPermit(Effect.andThen(Deferred.succeed(started, undefined), Deferred.await(done)), { worker: worker })
        .pipe(Effect.onInterrupt(() => Effect.sync(() => onInterrupt(worker))))
    )
    yield* within(
      subject,
      `worker ${worker} starting its work`
    )(
      Effect.raceFirst(
        Deferred.await(started),
        Effect.flatMap(Fiber.await(fiber), (exit) =>
          Effect.die(new Error(`worker ${worker} ended before its work started: ${show(exit)}`))
        )
      )
    )
    return {
      fiber,
      finish: Effect.andThen(Deferred.succeed(done, undefined), within(subject, `worker ${worker}`)(Fiber.join(fiber)))
    }
  })

const show = (exit: Exit.Exit<unknown, unknown>): string =>
  Exit.isSuccess(exit) ? "success" : Cause.pretty(exit.cause)

// How a call ended, in one word: ok, interrupted, a rejection's reason, or an error's tag.
const outcome = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "ok"
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isSome(error)) {
    const failure = error.value as { readonly _tag?: string; readonly reason?: string }
    return failure._tag === "PoolRejected" ? `${failure.reason}` : `${failure._tag}`
  }
  return Exit.hasInterrupts(exit) ? "interrupted" : Cause.pretty(exit.cause)
}

const figure = /\((\d+)\/(\d+) active/

// The event lines, exactly; with `last-reported` figures, `active` only
// within 0..max (and every other field exact).
const assertLines = <R>(subject: Subject<R>, events: ReadonlyArray<Event>, expected: ReadonlyArray<string>) => {
  const lines = events.map(subject.format)
  if (subject.figures === "own") {
    assert.deepStrictEqual(lines, expected)
    return
  }
  for (const event of events) {
    assert.isAtLeast(event.active, 0, JSON.stringify(event))
    assert.isAtMost(event.active, event.max, JSON.stringify(event))
  }
  const mask = (line: string) => line.replace(figure, "(?/$2 active")
  assert.deepStrictEqual(lines.map(mask), expected.map(mask), "the active figure is the store's last report")
}

// A rejection with its reason and figures (`active` as `assertLines` judges it).
const assertRejected = <R>(
  subject: Subject<R>,
  error: unknown,
  expected: {
    readonly worker: CoroutinePool.WorkerId
    readonly reason: CoroutinePool.PoolRejected["reason"]
    readonly active: number
    readonly max: number
  }
) => {
  assert.instanceOf(error, CoroutinePool.PoolRejected, String(error))
  const rejected = error as CoroutinePool.PoolRejected
  const active =
    subject.figures === "own" || rejected.active < 0 || rejected.active > rejected.max
      ? rejected.active
      : expected.active
  assert.deepStrictEqual(
    { worker: rejected.worker, reason: rejected.reason, active, max: rejected.max, retryAfter: rejected.retryAfter },
    { ...expected, retryAfter: undefined }
  )
}

type Totals = Omit<CoroutinePool.PoolStats, "active" | "waiting" | "max" | "maxWaiting" | "dropped">

// The pool's whole stats: a shared pool's add `lost`.
const statsOf = <R>(subject: Subject<R>, stats: CoroutinePool.PoolStats) =>
  subject.shared ? { ...stats, lost: 0 } : stats

const zero: Totals = { acquired: 0, rejected: 0, released: 0, queued: 0, timedOut: 0, abandoned: 0 }

// The stats count exactly the events of each kind in the recorded stream.
const assertTotals = <R>(subject: Subject<R>, stats: CoroutinePool.PoolStats, events: ReadonlyArray<Event>) => {
  const count = (tag: Event["_tag"]) => events.filter((event) => event._tag === tag).length
  const totals = {
    acquired: stats.acquired,
    rejected: stats.rejected,
    released: stats.released,
    queued: stats.queued,
    timedOut: stats.timedOut,
    abandoned: stats.abandoned,
    ...(subject.shared ? { lost: (stats as SharedPool.Stats).lost } : {})
  }
  assert.deepStrictEqual(
    totals,
    {
      acquired: count("Acquired"),
      rejected: count("Rejected"),
      released: count("Released"),
      queued: count("Queued"),
      timedOut: count("TimedOut"),
      abandoned: count("Abandoned"),
      ...(subject.shared ? { lost: count("Lost") } : {})
    },
    "the stats count exactly the events"
  )
}

// How many permits can be taken by hand now (at most one beyond `max`, to
// see a doubled one); gives them back after.
const freePermits = (pool: Pool, max: number) =>
  Effect.gen(function* () {
    let free = 0
    while (free <= max && (yield* pool.tryAcquire(1, { worker: `probe ${free}` }))) free++
    for (let i = 0; i < free; i++) yield* pool.release(1, { worker: `probe ${i}` })
    return free
  })

// Every permit can be taken, and not one more: none is lost, none doubled.
const assertAllFree = (pool: Pool, max: number, at: string) =>
  Effect.map(freePermits(pool, max), (free) => assert.strictEqual(free, max, `free permits ${at}`))

// Replays a log against a model of one pool: figures (`active` judged as in
// `assertLines`), FIFO hand-offs, every permit back at the end.
const assertConsistent = <R>(subject: Subject<R>, events: ReadonlyArray<Event>, max: number, at: string) => {
  let active = 0
  const queue: Array<CoroutinePool.WorkerId> = []
  for (const [index, event] of events.entries()) {
    const where = `${at}, event ${index}: ${subject.format(event)}`
    const worker = workerOf(event) as CoroutinePool.WorkerId
    switch (event._tag) {
      case "Acquired":
        if (queue[0] === worker) queue.shift()
        else assert.notInclude(queue, worker, `a queued caller is admitted only at the head, ${where}`)
        active++
        break
      case "Released":
        active--
        break
      case "Queued":
        queue.push(worker)
        break
      case "TimedOut":
      case "Abandoned":
        assert.include(queue, worker, where)
        queue.splice(queue.indexOf(worker), 1)
        break
      default:
        break
    }
    assert.isAtLeast(active, 0, where)
    assert.isAtMost(active, max, where)
    assert.strictEqual(event.max, max, where)
    assert.strictEqual(event.waiting, queue.length, where)
    if (subject.figures === "own") assert.strictEqual(event.active, active, where)
  }
  assert.strictEqual(active, 0, `${at}: every permit is back`)
  assert.deepStrictEqual(queue, [], `${at}: nobody is left queued`)
}

const lifeOf = (events: ReadonlyArray<Event>, worker: CoroutinePool.WorkerId) =>
  events
    .filter((event) => workerOf(event) === worker)
    .map((event) => event._tag)
    .join(", ")

// Runs the checks of one step of a sweep, noting what fails instead of
// stopping there, so that a failure lists every step that breaks.
const checkStep = (broken: Array<string>, at: string, checks: () => void) => {
  try {
    checks()
  } catch (error) {
    broken.push(`${at}: ${error instanceof Error ? error.message : String(error)}`)
  }
}

// Runs `steps` tasks of `stepper`; true when it ran out of tasks first.
const stepThrough = (stepper: Stepper.Stepper, steps: number): boolean => {
  for (let i = 0; i < steps; i++) if (!stepper.step()) return true
  return false
}

// Drives `fiber` (on `stepper`) to its end.
const drive = (stepper: Stepper.Stepper, fiber: Fiber.Fiber<unknown, unknown>) =>
  Effect.gen(function* () {
    for (let turns = 0; fiber.pollUnsafe() === undefined; turns++) {
      assert.isBelow(turns, 10_000, "the stepped fiber ends")
      if (!stepper.step()) yield* Effect.yieldNow
    }
    return fiber.pollUnsafe() as Exit.Exit<unknown, unknown>
  })

// ---------------------------------------------------------------------------
// the contract
// ---------------------------------------------------------------------------

const titles: Record<Part, string> = {
  admission:
    "admits up to max, then rejects withPermit, tryAcquire and acquire with reason full and the figures; withPermitIfAvailable answers None, counted, and Some when admitted",
  "by-hand":
    "tryAcquire takes a permit per call; release gives back the oldest, PermitNotHeld changes nothing, and release never returns a permit withPermit holds",
  fifo: "withPermit queues in strict FIFO order up to maxWaiting, then rejects with queue-full",
  timeout: "a queued caller gives up exactly at maxWait (TestClock), not one milli earlier, and leaves the queue",
  leaving: "a queued caller interrupted in the middle of the queue leaves it; the order of the rest holds",
  "no-barging":
    "no barging: while someone waits, tryAcquire is false and withPermitIfAvailable is None, even at the instant a permit is released",
  reasons:
    "every rejection reason is counted: full (withPermitIfAvailable, tryAcquire), queue-full, timeout in stats and metrics, closed never as Rejected; stats equal the events",
  closing:
    "closing turns the queue away (closed, Abandoned), interrupts withPermit holders, gives back tryAcquire and acquire permits, every Released before the stream ends",
  "after-close":
    "after close: release is PermitNotHeld, tryAcquire false, withPermitIfAvailable None, withPermit/acquire fail closed, none counted, resize changes nothing",
  figures: "every event and rejection shows the figures right after its transition: for a lone pool, its own count",
  "stepping-withPermit":
    "a withPermit caller interrupted after every possible number of scheduler steps loses or doubles no permit",
  "stepping-waiting":
    "a queued withPermit caller interrupted after every possible number of steps, with or without a release in that step, loses or doubles no permit"
}

const contract = <R>(subject: Subject<R>): Record<Part, Effect.Effect<void, unknown, Scope.Scope | R>> => ({
  admission: Effect.gen(function* () {
    const { close, events, pool } = yield* recorded(subject, "admission")
    const a = yield* holding(subject, pool, "a")
    const b = yield* holding(subject, pool, "b")
    assertRejected(subject, yield* Effect.flip(pool.withPermit(Effect.void, { worker: "c" })), {
      worker: "c",
      reason: "full",
      active: 2,
      max: 2
    })
    assert.isFalse(yield* pool.tryAcquire(1, { worker: "d" }))
    assertRejected(subject, yield* Effect.flip(Effect.scoped(pool.acquire(1, { worker: "e" }))), {
      worker: "e",
      reason: "full",
      active: 2,
      max: 2
    })
    // The call that never fails with a rejection: None, the work not run, the rejection still counted.
    let ran = false
    const skipped = yield* pool.withPermitIfAvailable(
      Effect.sync(() => {
        ran = true
      }),
      { worker: "f" }
    )
    assert.deepStrictEqual([skipped, ran], [Option.none(), false])
    assert.deepStrictEqual(
      yield* pool.stats,
      statsOf(subject, { active: 2, waiting: 0, max: 2, maxWaiting: 0, ...zero, acquired: 2, rejected: 4, dropped: 0 })
    )
    yield* a.finish
    assert.strictEqual(yield* pool.withPermit(Effect.succeed("ran"), { worker: "c" }), "ran")
    yield* b.finish
    assert.deepStrictEqual(
      yield* pool.withPermitIfAvailable(Effect.succeed("some"), { worker: "g" }),
      Option.some("some")
    )
    const stats = yield* pool.stats
    assert.deepStrictEqual(
      stats,
      statsOf(subject, {
        active: 0,
        waiting: 0,
        max: 2,
        maxWaiting: 0,
        ...zero,
        acquired: 4,
        rejected: 4,
        released: 4,
        dropped: 0
      })
    )
    yield* close
    const log = yield* events
    assertLines(subject, log, [
      "Worker a: acquired (1/2 active)",
      "Worker b: acquired (2/2 active)",
      "Worker c: rejected (2/2 active)",
      "Worker d: rejected (2/2 active)",
      "Worker e: rejected (2/2 active)",
      "Worker f: rejected (2/2 active)",
      "Worker a: released (1/2 active)",
      "Worker c: acquired (2/2 active)",
      "Worker c: released (1/2 active)",
      "Worker b: released (0/2 active)",
      "Worker g: acquired (1/2 active)",
      "Worker g: released (0/2 active)"
    ])
    assertTotals(subject, stats, log)
  }),

  "by-hand": Effect.gen(function* () {
    const { close, events, pool } = yield* recorded(subject, "by-hand")
    assert.isTrue(yield* pool.tryAcquire(1, { worker: "a" }))
    assert.isTrue(yield* pool.tryAcquire(1, { worker: "a" }), "a second permit for the same worker")
    assert.isFalse(yield* pool.tryAcquire(1, { worker: "b" }))
    const full = yield* pool.stats
    assert.deepStrictEqual(
      yield* Effect.flip(pool.release(1, { worker: "b" })),
      new CoroutinePool.PermitNotHeld({ worker: "b" })
    )
    assert.deepStrictEqual(yield* pool.stats, full, "PermitNotHeld changes nothing")
    yield* pool.release(1, { worker: "a" })
    const h = yield* holding(subject, pool, "h")
    const held = yield* pool.stats
    assert.deepStrictEqual(
      yield* Effect.flip(pool.release(1, { worker: "h" })),
      new CoroutinePool.PermitNotHeld({ worker: "h" })
    )
    assert.deepStrictEqual(yield* pool.stats, held, "release cannot return a permit withPermit holds")
    assert.isUndefined(h.fiber.pollUnsafe(), "the holder works on")
    yield* pool.release(1, { worker: "a" })
    assert.deepStrictEqual(
      yield* Effect.flip(pool.release(1, { worker: "a" })),
      new CoroutinePool.PermitNotHeld({ worker: "a" })
    )
    yield* h.finish
    const stats = yield* pool.stats
    assert.deepStrictEqual(
      stats,
      statsOf(subject, {
        active: 0,
        waiting: 0,
        max: 2,
        maxWaiting: 0,
        ...zero,
        acquired: 3,
        rejected: 1,
        released: 3,
        dropped: 0
      })
    )
    yield* close
    const log = yield* events
    assertLines(subject, log, [
      "Worker a: acquired (1/2 active)",
      "Worker a: acquired (2/2 active)",
      "Worker b: rejected (2/2 active)",
      "Worker a: released (1/2 active)",
      "Worker h: acquired (2/2 active)",
      "Worker a: released (1/2 active)",
      "Worker h: released (0/2 active)"
    ])
    assertTotals(subject, stats, log)
  }),

  fifo: Effect.gen(function* () {
    const { close, events, pool } = yield* recorded(subject, "fifo")
    assert.isTrue(yield* pool.tryAcquire(1, { worker: 0 }))
    const order: Array<number> = []
    const waiters = yield* Effect.forEach([1, 2, 3], (worker) =>
      fork(
        pool.withPermit(
          Effect.sync(() => order.push(worker)),
          { worker: worker }
        )
      )
    )
    assertRejected(subject, yield* Effect.flip(pool.withPermit(Effect.void, { worker: 4 })), {
      worker: 4,
      reason: "queue-full",
      active: 1,
      max: 1
    })
    assertRejected(subject, yield* Effect.flip(Effect.scoped(pool.acquire(1, { worker: 5 }))), {
      worker: 5,
      reason: "queue-full",
      active: 1,
      max: 1
    })
    assert.deepStrictEqual(
      yield* pool.stats,
      statsOf(subject, {
        active: 1,
        waiting: 3,
        max: 1,
        maxWaiting: 3,
        ...zero,
        acquired: 1,
        rejected: 2,
        queued: 3,
        dropped: 0
      })
    )
    yield* pool.release(1, { worker: 0 })
    const exits = yield* within(subject, "the waiters")(Effect.forEach(waiters, Fiber.await))
    const stats = yield* pool.stats
    yield* close
    const log = yield* events
    assertLines(subject, log, [
      "Worker 0: acquired (1/1 active)",
      "Worker 1: queued (1/1 active, 1 waiting)",
      "Worker 2: queued (1/1 active, 2 waiting)",
      "Worker 3: queued (1/1 active, 3 waiting)",
      "Worker 4: rejected (1/1 active, 3 waiting)",
      "Worker 5: rejected (1/1 active, 3 waiting)",
      "Worker 0: released (0/1 active, 3 waiting)",
      "Worker 1: acquired (1/1 active, 2 waiting)",
      "Worker 1: released (0/1 active, 2 waiting)",
      "Worker 2: acquired (1/1 active, 1 waiting)",
      "Worker 2: released (0/1 active, 1 waiting)",
      "Worker 3: acquired (1/1 active)",
      "Worker 3: released (0/1 active)"
    ])
    assert.deepStrictEqual(exits.map(outcome), ["ok", "ok", "ok"])
    assert.deepStrictEqual(order, [1, 2, 3])
    assert.deepStrictEqual(
      stats,
      statsOf(subject, {
        active: 0,
        waiting: 0,
        max: 1,
        maxWaiting: 3,
        acquired: 4,
        rejected: 2,
        released: 4,
        queued: 3,
        timedOut: 0,
        abandoned: 0,
        dropped: 0
      })
    )
    assertTotals(subject, stats, log)
  }),

  timeout: Effect.gen(function* () {
    const { close, events, pool } = yield* recorded(subject, "timeout")
    assert.isTrue(yield* pool.tryAcquire(1, { worker: 0 }))
    const first = yield* fork(pool.withPermit(Effect.void, { worker: 1 }))
    yield* TestClock.adjust("10 millis")
    const second = yield* fork(pool.withPermit(Effect.void, { worker: 2 }))
    yield* TestClock.adjust("39 millis")
    assert.isUndefined(first.pollUnsafe(), "1 still waits at 49 ms")
    yield* TestClock.adjust("1 millis")
    assert.isDefined(first.pollUnsafe(), "1 gave up at 50 ms")
    assertRejected(subject, yield* Effect.flip(Fiber.join(first)), { worker: 1, reason: "timeout", active: 1, max: 1 })
    yield* TestClock.adjust("9 millis")
    assert.isUndefined(second.pollUnsafe(), "2, queued at 10 ms, still waits at 59 ms")
    yield* TestClock.adjust("1 millis")
    assert.isDefined(second.pollUnsafe(), "2 gave up at 60 ms")
    assertRejected(subject, yield* Effect.flip(Fiber.join(second)), { worker: 2, reason: "timeout", active: 1, max: 1 })
    assert.deepStrictEqual(
      yield* pool.stats,
      statsOf(subject, {
        active: 1,
        waiting: 0,
        max: 1,
        maxWaiting: 2,
        ...zero,
        acquired: 1,
        queued: 2,
        timedOut: 2,
        dropped: 0
      })
    )
    // The queue is empty again: the next caller queues first and is served by the next release.
    const third = yield* fork(pool.withPermit(Effect.void, { worker: 3 }))
    yield* TestClock.adjust("10 millis")
    yield* pool.release(1, { worker: 0 })
    assert.strictEqual(outcome(yield* within(subject, "worker 3")(Fiber.await(third))), "ok")
    const stats = yield* pool.stats
    yield* close
    const log = yield* events
    assertLines(subject, log, [
      "Worker 0: acquired (1/1 active)",
      "Worker 1: queued (1/1 active, 1 waiting)",
      "Worker 2: queued (1/1 active, 2 waiting)",
      "Worker 1: timed out (1/1 active, 1 waiting)",
      "Worker 2: timed out (1/1 active)",
      "Worker 3: queued (1/1 active, 1 waiting)",
      "Worker 0: released (0/1 active, 1 waiting)",
      "Worker 3: acquired (1/1 active)",
      "Worker 3: released (0/1 active)"
    ])
    assertTotals(subject, stats, log)
  }),

  leaving: Effect.gen(function* () {
    const { close, events, pool } = yield* recorded(subject, "leaving")
    assert.isTrue(yield* pool.tryAcquire(1, { worker: 0 }))
    const order: Array<number> = []
    const [first, middle, last] = yield* Effect.forEach([1, 2, 3], (worker) =>
      fork(
        pool.withPermit(
          Effect.sync(() => order.push(worker)),
          { worker: worker }
        )
      )
    )
    yield* Fiber.interrupt(middle as Fiber.Fiber<unknown, unknown>)
    assert.strictEqual(outcome(yield* Fiber.await(middle as Fiber.Fiber<unknown, unknown>)), "interrupted")
    const { abandoned, waiting } = yield* pool.stats
    assert.deepStrictEqual({ abandoned, waiting }, { abandoned: 1, waiting: 2 })
    yield* pool.release(1, { worker: 0 })
    const exits = yield* within(
      subject,
      "the waiters"
    )(Effect.forEach([first, last], (fiber) => Fiber.await(fiber as Fiber.Fiber<unknown, unknown>)))
    const stats = yield* pool.stats
    yield* close
    const log = yield* events
    assertLines(subject, log, [
      "Worker 0: acquired (1/1 active)",
      "Worker 1: queued (1/1 active, 1 waiting)",
      "Worker 2: queued (1/1 active, 2 waiting)",
      "Worker 3: queued (1/1 active, 3 waiting)",
      "Worker 2: abandoned (1/1 active, 2 waiting)",
      "Worker 0: released (0/1 active, 2 waiting)",
      "Worker 1: acquired (1/1 active, 1 waiting)",
      "Worker 1: released (0/1 active, 1 waiting)",
      "Worker 3: acquired (1/1 active)",
      "Worker 3: released (0/1 active)"
    ])
    assert.deepStrictEqual(exits.map(outcome), ["ok", "ok"])
    assert.deepStrictEqual(order, [1, 3])
    assertTotals(subject, stats, log)
  }),

  "no-barging": Effect.gen(function* () {
    const { close, events, pool } = yield* recorded(subject, "no-barging")
    assert.isTrue(yield* pool.tryAcquire(1, { worker: 0 }))
    const started = yield* Deferred.make<void>()
    const done = yield* Deferred.make<void>()
    const waiter = yield* fork(
      pool.withPermit(Effect.andThen(Deferred.succeed(started, undefined), Deferred.await(done)), { worker: 1 })
    )
    // The calls that may not wait (0.4: withPermit waits as the pool allows;
    // withPermitIfAvailable and tryAcquire never do) are turned away while someone waits.
    assert.isFalse(yield* pool.tryAcquire(1, { worker: 2 }))
    assert.deepStrictEqual(yield* pool.withPermitIfAvailable(Effect.void, { worker: 3 }), Option.none())
    // The permit comes back, and in the same step two newcomers try to take it.
    const [barged, skipped] = yield* Effect.gen(function* () {
      yield* fork(pool.release(1, { worker: 0 }))
      return [
        yield* pool.tryAcquire(1, { worker: 4 }),
        yield* pool.withPermitIfAvailable(Effect.void, { worker: 5 })
      ] as const
    }).pipe(Effect.provideService(Scheduler.PreventSchedulerYield, true))
    assert.isFalse(barged)
    assert.deepStrictEqual(skipped, Option.none())
    // A source that answers later has not granted the head yet: nobody holds the permit.
    const active = subject.answers === "at-once" ? 1 : 0
    yield* within(subject, "the waiter")(Deferred.await(started))
    yield* Deferred.succeed(done, undefined)
    assert.strictEqual(outcome(yield* within(subject, "the waiter")(Fiber.await(waiter))), "ok")
    const stats = yield* pool.stats
    yield* close
    const log = yield* events
    const head = ["Worker 1: acquired (1/1 active)"]
    const newcomers = [
      `Worker 4: rejected (${active}/1 active${active === 0 ? ", 1 waiting" : ""})`,
      `Worker 5: rejected (${active}/1 active${active === 0 ? ", 1 waiting" : ""})`
    ]
    assertLines(subject, log, [
      "Worker 0: acquired (1/1 active)",
      "Worker 1: queued (1/1 active, 1 waiting)",
      "Worker 2: rejected (1/1 active, 1 waiting)",
      "Worker 3: rejected (1/1 active, 1 waiting)",
      "Worker 0: released (0/1 active, 1 waiting)",
      ...(subject.answers === "at-once" ? [...head, ...newcomers] : [...newcomers, ...head]),
      "Worker 1: released (0/1 active)"
    ])
    assert.deepStrictEqual(
      stats,
      statsOf(subject, {
        active: 0,
        waiting: 0,
        max: 1,
        maxWaiting: 1,
        acquired: 2,
        rejected: 4,
        released: 2,
        queued: 1,
        timedOut: 0,
        abandoned: 0,
        dropped: 0
      })
    )
    assertTotals(subject, stats, log)
  }),

  reasons: Effect.gen(function* () {
    const { close, events, options, pool } = yield* recorded(subject, "reasons")
    const holder = yield* holding(subject, pool, "holder")
    // On a pool that lets callers wait, "full" is the answer of the calls that may not.
    assert.deepStrictEqual(yield* pool.withPermitIfAvailable(Effect.void, { worker: "full" }), Option.none())
    assert.isFalse(yield* pool.tryAcquire(1, { worker: "try" }))
    const timingOut = yield* fork(Effect.flip(pool.withPermit(Effect.void, { worker: "timeout" })))
    const queueFull = yield* Effect.flip(pool.withPermit(Effect.void, { worker: "queue-full" }))
    yield* TestClock.adjust("20 millis")
    const timeout = yield* within(subject, "the timeout")(Fiber.join(timingOut))
    const parked = yield* fork(pool.withPermit(Effect.void, { worker: "closed" }))
    assertRejected(subject, queueFull, { worker: "queue-full", reason: "queue-full", active: 1, max: 1 })
    assertRejected(subject, timeout, { worker: "timeout", reason: "timeout", active: 1, max: 1 })
    // Read before closing: closing removes the pool's series.
    const rejections = Effect.forEach(["full", "queue-full", "timeout", "closed"], (reason) =>
      Effect.map(
        Metric.value(Metric.withAttributes(CoroutinePool.metrics.rejected, { pool: options.name, reason })),
        (state) => [reason, state.count] as const
      )
    )
    assert.deepStrictEqual(Object.fromEntries(yield* rejections), {
      full: 2,
      "queue-full": 1,
      timeout: 1,
      closed: 0
    })
    const open = yield* pool.stats
    assert.deepStrictEqual(
      open,
      statsOf(subject, {
        active: 1,
        waiting: 1,
        max: 1,
        maxWaiting: 1,
        acquired: 1,
        rejected: 3,
        released: 0,
        queued: 2,
        timedOut: 1,
        abandoned: 0,
        dropped: 0
      })
    )
    yield* close
    assertRejected(subject, yield* Effect.flip(Fiber.join(parked)), {
      worker: "closed",
      reason: "closed",
      active: 1,
      max: 1
    })
    assertRejected(subject, yield* Effect.flip(pool.withPermit(Effect.void, { worker: "late" })), {
      worker: "late",
      reason: "closed",
      active: 0,
      max: 1
    })
    assert.strictEqual(outcome(yield* Fiber.await(holder.fiber)), "interrupted")
    const stats = yield* pool.stats
    assert.deepStrictEqual(stats, { ...open, active: 0, waiting: 0, released: 1, abandoned: 1 })
    const log = yield* events
    assertLines(subject, log, [
      "Worker holder: acquired (1/1 active)",
      "Worker full: rejected (1/1 active)",
      "Worker try: rejected (1/1 active)",
      "Worker timeout: queued (1/1 active, 1 waiting)",
      "Worker queue-full: rejected (1/1 active, 1 waiting)",
      "Worker timeout: timed out (1/1 active)",
      "Worker closed: queued (1/1 active, 1 waiting)",
      "Worker closed: abandoned (1/1 active)",
      "Worker holder: released (0/1 active)"
    ])
    assertTotals(subject, stats, log)
  }),

  closing: Effect.gen(function* () {
    const { close, events, options, pool } = yield* recorded(subject, "closing")
    const interrupted: Array<CoroutinePool.WorkerId> = []
    const h = yield* holding(subject, pool, "h", (worker) => interrupted.push(worker))
    assert.isTrue(yield* pool.tryAcquire(1, { worker: "t" }))
    const scoped = yield* Deferred.make<void>()
    const owner = yield* fork(
      Effect.scoped(
        Effect.andThen(
          pool.acquire(1, { worker: "s" }),
          Effect.andThen(Deferred.succeed(scoped, undefined), Effect.never)
        )
      )
    )
    yield* within(subject, "acquire")(Deferred.await(scoped))
    const waiters = yield* Effect.forEach(["w1", "w2"], (worker) =>
      fork(pool.withPermit(Effect.void, { worker: worker }))
    )
    assert.deepStrictEqual([(yield* pool.stats).active, (yield* pool.stats).waiting], [3, 2])
    yield* close
    // Everything below was settled by the time close returned.
    for (const [index, waiter] of waiters.entries()) {
      const exit = waiter.pollUnsafe()
      assert.isDefined(exit, `w${index + 1} was answered`)
      assertRejected(subject, yield* Effect.flip(Fiber.join(waiter)), {
        worker: `w${index + 1}`,
        reason: "closed",
        active: 3,
        max: 3
      })
    }
    assert.deepStrictEqual(interrupted, ["h"])
    assert.strictEqual(outcome(h.fiber.pollUnsafe() ?? Exit.void), "interrupted")
    assert.isUndefined(owner.pollUnsafe(), "the fiber that took an acquire permit goes on; the permit came back")
    assert.deepStrictEqual(
      yield* Effect.flip(pool.release(1, { worker: "t" })),
      new CoroutinePool.PermitNotHeld({ worker: "t" })
    )
    const stats = yield* pool.stats
    assert.deepStrictEqual(
      stats,
      statsOf(subject, {
        active: 0,
        waiting: 0,
        max: 3,
        maxWaiting: 2,
        acquired: 3,
        rejected: 0,
        released: 3,
        queued: 2,
        timedOut: 0,
        abandoned: 2,
        dropped: 0
      })
    )
    // The stream ended after every Released.
    const log = yield* events
    assertLines(subject, log, [
      "Worker h: acquired (1/3 active)",
      "Worker t: acquired (2/3 active)",
      "Worker s: acquired (3/3 active)",
      "Worker w1: queued (3/3 active, 1 waiting)",
      "Worker w2: queued (3/3 active, 2 waiting)",
      "Worker w1: abandoned (3/3 active, 1 waiting)",
      "Worker w2: abandoned (3/3 active)",
      "Worker h: released (2/3 active)",
      "Worker t: released (1/3 active)",
      "Worker s: released (0/3 active)"
    ])
    assertTotals(subject, stats, log)
    // Its scope closing later changes nothing.
    yield* Fiber.interrupt(owner)
    assert.deepStrictEqual(yield* pool.stats, stats)
    // The source has every permit back: another pool of the key takes them all.
    const other = yield* subject.make(options)
    yield* assertAllFree(other, options.max, "after close")
  }),

  "after-close": Effect.gen(function* () {
    const { close, events, options, pool } = yield* recorded(subject, "after-close")
    assert.isTrue(yield* pool.tryAcquire(1, { worker: "manual" }))
    yield* pool.withPermit(Effect.void, { worker: "done" })
    yield* close
    const closed = yield* pool.stats
    assert.deepStrictEqual(
      yield* Effect.flip(pool.release(1, { worker: "manual" })),
      new CoroutinePool.PermitNotHeld({ worker: "manual" })
    )
    assert.isFalse(yield* pool.tryAcquire(1, { worker: "try" }))
    const figures = { active: 0, max: 2 }
    assert.deepStrictEqual(yield* pool.withPermitIfAvailable(Effect.void, { worker: "now" }), Option.none())
    assertRejected(subject, yield* Effect.flip(pool.withPermit(Effect.void, { worker: "wait" })), {
      worker: "wait",
      reason: "closed",
      ...figures
    })
    assertRejected(subject, yield* Effect.flip(Effect.scoped(pool.acquire(1, { worker: "scoped" }))), {
      worker: "scoped",
      reason: "closed",
      ...figures
    })
    yield* pool.resize(2)
    const resized = yield* Effect.exit(pool.resize(3))
    if (subject.shared) {
      // A shared max is the key's contract: no pool can change it.
      assert.deepStrictEqual(
        resized,
        Exit.fail(new PoolStore.PoolConfigMismatch({ key: options.key, option: "max", stored: 2, requested: 3 }))
      )
    } else assert.deepStrictEqual(resized, Exit.void)
    assert.strictEqual(yield* pool.max, 2)
    const stats = yield* pool.stats
    assert.deepStrictEqual(stats, closed, "nothing after close is counted")
    assert.deepStrictEqual(
      stats,
      statsOf(subject, {
        active: 0,
        waiting: 0,
        max: 2,
        maxWaiting: 1,
        ...zero,
        acquired: 2,
        released: 2,
        dropped: 0
      })
    )
    const log = yield* events
    assertLines(subject, log, [
      "Worker manual: acquired (1/2 active)",
      "Worker done: acquired (2/2 active)",
      "Worker done: released (1/2 active)",
      "Worker manual: released (0/2 active)"
    ])
    assertTotals(subject, stats, log)
  }),

  figures: Effect.gen(function* () {
    const { close, events, pool } = yield* recorded(subject, "figures")
    assert.isTrue(yield* pool.tryAcquire(1, { worker: "a" }))
    const rejected = yield* Effect.flip(pool.withPermit(Effect.void, { worker: "b" }))
    yield* pool.release(1, { worker: "a" })
    const c = yield* holding(subject, pool, "c")
    yield* c.finish
    yield* close
    // Exact for every pool: `own` figures, whatever the subject says.
    assertRejected({ ...subject, figures: "own" }, rejected, { worker: "b", reason: "full", active: 1, max: 1 })
    assert.deepStrictEqual((yield* events).map(subject.format), [
      "Worker a: acquired (1/1 active)",
      "Worker b: rejected (1/1 active)",
      "Worker a: released (0/1 active)",
      "Worker c: acquired (1/1 active)",
      "Worker c: released (0/1 active)"
    ])
  }),

  "stepping-withPermit": Effect.gen(function* () {
    const lives = new Set<string>()
    const broken: Array<string> = []
    let exhausted = false
    for (let steps = 0; !exhausted; steps++) {
      const at = `interrupted after ${steps} steps`
      assert.isBelow(steps, 1000, "the sweep ends")
      const { close, events, options, pool } = yield* recorded(subject, "stepping-withPermit", `-${steps}`)
      const stepper = Stepper.make()
      // A little work before the call, so the sweep starts before the acquisition.
      const worker = yield* Effect.yieldNow.pipe(
        Effect.andThen(pool.withPermit(Effect.never, { worker: 0 })),
        Effect.provideService(Scheduler.Scheduler, stepper.scheduler),
        Effect.forkChild
      )
      yield* Effect.yieldNow
      exhausted = stepThrough(stepper, steps)
      worker.interruptUnsafe()
      const exit = yield* drive(stepper, worker)
      const { active, waiting } = yield* pool.stats
      const free = yield* freePermits(pool, options.max)
      const stats = yield* pool.stats
      yield* close
      const log = yield* events
      const life = lifeOf(log, 0)
      lives.add(life)
      checkStep(broken, at, () => {
        assert.strictEqual(outcome(exit), "interrupted")
        assert.deepStrictEqual({ active, waiting }, { active: 0, waiting: 0 })
        assert.strictEqual(free, options.max, "every permit is free again")
        assert.oneOf(life, ["", "Acquired, Released"])
        assertConsistent(subject, log, options.max, at)
        assertTotals(subject, stats, log)
      })
    }
    assert.deepStrictEqual(broken, [], "no permit lost or doubled, a consistent log, after every number of steps")
    // The sweep crossed the acquisition: interrupted before it, and after it.
    assert.sameMembers(Array.from(lives), ["", "Acquired, Released"])
  }),

  "stepping-waiting": Effect.gen(function* () {
    for (const [act, tag] of waitingActs) {
      const lives = new Set<string>()
      const broken: Array<string> = []
      let exhausted = false
      for (let steps = 0; !exhausted; steps++) {
        const at = `${act} after ${steps} steps`
        assert.isBelow(steps, 1000, "the sweep ends")
        const { close, events, options, pool } = yield* recorded(subject, "stepping-waiting", `-${tag}-${steps}`)
        assert.isTrue(yield* pool.tryAcquire(1, { worker: 0 }))
        const stepper = Stepper.make()
        const waiter = yield* Effect.yieldNow.pipe(
          Effect.andThen(pool.withPermit(Effect.never, { worker: 1 })),
          Effect.provideService(Scheduler.Scheduler, stepper.scheduler),
          Effect.forkChild
        )
        yield* Effect.yieldNow
        // The holder gives its permit back now, in one synchronous step (with
        // the interrupt, or before the steps once the waiter has queued).
        const release = Effect.withFiber((fiber) =>
          Effect.sync(() => {
            Effect.runForkWith(fiber.context)(pool.release(1, { worker: 0 }))
          })
        )
        if (act === "release, then interrupt") {
          for (let turns = 0; (yield* pool.stats).waiting === 0; turns++) {
            assert.isBelow(turns, 1000, "the waiter queues")
            if (!stepper.step()) yield* Effect.yieldNow
          }
          yield* release
        }
        exhausted = stepThrough(stepper, steps)
        if (act === "release and interrupt") yield* release
        waiter.interruptUnsafe()
        const exit = yield* drive(stepper, waiter)
        if (act === "interrupt") yield* pool.release(1, { worker: 0 })
        const { active, waiting } = yield* pool.stats
        const free = yield* freePermits(pool, options.max)
        const stats = yield* pool.stats
        yield* close
        const log = yield* events
        lives.add(lifeOf(log, 1))
        checkStep(broken, at, () => {
          assert.strictEqual(outcome(exit), "interrupted")
          assert.deepStrictEqual({ active, waiting }, { active: 0, waiting: 0 })
          assert.strictEqual(free, options.max, "every permit is free again")
          assert.strictEqual(lifeOf(log, 0), "Acquired, Released")
          assertConsistent(subject, log, options.max, at)
          assertTotals(subject, stats, log)
        })
      }
      const { possible, seen } = waitingLives[act][subject.handOff]
      assert.deepStrictEqual(
        broken,
        [],
        `${act}: no permit lost or doubled, a consistent log, after every number of steps`
      )
      assert.includeMembers(Array.from(lives), [...seen], `${act}: the sweep crossed these`)
      assert.includeMembers([...possible], Array.from(lives), `${act}: nothing else`)
    }
  })
})

// A queued caller stepped by hand is interrupted after some steps: with the
// holder keeping its permit, with the holder releasing in the same step, or
// after the holder released once the caller had queued.
const waitingActs = [
  ["interrupt", "i"],
  ["release and interrupt", "ri"],
  ["release, then interrupt", "rti"]
] as const

type WaitingAct = (typeof waitingActs)[number][0]

// The lives the interrupted caller may lead (`possible`) and those a sweep
// must cross (`seen`), by act and by hand-off. Granted at the release, the
// caller holds the permit and gives it back when interrupted. A head that
// must ask its source is asked for in the release's own step; the source
// answering later, it could be interrupted before the answer and leave
// (`possible`); the memory store, which this sweep steps, answers at once.
const waitingLives: Record<
  WaitingAct,
  Record<Subject<never>["handOff"], { readonly possible: ReadonlyArray<string>; readonly seen: ReadonlyArray<string> }>
> = {
  interrupt: {
    grant: { possible: ["", "Queued, Abandoned"], seen: ["", "Queued, Abandoned"] },
    ask: { possible: ["", "Queued, Abandoned"], seen: ["", "Queued, Abandoned"] }
  },
  // Interrupted before it entered, or granted and then interrupted (the
  // permit passes on). 0.4 enters inside the exit frame, with no
  // interruption mask: an interrupt in the release's step lands before a
  // caller that has not entered yet can be admitted at once.
  "release and interrupt": {
    grant: {
      possible: ["", "Queued, Acquired, Released"],
      seen: ["", "Queued, Acquired, Released"]
    },
    // The release asks the source for the head in its own step: a source
    // that answers at once (the memory store) grants it there, as a local
    // count would.
    ask: {
      possible: ["", "Queued, Acquired, Released", "Queued, Abandoned"],
      seen: ["", "Queued, Acquired, Released"]
    }
  },
  "release, then interrupt": {
    grant: { possible: ["Queued, Acquired, Released"], seen: ["Queued, Acquired, Released"] },
    ask: {
      possible: ["Queued, Acquired, Released", "Queued, Abandoned"],
      seen: ["Queued, Acquired, Released"]
    }
  }
}

/**
 * Registers the contract's `subject.parts` for `subject`, in a `describe`
 * named after it, each in a fresh metrics registry.
 */
export const register = <R>(subject: Subject<R>): void => {
  describe(subject.name, () => {
    const bodies = contract(subject)
    for (const part of subject.parts) {
      subject.test(titles[part], () => Effect.provideService(bodies[part], Metric.MetricRegistry, new Map()))
    }
  })
}
