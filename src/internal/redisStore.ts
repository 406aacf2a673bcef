// Leases kept in Redis: one limit across every process of a key.
//
// The operations of one process that are due at the same time (one
// synchronous run of the event loop) go to Redis together: every acquire of
// a key in one script call, every release and renewal of a key in another
// (see redisScripts.ts), each call bounded by one deadline of its own. A
// burst of k callers costs two scripts, not 2k; their guarantees are those of
// one call each (server clock, fencing tokens, tombstones, warm-up).
//
// A release that frees permits says so on the key's channel; a store watches
// the channels of the keys its pools queue on, one subscription per key.

import { randomUUID } from "node:crypto"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { Redis } from "effect/persistence"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { InvalidStoreOption, PoolConfigMismatch, PoolStoreError } from "./errors.ts"
import { millis } from "./options.ts"
import * as Scripts from "./redisScripts.ts"
import {
  type AcquireRequest,
  type Admission,
  checkRequest,
  type Lease,
  permitsOf,
  type ReleaseRequest,
  type Store,
  validateName,
  type Watcher
} from "./store.ts"

/** What a Redis store takes. */
export interface RedisOptions {
  readonly prefix?: string | undefined
  readonly timeout?: Duration.Input | undefined
}

const decodeTimeout = (input: Duration.Input | undefined): Effect.Effect<number, InvalidStoreOption> => {
  const ms = millis(input ?? "2 seconds", { min: 1, max: 86_400_000 })
  return ms === undefined
    ? Effect.fail(new InvalidStoreOption({ option: "timeout", value: input }))
    : Effect.succeed(ms)
}

// A key's record (its max, ttl and fencing counter) expires once the key has
// been idle this long: apps that make keys on the fly do not accumulate
// them. It outlives every lease, since each acquire and renewal pushes it on.
const metaIdleMillis = String(86_400_000)

// Long enough to outlive any acquire still in flight for this id.
const tombstoneMillis = (ttl: number) => String(Math.max(60_000, ttl * 10))

// Redis answers an error reply (a word in capitals, then a message) when it
// refuses a command; these few mean "not now" rather than "no". Anything that
// is not a reply (a refused or lost connection, a client offline) means the
// store could not be reached.
const transientReply = /^(BUSY|LOADING|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY)\b/
const reasonOf = (cause: unknown): PoolStoreError["reason"] => {
  const message = cause instanceof Error ? cause.message : String(cause)
  if (!/^[A-Z][A-Z_]+\b/.test(message)) return "unavailable"
  return transientReply.test(message) ? "unavailable" : "refused"
}

type Answer<A, E> = (exit: Exit.Exit<A, E>) => void

// An acquire waiting for its batch; `answer` is cleared when its caller
// leaves (then a grant that arrives goes straight back).
interface Asked {
  readonly id: string
  readonly permits: number
  readonly max: number
  readonly ttl: number
  answer: Answer<Admission, PoolStoreError | PoolConfigMismatch> | undefined
}

interface Returned {
  readonly lease: Lease
  readonly back: number
  readonly answer: Answer<number, PoolStoreError> | undefined
}

interface Renewal {
  readonly lease: Lease
  readonly answer: Answer<boolean, PoolStoreError>
}

// What a key has due: sent together at the end of the current synchronous run.
interface Due {
  acquires: Array<Asked>
  returns: Array<Returned>
  renewals: Array<Renewal>
}

type ReturnReply = readonly [ReadonlyArray<number>, ReadonlyArray<number>]

export const make = Effect.fnUntraced(function* (options?: RedisOptions) {
  const prefix = yield* validateName("prefix", options?.prefix ?? "coroutine-pool")
  const timeout = yield* decodeTimeout(options?.timeout)
  const redis = yield* Redis.Redis
  const runFork = Effect.runForkWith(yield* Effect.context<never>())
  const acquireScript = Scripts.script<ReadonlyArray<Scripts.AcquireAnswer>>(redis, Scripts.ACQUIRE, 3)
  const returnScript = Scripts.script<ReturnReply>(redis, Scripts.RETURN, 3)
  const keysOf = (key: string) => Scripts.keysOf(prefix, key)
  // Loaded ahead of their first use, so that a release and the acquire sent
  // right behind it run in that order: a script missing from Redis's cache
  // is sent again in full after its NOSCRIPT answer, behind what followed it.
  // (After Redis restarts, the first calls may still cross: the cost is a
  // refusal the next ask corrects, never a permit too many.)
  runFork(
    Effect.ignore(
      Effect.all([redis.send("SCRIPT", "LOAD", Scripts.ACQUIRE), redis.send("SCRIPT", "LOAD", Scripts.RETURN)])
    )
  )

  // Runs one batch's script, answering `done` once: with its reply, or with a
  // `PoolStoreError` (its own timeout included). node-redis cannot cancel a
  // command once it is written, and its own timeouts do not fire after that,
  // so each call is bounded here: one fiber and one timer per batch.
  const send = <A>(
    key: string,
    operation: PoolStoreError["operation"],
    script: Effect.Effect<A, Redis.RedisError>,
    done: (exit: Exit.Exit<A, PoolStoreError>) => void
  ) => {
    let settled = false
    const fiber = runFork(script)
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      done(
        Exit.fail(new PoolStoreError({ key, operation, reason: "timeout", detail: `no answer within ${timeout} ms` }))
      )
      fiber.interruptUnsafe()
    }, timeout)
    fiber.addObserver((exit) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (Exit.isSuccess(exit)) return done(Exit.succeed(exit.value))
      const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error
      done(
        Exit.fail(
          new PoolStoreError({
            key,
            operation,
            reason: reasonOf(error?.cause),
            detail: String(error?.cause ?? error?.message ?? "interrupted")
          })
        )
      )
    })
  }

  const due = new Map<string, Due>()
  const dueFor = (key: string): Due => {
    let batch = due.get(key)
    if (batch === undefined) {
      batch = { acquires: [], returns: [], renewals: [] }
      due.set(key, batch)
      // Everything asked of this key until the current synchronous run ends.
      queueMicrotask(() => {
        due.delete(key)
        flush(key, batch as Due)
      })
    }
    return batch
  }

  const flush = (key: string, batch: Due) => {
    if (batch.returns.length > 0 || batch.renewals.length > 0) sendReturns(key, batch.returns, batch.renewals)
    // A caller that left before its acquire was sent is not asked for.
    const acquires = batch.acquires.filter((asked) => asked.answer !== undefined)
    if (acquires.length > 0) sendAcquires(key, acquires)
  }

  // A lease to give back that nobody waits for (an acquire its caller left, or
  // that may still run after its answer was lost: then a tombstone cancels it).
  const giveBack = (key: string, id: string, permits: number, ttl: number) => {
    dueFor(key).returns.push({ lease: { id, fence: 0, ttl, permits }, back: permits, answer: undefined })
  }

  const sendAcquires = (key: string, acquires: ReadonlyArray<Asked>) => {
    const keys = keysOf(key)
    const args = [keys.leases, keys.meta, keys.tomb, metaIdleMillis]
    for (const asked of acquires) args.push(asked.id, String(asked.permits), String(asked.max), String(asked.ttl))
    send(key, "acquire", acquireScript(...args), (exit) => {
      for (let i = 0; i < acquires.length; i++) answerAcquire(key, acquires[i] as Asked, exit, i)
    })
  }

  const answerAcquire = (
    key: string,
    asked: Asked,
    exit: Exit.Exit<ReadonlyArray<Scripts.AcquireAnswer>, PoolStoreError>,
    i: number
  ) => {
    if (Exit.isFailure(exit)) {
      // Interrupted, timed out or refused with the script maybe in flight:
      // its id goes back, or is cancelled if the script runs later.
      giveBack(key, asked.id, asked.permits, asked.ttl)
      asked.answer?.(Exit.fail(errorOf(exit)))
      return
    }
    const answer = exit.value[i]
    const admission =
      answer === undefined
        ? Exit.fail(
            new PoolStoreError({ key, operation: "acquire", reason: "refused", detail: "no answer for a request" })
          )
        : admissionOf(key, asked, answer)
    if (asked.answer !== undefined) asked.answer(admission)
    // Its caller left: a grant goes straight back.
    else if (Exit.isSuccess(admission) && admission.value._tag === "Granted") {
      giveBack(key, asked.id, asked.permits, asked.ttl)
    }
  }

  const admissionOf = (
    key: string,
    asked: Asked,
    answer: Scripts.AcquireAnswer
  ): Exit.Exit<Admission, PoolStoreError | PoolConfigMismatch> => {
    switch (answer[0]) {
      case "ok": {
        const { id, permits, ttl } = asked
        const lease: Lease = permits === 1 ? { id, fence: answer[1], ttl } : { id, fence: answer[1], ttl, permits }
        return Exit.succeed({ _tag: "Granted", lease, holders: answer[2] })
      }
      case "full":
        return Exit.succeed({ _tag: "Full", retryAfter: answer[1], holders: answer[2] })
      case "warming":
        return Exit.succeed({ _tag: "Warming", retryAfter: answer[1] })
      case "mismatch":
        return Exit.fail(
          new PoolConfigMismatch({
            key,
            option: answer[1],
            stored: Number(answer[2]),
            requested: answer[1] === "ttl" ? asked.ttl : asked.max
          })
        )
      default:
        // 'cancelled': this id was released before its acquire ran, which a
        // fresh id per call rules out; or an unknown answer.
        return Exit.fail(
          new PoolStoreError({ key, operation: "acquire", reason: "refused", detail: `unexpected reply ${answer[0]}` })
        )
    }
  }

  const sendReturns = (key: string, returns: ReadonlyArray<Returned>, renewals: ReadonlyArray<Renewal>) => {
    const keys = keysOf(key)
    const args = [keys.leases, keys.meta, keys.tomb, metaIdleMillis, keys.freed, String(returns.length)]
    for (const { back, lease } of returns) {
      args.push(lease.id, String(permitsOf(lease)), String(back), tombstoneMillis(lease.ttl))
    }
    for (const { lease } of renewals) args.push(lease.id, String(permitsOf(lease)), String(lease.ttl))
    send(key, returns.length > 0 ? "release" : "renew", returnScript(...args), (exit) => {
      if (Exit.isFailure(exit)) {
        const { detail, reason } = errorOf(exit)
        for (const { answer } of returns)
          answer?.(Exit.fail(new PoolStoreError({ key, operation: "release", reason, detail })))
        for (const { answer } of renewals)
          answer(Exit.fail(new PoolStoreError({ key, operation: "renew", reason, detail })))
        return
      }
      const [released, renewed] = exit.value
      for (let i = 0; i < returns.length; i++) returns[i]?.answer?.(Exit.succeed(released[i] ?? -1))
      for (let i = 0; i < renewals.length; i++) renewals[i]?.answer(Exit.succeed(renewed[i] === 1))
    })
  }

  // The channels of the keys watched here: one subscription per key, shared
  // by every pool of the key in this process.
  const watched = new Map<string, { readonly watchers: Set<Watcher>; readonly fiber: Fiber.Fiber<void, unknown> }>()

  // Listens on a key's channel for as long as anyone watches it; a lost
  // subscription is said (`live(false)`) and taken again.
  const subscription = (key: string, watchers: ReadonlySet<Watcher>) =>
    Effect.scoped(
      Effect.gen(function* () {
        const messages = yield* redis.subscribe(keysOf(key).freed)
        for (const watcher of watchers) watcher.live(true)
        for (;;) {
          yield* Queue.take(messages)
          for (const watcher of watchers) watcher.freed()
        }
      })
    ).pipe(
      Effect.tapCause(() =>
        Effect.sync(() => {
          for (const watcher of watchers) watcher.live(false)
        })
      ),
      Effect.retry(Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("2 seconds")])),
      Effect.asVoid
    )

  const watch = (key: string, watcher: Watcher): Effect.Effect<void, never, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const current = watched.get(key)
        if (current !== undefined) return void current.watchers.add(watcher)
        const watchers = new Set([watcher])
        watched.set(key, { watchers, fiber: runFork(subscription(key, watchers)) })
      }),
      () =>
        Effect.suspend(() => {
          const current = watched.get(key)
          if (current === undefined) return Effect.void
          current.watchers.delete(watcher)
          if (current.watchers.size > 0) return Effect.void
          watched.delete(key)
          return Fiber.interrupt(current.fiber)
        })
    )

  const acquireDirect = (
    { key, max, permits = 1, ttl }: AcquireRequest,
    answer: Answer<Admission, PoolStoreError | PoolConfigMismatch>
  ): Asked | undefined => {
    const invalid = checkRequest(key, max, ttl, permits)
    if (invalid !== undefined) {
      answer(Exit.fail(invalid))
      return undefined
    }
    // A fresh lease id for every acquire.
    const asked: Asked = { id: randomUUID(), permits, max, ttl, answer }
    dueFor(key).acquires.push(asked)
    return asked
  }

  // Part of a lease (its last `permits` members) may go back; the rest stays
  // held. Sent even if its caller is interrupted meanwhile.
  const releaseDirect = ({ key, lease, permits }: ReleaseRequest, answer: Answer<number, PoolStoreError>) => {
    const held = permitsOf(lease)
    dueFor(key).returns.push({ lease, back: Math.min(held, permits ?? held), answer })
  }

  const store: Store = {
    acquire: (request) =>
      Effect.callback<Admission, PoolStoreError | PoolConfigMismatch>((resume) => {
        const asked = acquireDirect(request, resume)
        // Interrupted: not asked for if not sent yet, given back if granted.
        if (asked !== undefined) {
          return Effect.sync(() => {
            asked.answer = undefined
          })
        }
      }),
    renew: ({ key, lease }) =>
      Effect.callback<boolean, PoolStoreError>((resume) => {
        dueFor(key).renewals.push({ lease, answer: resume })
      }),
    release: (request) => Effect.callback<number, PoolStoreError>((resume) => releaseDirect(request, resume)),
    direct: { acquire: acquireDirect, release: releaseDirect },
    watch
  }
  return store
})

// The error of a batch that failed: `send` fails with nothing else.
const errorOf = (exit: Exit.Failure<unknown, PoolStoreError>): PoolStoreError => {
  for (const reason of exit.cause.reasons) if (reason._tag === "Fail") return reason.error
  return new PoolStoreError({ key: "", operation: "acquire", reason: "unavailable", detail: "no failure" })
}
