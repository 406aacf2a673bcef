// Throwaway prototype of a Redis-backed lease for one pool across processes.

import { randomUUID } from "node:crypto"
import { Clock, Data, Duration, Effect } from "effect"
import { Redis } from "effect/persistence"
import * as S from "./scripts.ts"

export class Rejected extends Data.TaggedError("Rejected")<{
  readonly reason: "full" | "warming" | "cancelled"
  readonly retryAfterMs: number
}> {}
export class LeaseLost extends Data.TaggedError("LeaseLost")<{ readonly leaseId: string; readonly reason: string }> {}
export class StoreUnavailable extends Data.TaggedError("StoreUnavailable")<{
  readonly op: string
  readonly cause: unknown
}> {}
export class MaxMismatch extends Data.TaggedError("MaxMismatch")<{ readonly message: string }> {}

export interface Lease {
  readonly id: string
  readonly fence: number
  readonly ttlMs: number
}

export const makeStore = (opts: {
  prefix: string
  pool: string
  max: number
  ttlMs: number
  opTimeoutMs?: number
  tombstoneMs?: number
}) =>
  Effect.gen(function* () {
    const redis = yield* Redis.Redis
    const k = S.keys(opts.prefix, opts.pool)
    const tomb = opts.tombstoneMs ?? Math.max(60_000, opts.ttlMs * 10)
    const bounded = <A>(op: string, eff: Effect.Effect<A, Redis.RedisError>) =>
      eff.pipe(
        Effect.timeoutOrElse({
          duration: Duration.millis(opts.opTimeoutMs ?? 2000),
          orElse: () => Effect.fail(new StoreUnavailable({ op, cause: "timeout" }))
        }),
        Effect.catchTag(
          "RedisError",
          (e): Effect.Effect<never, MaxMismatch | StoreUnavailable> =>
            String(e.cause).includes("MAXMISMATCH")
              ? Effect.fail(
                  new MaxMismatch({
                    message: `pool ${opts.pool}: ${String(e.cause).replace(/^.*MAXMISMATCH /, "max mismatch: ")}`
                  })
                )
              : Effect.fail(new StoreUnavailable({ op, cause: e.cause }))
        )
      )
    const acquireLua = S.oneTrip<S.AcquireReply>(redis, S.ACQUIRE, 3)
    const renewLua = S.oneTrip<S.RenewReply>(redis, S.RENEW, 1)
    const releaseLua = S.oneTrip<0 | 1>(redis, S.RELEASE, 2)
    const release = (id: string) => bounded("release", releaseLua(k.leases, k.tomb, id, tomb))

    // Interruption-safe: if interrupted (or the reply is lost) while the script is in flight, release by id.
    const tryAcquire = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const id = randomUUID()
        const reply = yield* restore(
          bounded("acquire", acquireLua(k.leases, k.meta, k.tomb, id, opts.max, opts.ttlMs, tomb))
        ).pipe(
          // compensating release: plain EVAL (always exactly one command on the wire, even if the
          // script cache is cold), written right away so it is ordered after the in-flight acquire.
          Effect.onError(() =>
            redis
              .send("EVAL", S.RELEASE, "2", k.leases, k.tomb, id, String(tomb))
              .pipe(Effect.ignore, Effect.forkDetach)
          )
        )
        switch (reply[0]) {
          case "ok":
            return { id, fence: reply[1], ttlMs: reply[2] } satisfies Lease
          case "full":
            return yield* new Rejected({ reason: "full", retryAfterMs: reply[1] })
          case "warming":
            return yield* new Rejected({ reason: "warming", retryAfterMs: reply[1] })
          case "cancelled":
            return yield* new Rejected({ reason: "cancelled", retryAfterMs: 0 })
        }
      })
    )

    // Renew every ttl/3 using only durations measured on the monotonic clock; never recreate.
    const keepAlive = (lease: Lease) =>
      Effect.gen(function* () {
        let lastOk = yield* Clock.monotonicTimeNanos // taken before the acquire reply would be better; prototype
        for (;;) {
          yield* Effect.sleep(Duration.millis(Math.floor(lease.ttlMs / 3)))
          const now = yield* Clock.monotonicTimeNanos
          if (Number(now - lastOk) / 1e6 >= lease.ttlMs)
            return yield* new LeaseLost({ leaseId: lease.id, reason: "local deadline passed" })
          const sent = yield* Clock.monotonicTimeNanos
          const r = yield* Effect.result(bounded("renew", renewLua(k.leases, lease.id, opts.ttlMs)))
          if (r._tag === "Success") {
            if (r.success[0] === "lost") return yield* new LeaseLost({ leaseId: lease.id, reason: r.success[1] })
            lastOk = sent
          } // transient store errors: retry until the local deadline passes
        }
      })

    const withLease = <A, E, R>(use: (lease: Lease) => Effect.Effect<A, E, R>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const lease = yield* restore(tryAcquire)
          return yield* restore(Effect.raceFirst(use(lease), keepAlive(lease) as Effect.Effect<never, LeaseLost>)).pipe(
            Effect.ensuring(release(lease.id).pipe(Effect.ignore))
          )
        })
      )
    return { tryAcquire, release, withLease, keys: k }
  })
