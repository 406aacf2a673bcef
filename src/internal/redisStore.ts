// Leases kept in Redis: one limit across every process of a key. One Lua
// script per operation (see redisScripts.ts), bounded by a timeout of its own.

import { randomUUID } from "node:crypto"
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Redis } from "effect/persistence"
import { InvalidStoreOption, PoolConfigMismatch, PoolStoreError } from "./errors.ts"
import { millis } from "./options.ts"
import * as Scripts from "./redisScripts.ts"
import { type Admission, checkRequest, permitsOf, type Store, validateName } from "./store.ts"

/** What a Redis store takes. */
export interface RedisOptions {
  readonly prefix?: string | undefined
  readonly timeout?: Duration.Input | undefined
}

// Fails with `onTimeout()` unless `self` ends within `millis` (and interrupts
// it). Every store operation goes through this twice per permit, and
// `Effect.timeoutOrElse` (a race of two forked fibers, one of them asleep)
// cost about 40% of the client's CPU per round trip here: this forks one
// fiber and sets one timer. It is a network timeout on real time, so it
// uses the host's timer rather than Effect's Clock.
const withDeadline = <A, E, E2>(
  self: Effect.Effect<A, E>,
  millis: number,
  onTimeout: () => E2
): Effect.Effect<A, E | E2> =>
  Effect.withFiber((parent) =>
    Effect.callback<A, E | E2>((resume) => {
      const child = Effect.runForkWith(parent.context)(self)
      const timer = setTimeout(() => {
        // Resume first: interrupting may end the child synchronously, and its
        // interruption must not be taken for the answer.
        resume(Effect.fail(onTimeout()))
        child.interruptUnsafe(parent.id)
      }, millis)
      child.addObserver((exit) => {
        clearTimeout(timer)
        resume(exit)
      })
      return Effect.sync(() => {
        clearTimeout(timer)
        child.interruptUnsafe(parent.id)
      })
    })
  )

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

export const make = Effect.fnUntraced(function* (options?: RedisOptions) {
  const prefix = yield* validateName("prefix", options?.prefix ?? "coroutine-pool")
  const timeout = yield* decodeTimeout(options?.timeout)
  const redis = yield* Redis.Redis
  const acquireScript = Scripts.script<Scripts.AcquireReply>(redis, Scripts.ACQUIRE, 3)
  const renewScript = Scripts.script<number>(redis, Scripts.RENEW, 2)
  const releaseScript = Scripts.script<number>(redis, Scripts.RELEASE, 2)

  const keysOf = (key: string) => Scripts.keysOf(prefix, key)

  // node-redis cannot cancel a command once it is written, and its own
  // timeouts do not fire after that, so every operation is bounded here.
  const bounded = <A>(
    key: string,
    operation: PoolStoreError["operation"],
    effect: Effect.Effect<A, Redis.RedisError>
  ): Effect.Effect<A, PoolStoreError> =>
    withDeadline(
      Effect.catchTag(effect, "RedisError", (error) =>
        Effect.fail(
          new PoolStoreError({
            key,
            operation,
            reason: reasonOf(error.cause),
            detail: String(error.cause ?? error.message)
          })
        )
      ),
      timeout,
      () => new PoolStoreError({ key, operation, reason: "timeout", detail: `no answer within ${timeout} ms` })
    )

  const store: Store = {
    // A fresh lease id each time the effect runs, not each time it is built.
    acquire: ({ key, max, permits = 1, ttl }) =>
      Effect.suspend(() => {
        const invalid = checkRequest(key, max, ttl, permits)
        if (invalid !== undefined) return Effect.fail(invalid)
        const keys = keysOf(key)
        const id = randomUUID()
        const script = bounded(
          key,
          "acquire",
          acquireScript(
            keys.leases,
            keys.meta,
            keys.tomb,
            id,
            String(max),
            String(ttl),
            metaIdleMillis,
            String(permits)
          )
        ).pipe(
          Effect.catchIf(
            (error) => error.detail.includes("MISMATCH"),
            (error) => {
              const [, option, stored] = /MISMATCH (max|ttl) (\d+)/.exec(error.detail) ?? []
              return Effect.fail(
                option === "ttl"
                  ? new PoolConfigMismatch({ key, option, stored: Number(stored), requested: ttl })
                  : new PoolConfigMismatch({ key, option: "max", stored: Number(stored), requested: max })
              )
            }
          )
        )
        return Effect.uninterruptibleMask((restore) =>
          restore(script).pipe(
            // Interrupted or timed out with the script in flight: release the id.
            // A plain EVAL is one command on the wire even with a cold script
            // cache, written at once, so Redis runs it after the acquire. (A
            // mismatch is an answer: nothing was taken.)
            Effect.onError((cause) =>
              Cause.findErrorOption(cause).pipe(Option.exists((e) => e._tag === "PoolConfigMismatch"))
                ? Effect.void
                : redis
                    .send(
                      "EVAL",
                      Scripts.RELEASE,
                      "2",
                      keys.leases,
                      keys.tomb,
                      id,
                      tombstoneMillis(ttl),
                      String(permits)
                    )
                    .pipe(Effect.ignore, Effect.forkDetach)
            ),
            Effect.flatMap((reply): Effect.Effect<Admission, PoolStoreError> => {
              switch (reply[0]) {
                case "ok":
                  return Effect.succeed({
                    _tag: "Granted",
                    lease: permits === 1 ? { id, fence: reply[1], ttl } : { id, fence: reply[1], ttl, permits },
                    holders: reply[2]
                  })
                case "full":
                  return Effect.succeed({ _tag: "Full", retryAfter: reply[1], holders: reply[2] })
                case "warming":
                  return Effect.succeed({ _tag: "Warming", retryAfter: reply[1] })
                default:
                  // 'cancelled': this id was released before its acquire ran,
                  // which a fresh id per call rules out; or an unknown reply.
                  return Effect.fail(
                    new PoolStoreError({
                      key,
                      operation: "acquire",
                      reason: "refused",
                      detail: `unexpected reply ${reply[0]}`
                    })
                  )
              }
            })
          )
        )
      }),
    renew: ({ key, lease }) => {
      const keys = keysOf(key)
      return Effect.map(
        bounded(
          key,
          "renew",
          renewScript(keys.leases, keys.meta, lease.id, String(lease.ttl), metaIdleMillis, String(permitsOf(lease)))
        ),
        (n) => n === 1
      )
    },
    // Part of a lease (its last `permits` members) may go back; the rest stays held.
    release: ({ key, lease, permits }) => {
      const keys = keysOf(key)
      const held = permitsOf(lease)
      return bounded(
        key,
        "release",
        releaseScript(
          keys.leases,
          keys.tomb,
          lease.id,
          tombstoneMillis(lease.ttl),
          String(held),
          String(Math.min(held, permits ?? held))
        )
      )
    }
  }
  return store
})
