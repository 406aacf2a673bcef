import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Duration, Effect, Fiber, Layer, Logger, References, Schedule } from "effect"
import * as PoolStore from "../src/PoolStore.ts"
import * as SharedPool from "../src/SharedPool.ts"
import * as RedisServer from "./utils/RedisServer.ts"
import { is, maxOverlap, spawnWorker, startUp, type Worker } from "./utils/RedisWorkers.ts"
import * as Tools from "./utils/Tools.ts"

// The Redis lease store and shared pools against a real redis-server (one per
// test, on a free loopback port), on the real clock. Leases are short (TTL
// 1000 ms) so the whole file takes seconds, not minutes.

const TTL = 1000

// Monotonic milliseconds. CLOCK_MONOTONIC is one clock for every process on
// the host (and faketime leaves it alone), so stamps from worker processes
// and from this one compare directly.
const mono = () => Number(process.hrtime.bigint()) / 1e6

// REDIS_TEST_VERBOSE=1 prints the figures behind the timing assertions.
const note = (label: string, value: unknown) => {
  if (process.env.REDIS_TEST_VERBOSE) console.log(`${label}: ${JSON.stringify(value)}`)
}

// NodeRedis warns on every reconnect attempt; keep the test output to failures.
const quiet = Layer.merge(
  Logger.layer([Logger.withConsoleError(Logger.formatSimple)]),
  Layer.succeed(References.MinimumLogLevel, "Error")
)

// A store connected to `server`, for this scope.
const connect = (server: RedisServer.RedisServer, options: PoolStore.RedisOptions = {}) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(
      PoolStore.layerStoreRedis({ prefix: "t", timeout: "500 millis", ...options }).pipe(
        Layer.provideMerge(NodeRedis.layer({ url: server.url, disableOfflineQueue: true })),
        Layer.provide(quiet)
      )
    )
    return { store: Context.get(context, PoolStore.PoolStore) }
  })

const keysOf = (key: string, prefix = "t") => ({
  leases: `{${prefix}:${key}}:leases`,
  meta: `{${prefix}:${key}}:meta`,
  tomb: `{${prefix}:${key}}:tomb`
})

type Store = PoolStore.PoolStore["Service"]

// Asks until granted, waiting out a warm-up or a full pool; dies after 5 s.
const acquireGranted = (store: Store, options: { key: string; max: number; ttl: number }) =>
  Effect.gen(function* () {
    const deadline = mono() + 5000
    for (;;) {
      const admission = yield* store.acquire(options)
      if (admission._tag === "Granted") return admission
      if (mono() > deadline) return yield* Effect.die(new Error(`not granted in 5 s: ${JSON.stringify(admission)}`))
      yield* Effect.sleep(Math.max(5, Math.min(admission.retryAfter + 5, 50)))
    }
  })

// First use of a key: Warming for one TTL. Waits it out.
const warm = (store: Store, options: { key: string; max: number; ttl: number }) =>
  Effect.gen(function* () {
    const first = yield* store.acquire(options)
    assert.strictEqual(first._tag, "Warming", `first use of ${options.key} warms up`)
    if (first._tag === "Warming") yield* Effect.sleep(first.retryAfter + 5)
  })

const helds = (workers: ReadonlyArray<Worker>) =>
  workers.flatMap((worker) => worker.events.filter(is("held")).map((held) => ({ ...held, process: worker.name })))

// Start-up on a busy machine (servers, worker processes) may take a while;
// the bounds each test measures are its own assertions, not this timeout.
const suite = { timeout: 120_000 }

afterAll(() => {
  assert.deepStrictEqual(RedisServer.running(), [], "every redis-server this file started was stopped")
})

describe.runIf(Tools.available().redis).concurrent("PoolStore on Redis: the store's own guarantees", suite, () => {
  it.live("grants up to max, then Full with a retry hint; fences increase", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const options = { key: "basics", max: 3, ttl: TTL }
      yield* warm(store, options)
      const granted = []
      // Before the first lease is granted (its deadline is set after this).
      const firstSent = mono()
      for (let i = 1; i <= 3; i++) {
        const admission = yield* store.acquire(options)
        assert.strictEqual(admission._tag, "Granted")
        if (admission._tag !== "Granted") return
        assert.strictEqual(admission.holders, i)
        assert.strictEqual(admission.lease.ttl, TTL)
        granted.push(admission.lease)
      }
      const grantedAt = mono()
      const fences = granted.map((lease) => lease.fence)
      assert.isTrue(
        fences.every((fence, i) => i === 0 || fence > (fences[i - 1] ?? 0)),
        `fences ${fences}`
      )
      assert.strictEqual(new Set(granted.map((lease) => lease.id)).size, 3)
      assert.strictEqual(yield* server.cli("ZCARD", keysOf("basics").leases), "3")

      yield* Effect.sleep(200)
      // The server ran the full acquire between these two instants, and set
      // the earliest deadline between `firstSent` and `grantedAt`: the hint
      // (the time left on that lease) lies between the bounds they give,
      // however late this process runs (1 ms for the server's whole millis).
      const sent = mono()
      const full = yield* store.acquire(options)
      const answered = mono()
      assert.strictEqual(full._tag, "Full")
      if (full._tag !== "Full") return
      assert.strictEqual(full.holders, 3)
      assert.isAtMost(full.retryAfter, TTL - (sent - grantedAt) + 1, `retryAfter ${full.retryAfter}`)
      assert.isAtLeast(full.retryAfter, TTL - (answered - firstSent) - 1, `retryAfter ${full.retryAfter}`)
      assert.strictEqual(yield* server.cli("ZCARD", keysOf("basics").leases), "3", "a Full acquire adds nothing")

      // released: the next acquire is granted, with a larger fence
      const [first] = granted
      assert.isDefined(first)
      if (first === undefined) return
      assert.strictEqual(yield* store.release({ key: "basics", lease: first }), 2)
      const again = yield* store.acquire(options)
      assert.strictEqual(again._tag, "Granted")
      if (again._tag === "Granted") assert.isAbove(again.lease.fence, Math.max(...fences))

      // the hint is honest: waiting it out frees the slot
      const hinted = yield* store.acquire(options)
      assert.strictEqual(hinted._tag, "Full")
      if (hinted._tag === "Full") yield* Effect.sleep(hinted.retryAfter + 5)
      assert.strictEqual((yield* store.acquire(options))._tag, "Granted")
    })
  )

  it.live("renew extends a held lease; a released or expired lease renews to false and is not recreated", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const key = "renew"
      const { leases } = keysOf(key)
      const options = { key, max: 2, ttl: TTL }
      yield* warm(store, options)
      const { lease } = yield* acquireGranted(store, options)
      const deadline0 = Number(yield* server.cli("ZSCORE", leases, lease.id))
      yield* Effect.sleep(50)
      assert.isTrue(yield* store.renew({ key, lease }))
      const deadline1 = Number(yield* server.cli("ZSCORE", leases, lease.id))
      assert.isAtLeast(deadline1 - deadline0, 40, "renew pushed the deadline forward")

      // released, then renewed: false, and the lease stays gone
      assert.strictEqual(yield* store.release({ key, lease }), 0)
      assert.isFalse(yield* store.renew({ key, lease }))
      assert.strictEqual(yield* server.cli("ZCARD", leases), "0")
      assert.strictEqual(yield* server.cli("ZSCORE", leases, lease.id), "")

      // expired, then renewed: false, and it is removed rather than revived
      // (a key's leases all last its ttl: a short one needs a key of its own)
      const short = { key: "renew-short", max: 2, ttl: TTL }
      const shortLeases = keysOf(short.key).leases
      yield* warm(store, short)
      const expiring = (yield* acquireGranted(store, short)).lease
      yield* Effect.sleep(TTL * 0.6)
      const later = (yield* acquireGranted(store, short)).lease
      // `expiring` has passed its deadline; `later` has half a TTL to go.
      yield* Effect.sleep(TTL * 0.5)
      assert.strictEqual(yield* server.cli("ZCARD", shortLeases), "2", "expired but not purged yet")
      assert.isFalse(yield* store.renew({ key: short.key, lease: expiring }))
      assert.strictEqual(yield* server.cli("ZRANGE", shortLeases, "0", "-1"), later.id)
      assert.strictEqual(yield* store.release({ key: short.key, lease: expiring }), -1)
      // the last lease's deadline passed: the set went by itself, nobody purged it
      yield* Effect.sleep(TTL * 0.6)
      assert.strictEqual(yield* server.cli("EXISTS", shortLeases), "0")
      assert.isFalse(yield* store.renew({ key: short.key, lease: later }))
    })
  )

  it.live("release removes only the caller's own lease", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const key = "release"
      const { leases } = keysOf(key)
      const options = { key, max: 2, ttl: TTL }
      yield* warm(store, options)
      const a = (yield* acquireGranted(store, options)).lease
      const b = (yield* acquireGranted(store, options)).lease
      assert.strictEqual(yield* store.release({ key, lease: a }), 1)
      assert.strictEqual(yield* store.release({ key, lease: a }), -1, "a second release of the same lease")
      const forged = { id: "not-a-lease", fence: b.fence, ttl: TTL }
      assert.strictEqual(yield* store.release({ key, lease: forged }), -1, "a lease that was never granted")
      assert.strictEqual(yield* store.release({ key: "other", lease: b }), -1, "the right id under another key")
      assert.strictEqual(yield* server.cli("ZRANGE", leases, "0", "-1"), b.id)
      assert.isTrue(yield* store.renew({ key, lease: b }))
    })
  )

  it.live("a lease of n permits is n members: a partial release leaves the rest held and renewable", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const key = "weighted"
      const { leases } = keysOf(key)
      const options = { key, max: 5, ttl: TTL }
      yield* warm(store, options)
      const members = Effect.map(server.cli("ZRANGE", leases, "0", "-1"), (out) =>
        out === "" ? [] : out.split("\n").sort()
      )
      const granted = yield* store.acquire({ ...options, permits: 3 })
      assert.strictEqual(granted._tag, "Granted")
      if (granted._tag !== "Granted") return
      const { lease } = granted
      assert.deepStrictEqual([granted.holders, lease.permits, lease.ttl], [3, 3, TTL])
      assert.deepStrictEqual(yield* members, [lease.id, `${lease.id}#2`, `${lease.id}#3`])
      // 3 more do not fit in the 2 left, and take nothing; 2 do.
      const full = yield* store.acquire({ ...options, permits: 3 })
      assert.deepStrictEqual([full._tag, full._tag === "Full" ? full.holders : -1], ["Full", 3])
      const two = yield* store.acquire({ ...options, permits: 2 })
      assert.deepStrictEqual([two._tag, two._tag === "Granted" ? two.holders : -1], ["Granted", 5])
      if (two._tag === "Granted") assert.strictEqual(yield* store.release({ key, lease: two.lease }), 3)
      // A count the key can never give is refused before Redis is asked.
      for (const permits of [0, 6, 1.5]) {
        const error = yield* Effect.flip(store.acquire({ ...options, permits }))
        assert.deepStrictEqual(
          [error._tag, error._tag === "PoolStoreError" ? error.reason : ""],
          ["PoolStoreError", "refused"]
        )
      }

      // A partial release gives back its last members; the rest stays held.
      assert.strictEqual(yield* store.release({ key, lease, permits: 1 }), 2)
      assert.deepStrictEqual(yield* members, [lease.id, `${lease.id}#2`])
      const rest = { ...lease, permits: 2 }
      const before = yield* Effect.forEach([lease.id, `${lease.id}#2`], (member) =>
        Effect.map(server.cli("ZSCORE", leases, member), Number)
      )
      yield* Effect.sleep(50)
      // Renewal pushes every member's deadline forward, and never revives the one given back.
      assert.isTrue(yield* store.renew({ key, lease: rest }))
      assert.isTrue(yield* store.renew({ key, lease }), "renewed as the lease of 3 it was: #3 stays gone")
      const after = yield* Effect.forEach([lease.id, `${lease.id}#2`], (member) =>
        Effect.map(server.cli("ZSCORE", leases, member), Number)
      )
      for (const [i, deadline] of after.entries()) {
        assert.isAtLeast(deadline - (before[i] as number), 40, `member ${i + 1}`)
      }
      assert.deepStrictEqual(yield* members, [lease.id, `${lease.id}#2`])
      // Held past its first TTL by renewal alone.
      yield* Effect.sleep(TTL * 0.6)
      assert.isTrue(yield* store.renew({ key, lease: rest }))
      yield* Effect.sleep(TTL * 0.6)
      assert.deepStrictEqual(yield* members, [lease.id, `${lease.id}#2`])
      // Releasing the rest removes every member.
      assert.strictEqual(yield* store.release({ key, lease: rest }), 0)
      assert.deepStrictEqual(yield* members, [])
      assert.strictEqual(yield* store.release({ key, lease: rest }), -1)
      assert.isFalse(yield* store.renew({ key, lease: rest }))
    })
  )

  it.live("a shared pool's weighted permits are members of the key's leases while held", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const options = { key: "weighted-pool", max: 3, ttl: TTL }
      yield* warm(store, options)
      const count = Effect.map(server.cli("ZCARD", keysOf(options.key).leases), Number)
      const pool = yield* SharedPool.make(options).pipe(Effect.provideService(PoolStore.PoolStore, store))
      assert.strictEqual(yield* pool.withPermits(2, { worker: "w" })(count), 2)
      assert.strictEqual(yield* count, 0, "given back when the work ends")
      assert.isTrue(yield* pool.tryAcquire(3, { worker: "t" }))
      assert.strictEqual(yield* count, 3)
      yield* pool.release(1, { worker: "t" })
      assert.strictEqual(yield* count, 2, "a partial release waits for the store")
      assert.isFalse(yield* pool.tryAcquire(2, { worker: "u" }))
      assert.isTrue(yield* pool.tryAcquire(1, { worker: "u" }))
      yield* pool.release(2, { worker: "t" })
      yield* pool.release(1, { worker: "u" })
      assert.strictEqual(yield* count, 0)
      const stats = yield* pool.stats
      assert.deepStrictEqual([stats.acquired, stats.rejected, stats.released, stats.lost], [3, 1, 4, 0])
    }).pipe(Effect.scoped)
  )

  it.live("one acquire effect run twice takes two leases with two ids", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const options = { key: "reused", max: 2, ttl: TTL }
      yield* warm(store, options)
      const acquire = store.acquire(options)
      const first = yield* acquire
      const second = yield* acquire
      assert.deepStrictEqual([first._tag, second._tag], ["Granted", "Granted"])
      if (first._tag !== "Granted" || second._tag !== "Granted") return
      assert.notStrictEqual(first.lease.id, second.lease.id)
      assert.strictEqual(yield* server.cli("ZCARD", keysOf("reused").leases), "2")
      assert.strictEqual((yield* acquire)._tag, "Full")
    })
  )

  it.live("withPermit on another pool of the key gets the permit soon after it is freed, or times out", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const options = { key: "waiting", max: 1, ttl: TTL }
      yield* warm(store, options)
      const make = (maxWait: Duration.Input) =>
        SharedPool.make({ ...options, maxWaiting: 2, maxWait, poll: "40 millis" }).pipe(
          Effect.provideService(PoolStore.PoolStore, store)
        )
      const holder = yield* make("1 second")
      const waiter = yield* make("2 seconds")
      const impatient = yield* make("150 millis")
      const released = yield* Deferred.make<number>()
      yield* Effect.forkChild(
        holder
          .withPermit(
            Effect.andThen(
              Effect.sleep("300 millis"),
              Effect.sync(() => mono())
            ),
            { worker: "holder" }
          )
          .pipe(Effect.flatMap((at) => Deferred.succeed(released, at))),
        { startImmediately: true }
      )
      yield* Effect.sleep("20 millis")
      const late = yield* Effect.flip(impatient.withPermit(Effect.void, { worker: "impatient" }))
      assert.deepStrictEqual([late._tag, late._tag === "PoolRejected" && late.reason], ["PoolRejected", "timeout"])
      const got = yield* waiter.withPermit(
        Effect.sync(() => mono()),
        { worker: "waiter" }
      )
      const freed = yield* Deferred.await(released)
      // The holder's release is one round trip after `freed`; the waiter asks
      // at most every 40 ms; the lease itself would last 1000 ms.
      assert.isAtLeast(got, freed)
      assert.isAtMost(got - freed, 400, `granted ${got - freed} ms after the holder's work ended (not at its TTL)`)
      assert.deepStrictEqual((yield* waiter.stats).queued, 1)
      assert.strictEqual(yield* server.cli("ZCARD", keysOf("waiting").leases), "0")
    })
  )

  it.live("a second max for the same key fails with PoolConfigMismatch and grants nothing", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const key = "mismatch"
      yield* warm(store, { key, max: 2, ttl: TTL })
      const a = yield* acquireGranted(store, { key, max: 2, ttl: TTL })
      const error = yield* Effect.flip(store.acquire({ key, max: 3, ttl: TTL }))
      assert.strictEqual(error._tag, "PoolConfigMismatch")
      if (error._tag === "PoolConfigMismatch") {
        assert.deepStrictEqual([error.key, error.option, error.stored, error.requested], [key, "max", 2, 3])
      }
      assert.strictEqual(yield* server.cli("ZRANGE", keysOf(key).leases, "0", "-1"), a.lease.id)
      // the stored max still works
      assert.strictEqual((yield* store.acquire({ key, max: 2, ttl: TTL }))._tag, "Granted")
    })
  )

  it.live("Warming on first use and after FLUSHALL, for one TTL; fences keep increasing across the loss", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const options = { key: "warm", max: 1, ttl: TTL }
      const begin = mono()
      const first = yield* store.acquire(options)
      assert.strictEqual(first._tag, "Warming")
      if (first._tag !== "Warming") return
      assert.isAtMost(first.retryAfter, TTL)
      assert.isAtLeast(first.retryAfter, TTL - 50)
      assert.strictEqual(yield* server.cli("ZCARD", keysOf("warm").leases), "0")
      yield* Effect.sleep(TTL / 2)
      const half = yield* store.acquire(options)
      assert.strictEqual(half._tag, "Warming", "still warming half a TTL later")
      if (half._tag === "Warming") assert.isBelow(half.retryAfter, first.retryAfter - TTL / 2 + 50)
      const { lease } = yield* acquireGranted(store, options)
      assert.isAtLeast(mono() - begin, TTL - 5, "no grant before one TTL")

      assert.strictEqual(yield* server.cli("FLUSHALL"), "OK")
      const lost = mono()
      const after = yield* store.acquire(options)
      assert.strictEqual(after._tag, "Warming", "the store lost its data: warm up again")
      if (after._tag === "Warming") assert.isAtLeast(after.retryAfter, TTL - 50)
      const regained = yield* acquireGranted(store, options)
      assert.isAtLeast(mono() - lost, TTL - 5, "no grant before one TTL after the loss")
      assert.isAbove(regained.lease.fence, lease.fence, "fences increase across the data loss")
    })
  )

  it.live("an invalid prefix fails with InvalidStoreOption and writes nothing", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      // "shop:eu" + "pay" and "shop" + "eu:pay" would name the same keys.
      for (const prefix of ["", "two words", "{slot}", "a".repeat(129), "new\nline", "shop:eu"]) {
        const error = yield* Effect.flip(connect(server, { prefix }))
        assert.strictEqual(error._tag, "InvalidStoreOption", JSON.stringify(prefix))
        if (error._tag === "InvalidStoreOption") assert.deepStrictEqual([error.option, error.value], ["prefix", prefix])
      }
      assert.strictEqual(yield* server.cli("DBSIZE"), "0")
    })
  )
})

// ---------------------------------------------------------------------------
// a key's contract, memory, and what a key leaves behind
// ---------------------------------------------------------------------------

// A shared pool over `store` in the current scope.
const poolOn = (store: Store, options: SharedPool.Options) =>
  SharedPool.make(options).pipe(Effect.provideService(PoolStore.PoolStore, store))

describe.runIf(Tools.available().redis).concurrent("SharedPool on Redis: a key's contract", suite, () => {
  it.live("a replica with another ttl is refused, and the key stays warm for the others", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const key = "contract"
      // (a TTL long enough that the held lease outlives the checks below on a busy machine)
      const short = { key, max: 2, ttl: TTL }
      yield* warm(store, short)
      const held = yield* acquireGranted(store, short)
      const fence = yield* server.cli("HGET", keysOf(key).meta, "fence")
      // A deploy with a longer ttl: refused, naming what differs, touching nothing.
      const error = yield* Effect.flip(store.acquire({ key, max: 2, ttl: 5000 }))
      assert.deepStrictEqual(
        error,
        new PoolStore.PoolConfigMismatch({ key, option: "ttl", stored: TTL, requested: 5000 })
      )
      const fromPool = yield* Effect.flip(
        (yield* poolOn(store, { key, max: 2, ttl: "5 seconds" })).tryAcquire(1, { worker: "w" })
      )
      assert.strictEqual(fromPool._tag, "PoolConfigMismatch")
      assert.strictEqual(yield* server.cli("ZCARD", keysOf(key).leases), "1")
      assert.strictEqual(yield* server.cli("HGET", keysOf(key).meta, "fence"), fence)
      // ...and the others go on at once: no warm-up was started for them.
      const next = yield* store.acquire(short)
      assert.strictEqual(next._tag, "Granted", JSON.stringify(next))
      assert.strictEqual(yield* store.release({ key, lease: held.lease }), 1)
    })
  )

  it.live("after a data loss, replicas of one ttl never overlap; a shorter ttl can only as the README says", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const long = 1500
      // Asks every 10 ms from now on; answers when it was first granted.
      const firstGrant = (pool: SharedPool.SharedPool, worker: string) =>
        Effect.gen(function* () {
          const deadline = mono() + 5000
          while (mono() < deadline) {
            const got = yield* Effect.result(pool.tryAcquire(1, { worker: worker }))
            if (got._tag === "Success" && got.success) return mono()
            yield* Effect.sleep(10)
          }
          return yield* Effect.die(new Error(`${worker} was not granted in 5 s`))
        })
      // A holder of `key` (ttl `long`), its permit held until its lease is lost.
      const hold = (key: string) =>
        Effect.gen(function* () {
          const pool = yield* poolOn(store, { key, max: 1, ttl: long })
          yield* warm(store, { key, max: 1, ttl: long })
          const started = yield* Deferred.make<void>()
          const holding = yield* Effect.forkChild(
            pool.withPermit(Effect.andThen(Deferred.succeed(started, undefined), Effect.never), { worker: "holder" }),
            { startImmediately: true }
          )
          yield* Deferred.await(started)
          // Answers when the holder learnt of its loss.
          return Effect.map(Effect.flip(Fiber.join(holding)), (lost) => {
            assert.deepInclude(lost, { _tag: "LeaseLost", reason: "missing" })
            return mono()
          })
        })

      // The configuration the store accepts: every replica with one ttl.
      const lostSame = yield* hold("same")
      const same = yield* poolOn(store, { key: "same", max: 1, ttl: long })
      assert.isFalse(yield* same.tryAcquire(1, { worker: "same" }))
      assert.strictEqual(yield* server.cli("FLUSHALL"), "OK")
      const flushed = mono()
      const sameGrant = yield* Effect.forkChild(firstGrant(same, "same"), { startImmediately: true })
      const lostAt = yield* lostSame
      const sameAt = yield* Fiber.join(sameGrant)
      note("data loss, one ttl", { lostAfter: lostAt - flushed, grantedAfter: sameAt - flushed })
      // The holder learns at its next renewal, a third of its ttl after the loss at most...
      assert.isAtMost(lostAt - flushed, long / 3 + 150, "the holder stopped at its next renewal")
      // ...and the others wait a whole ttl: no overlap.
      assert.isAtLeast(sameAt, lostAt, "one ttl: no overlap")
      assert.isAtLeast(sameAt - flushed, long - 5)

      // A mis-deployment: a replica with a shorter ttl t. While the key's
      // record exists it is refused; right after a loss it may record its own
      // ttl first and be granted t later, while the holder (ttl T) works on
      // until its next renewal: an overlap of at most T / 3 - t (README).
      const lostOther = yield* hold("other")
      const shorter = yield* poolOn(store, { key: "other", max: 1, ttl: 100 })
      assert.strictEqual((yield* Effect.flip(shorter.tryAcquire(1, { worker: "short" })))._tag, "PoolConfigMismatch")
      assert.strictEqual(yield* server.cli("FLUSHALL"), "OK")
      const flushedAgain = mono()
      const shortGrant = yield* Effect.forkChild(firstGrant(shorter, "short"), { startImmediately: true })
      const otherLostAt = yield* lostOther
      const shortAt = yield* Fiber.join(shortGrant)
      note("data loss, shorter ttl", { lostAfter: otherLostAt - flushedAgain, grantedAfter: shortAt - flushedAgain })
      assert.isAtLeast(shortAt - flushedAgain, 100 - 5)
      assert.isAtMost(otherLostAt - flushedAgain, long / 3 + 150)
      assert.isAtMost(otherLostAt - shortAt, long / 3 - 100 + 150, "the overlap the README states")
    })
  )

  it.live(
    "out of memory (maxmemory, noeviction): acquires refused, even failing open; renewals and releases go on",
    () =>
      Effect.gen(function* () {
        const server = yield* RedisServer.scoped
        const { store } = yield* connect(server)
        const key = "oom"
        const options = { key, max: 3, ttl: 600 }
        yield* warm(store, options)
        const holder = yield* poolOn(store, { key, max: 3, ttl: 600 })
        const open = yield* poolOn(store, { key, max: 3, ttl: 600, onStoreError: "allow" })
        const started = yield* Deferred.make<void>()
        const work = yield* Effect.forkChild(
          holder.withPermit(Effect.andThen(Deferred.succeed(started, undefined), Effect.sleep(2000)), {
            worker: "long"
          }),
          { startImmediately: true }
        )
        yield* Deferred.await(started)
        const spare = yield* acquireGranted(store, options)

        // Fill Redis, then cap its memory below what it uses: every write that
        // needs memory is refused from now on.
        yield* server.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
        yield* server.cli(
          "EVAL",
          "for i = 1, 2000 do redis.call('SET', 'fill:' .. i, string.rep('x', 1000)) end return 1",
          "0"
        )
        const used = Number(/used_memory:(\d+)/.exec(yield* server.cli("INFO", "memory"))?.[1])
        yield* server.cli("CONFIG", "SET", "maxmemory", String(used - 200_000))
        assert.match(yield* server.cli("SET", "probe", "1"), /^OOM/, "Redis is out of memory")

        const refused = yield* Effect.flip(store.acquire(options))
        assert.deepInclude(refused, { _tag: "PoolStoreError", operation: "acquire", reason: "refused" })
        const ran: Array<string> = []
        const closed = yield* Effect.flip(
          holder.withPermit(
            Effect.sync(() => ran.push("closed")),
            { worker: "new" }
          )
        )
        const opened = yield* Effect.flip(
          open.withPermit(
            Effect.sync(() => ran.push("open")),
            { worker: "new" }
          )
        )
        assert.deepInclude(closed, { _tag: "PoolStoreError", reason: "refused" })
        assert.deepInclude(opened, { _tag: "PoolStoreError", reason: "refused" }, "fail open never overrules a refusal")
        assert.deepStrictEqual(ran, [])
        assert.strictEqual(yield* server.cli("ZCARD", keysOf(key).leases), "2", "nothing granted")

        // The holder renews through three ttls and finishes; a release frees its slot.
        assert.isTrue(yield* store.renew({ key, lease: spare.lease }))
        yield* Fiber.join(work)
        assert.strictEqual(yield* store.release({ key, lease: spare.lease }), 0)
        assert.strictEqual(yield* server.cli("ZCARD", keysOf(key).leases), "0")

        yield* server.cli("CONFIG", "SET", "maxmemory", "0")
        assert.isTrue(yield* open.tryAcquire(1, { worker: "after" }), "granted again once memory is back")
        yield* open.release(1, { worker: "after" })
      })
  )

  it.live("what a key leaves behind: a record that expires after a day idle, and nothing else for long", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const key = "leftover"
      const options = { key, max: 2, ttl: 300 }
      const keys = keysOf(key)
      // Two processes' worth of pools use the key and go away cleanly.
      yield* Effect.scoped(
        Effect.gen(function* () {
          const { store } = yield* connect(server)
          yield* warm(store, options)
          const pools = [yield* poolOn(store, options), yield* poolOn(store, options)]
          for (let round = 0; round < 3; round++) {
            yield* Effect.forEach(pools, (pool, i) => pool.withPermit(Effect.sleep(150), { worker: i }), {
              concurrency: 2
            })
          }
          // A crashed holder: a lease nobody gives back.
          yield* acquireGranted(store, options)
          // A release of a lease that was never granted leaves a tombstone.
          assert.strictEqual(yield* store.release({ key, lease: { id: "gone", fence: 0, ttl: 300 } }), -1)
        })
      )
      const pttl = (name: string) => Effect.map(server.cli("PTTL", name), Number)
      assert.strictEqual(yield* server.cli("ZCARD", keys.leases), "1", "the crashed holder's lease")
      assert.isAtMost(yield* pttl(keys.leases), 300)
      assert.isAbove(yield* pttl(keys.meta), 86_400_000 - 60_000)
      assert.isAtMost(yield* pttl(keys.meta), 86_400_000)
      assert.isAbove(yield* pttl(keys.tomb), 0)
      assert.isAtMost(yield* pttl(keys.tomb), 60_000)
      // Nobody touches the key again: its leases go with the last deadline.
      yield* Effect.sleep(400)
      assert.strictEqual(yield* server.cli("EXISTS", keys.leases), "0")
      assert.deepStrictEqual((yield* server.cli("KEYS", "*")).split("\n").sort(), [keys.meta, keys.tomb].sort())
    })
  )
})

// ---------------------------------------------------------------------------
// faults, across processes
// ---------------------------------------------------------------------------

// Heavy or whole-server faults, one at a time.
describe.runIf(Tools.available().redis)("SharedPool on Redis: load and crashes", suite, () => {
  it.live("8 processes x 6 fibers never hold more than max permits at once", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const max = 3
      const warming = yield* Effect.forkChild(warm(store, { key: "churn", max, ttl: TTL }), { startImmediately: true })
      const workers = yield* Effect.forEach(
        Array.from({ length: 8 }, (_, i) => i),
        (i) =>
          spawnWorker(server, {
            name: `p${i}`,
            key: "churn",
            max,
            ttl: TTL,
            timeout: 800,
            gate: true,
            scenario: { _tag: "churn", fibers: 6, duration: 6500, hold: [5, 450], backoff: [5, 40] }
          })
      )
      yield* Effect.forEach(workers, (worker) => worker.ready, { discard: true })
      yield* Fiber.join(warming)
      yield* Effect.forEach(workers, (worker) => worker.go, { discard: true })
      const done = yield* Effect.forEach(workers, (worker) => worker.waitFor(is("done"), startUp))
      for (const worker of workers) assert.strictEqual(yield* worker.exit(), 0, worker.diagnostics())

      const intervals = helds(workers)
      const overlap = maxOverlap(intervals)
      const grants = done.reduce((sum, d) => sum + d.grants, 0)
      const full = done.reduce((sum, d) => sum + (d.rejected.full ?? 0), 0)
      const lost = done.reduce((sum, d) => sum + d.lost, 0)
      const errors = done.reduce((sum, d) => sum + (d.errors.PoolStoreError ?? 0), 0)
      const summary = `grants ${grants}, full ${full}, overlap ${overlap.most}, lost ${lost}, store errors ${errors}`
      note("churn", summary)
      assert.isAtMost(overlap.most, max, `more than ${max} held at ${overlap.at}: ${summary}`)
      assert.strictEqual(overlap.most, max, `the pool was saturated: ${summary}`)
      assert.strictEqual(intervals.length, grants, "every grant was held and ended")
      assert.isAtLeast(grants, 40, summary)
      assert.isAtLeast(full, 100, summary)
      assert.isAtLeast(new Set(intervals.map((held) => held.process)).size, 6, "grants went to many processes")
      assert.isAtLeast(intervals.filter((held) => held.end - held.start > TTL / 3 + 50).length, 1, "some holds renewed")
      // A loaded machine may time a store call out or let a lease lapse; the
      // bound above must hold regardless, and every failure must be typed.
      const failures = workers.flatMap((worker) =>
        worker.events.filter((e) => e.event === "error" || e.event === "leaselost")
      )
      for (const failure of failures) {
        if (failure.event === "error") assert.strictEqual(failure.tag, "PoolStoreError", JSON.stringify(failure))
      }
    })
  )

  it.live("an acquire interrupted (or timed out) while Redis is paused leaves no lease behind", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server, { timeout: "800 millis" })
      const a = { key: "pause-a", max: 2, ttl: TTL }
      const b = { key: "pause-b", max: 1, ttl: TTL }
      yield* Effect.all([warm(store, a), warm(store, b)], { concurrency: "unbounded" })
      const pool = yield* SharedPool.make({ key: b.key, max: b.max, ttl: TTL }).pipe(
        Effect.provideService(PoolStore.PoolStore, store)
      )
      const fence = (key: string) => Effect.map(server.cli("HGET", keysOf(key).meta, "fence"), Number)
      const fencesBefore = { a: yield* fence(a.key), b: yield* fence(b.key) }

      assert.strictEqual(yield* server.cli("CLIENT", "PAUSE", "1500", "WRITE"), "OK")
      const paused = mono()
      const interrupted = yield* Effect.forkChild(store.acquire(a), { startImmediately: true })
      const timedOut = yield* Effect.forkChild(Effect.flip(store.acquire(a)), { startImmediately: true })
      const ran: Array<string> = []
      const poolCall = yield* Effect.forkChild(
        pool.withPermit(
          Effect.sync(() => ran.push("work")),
          { worker: "w" }
        ),
        {
          startImmediately: true
        }
      )
      yield* Effect.sleep(200)
      assert.isUndefined(interrupted.pollUnsafe(), "the acquire is in flight, held by the pause")
      assert.isUndefined(poolCall.pollUnsafe())
      const before = mono()
      yield* Fiber.interrupt(interrupted)
      yield* Fiber.interrupt(poolCall)
      assert.isAtMost(mono() - before, 100, "interruption does not wait for Redis")
      const error = yield* Fiber.join(timedOut)
      const timedOutAfter = mono() - paused
      note("paused: timed out after (ms)", timedOutAfter)
      assert.strictEqual(error._tag, "PoolStoreError")
      if (error._tag === "PoolStoreError") assert.strictEqual(error.operation, "acquire")
      assert.isAtLeast(timedOutAfter, 790)
      assert.isAtMost(timedOutAfter, 1100, "failed at the operation timeout, not at the end of the pause")
      assert.deepStrictEqual(ran, [])

      yield* Effect.sleep(Math.max(0, paused + 1500 + 300 - mono()))
      // The three acquires ran once Redis resumed (each took a fence) and were all released.
      assert.deepStrictEqual([yield* fence(a.key), yield* fence(b.key)], [fencesBefore.a + 2, fencesBefore.b + 1])
      assert.strictEqual(yield* server.cli("ZCARD", keysOf(a.key).leases), "0")
      assert.strictEqual(yield* server.cli("ZCARD", keysOf(b.key).leases), "0")
      assert.strictEqual((yield* store.acquire(a))._tag, "Granted")
      assert.strictEqual((yield* store.acquire(a))._tag, "Granted")
      assert.isTrue(yield* pool.tryAcquire(1, { worker: "again" }))
      yield* pool.release(1, { worker: "again" })
    })
  )

  it.live(
    "Redis killed (-9) and restarted: clients reconnect, scripts reload, a TTL of warm-up, never more than max",
    () =>
      Effect.gen(function* () {
        const server = yield* RedisServer.scoped
        const { store } = yield* connect(server, { timeout: "300 millis" })
        const max = 2
        const key = "restart"
        const { meta } = keysOf(key)
        const warming = yield* Effect.forkChild(warm(store, { key, max, ttl: TTL }), { startImmediately: true })
        const workers = yield* Effect.forEach(
          Array.from({ length: 4 }, (_, i) => i),
          (i) =>
            spawnWorker(server, {
              name: `r${i}`,
              key,
              max,
              ttl: TTL,
              timeout: 300,
              gate: true,
              scenario: { _tag: "churn", fibers: 4, duration: 4800, hold: [5, 300], backoff: [5, 30] }
            })
        )
        yield* Effect.forEach(workers, (worker) => worker.ready, { discard: true })
        yield* Fiber.join(warming)
        yield* Effect.forEach(workers, (worker) => worker.go, { discard: true })
        yield* Effect.sleep(1200)
        const fenceBefore = Number(yield* server.cli("HGET", meta, "fence"))
        assert.isAbove(helds(workers).length, 0, "grants before the crash")

        yield* server.kill9()
        const killed = mono()
        yield* Effect.sleep(300)
        const restarting = mono()
        yield* server.restart()
        // Every worker (and this process) reconnects: 4 + 1 clients, + redis-cli itself.
        const clients = Effect.map(server.cli("CLIENT", "LIST"), (list) => list.split("\n").length)
        // (Reconnecting is node-redis's business, not a bound of the pool's:
        // on a busy machine it may take a while.)
        yield* clients.pipe(
          Effect.repeat({ until: (n) => n >= 6, schedule: Schedule.spaced(20) }),
          Effect.timeoutOrElse({
            duration: startUp,
            orElse: () => Effect.die(new Error("the clients did not all reconnect"))
          })
        )

        const done = yield* Effect.forEach(workers, (worker) => worker.waitFor(is("done"), startUp))
        for (const worker of workers) assert.strictEqual(yield* worker.exit(), 0, worker.diagnostics())
        // The server's clock on the monotonic one: the new epoch started at `since`.
        const since = Number(yield* server.cli("HGET", meta, "since")) - (Date.now() - mono())
        const intervals = helds(workers)
        const afterCrash = intervals.filter((held) => held.start > killed + 50)
        const summary = JSON.stringify({ since: since - restarting, starts: afterCrash.map((h) => h.start - since) })

        const refused = workers.flatMap((worker) => worker.events.filter(is("warming"))).filter((w) => w.at > killed)
        note("restart", {
          summary,
          lost: done.map((d) => d.lost),
          errors: done.map((d) => d.errors),
          refused: refused.length
        })
        assert.isAtLeast(since, restarting - 5, "the new epoch began after the restart")
        assert.isAtLeast(afterCrash.length, 3, `grants resumed after the restart: ${summary}`)
        for (const held of afterCrash) {
          assert.isAtLeast(held.start, since + TTL - 5, `granted during the warm-up: ${summary}`)
        }
        assert.isAbove(refused.length, 0, "clients asked during the warm-up and were refused")
        assert.isAtMost(maxOverlap(intervals).most, max)
        assert.match(yield* server.cli("INFO", "errorstats"), /errorstat_NOSCRIPT:count=[1-9]/, "EVALSHA met NOSCRIPT")
        assert.isAbove(Number(yield* server.cli("HGET", meta, "fence")), fenceBefore, "fences keep increasing")
        for (const d of done) {
          assert.deepStrictEqual(
            Object.keys(d.errors).filter((tag) => tag !== "PoolStoreError"),
            []
          )
        }
      })
  )
})

// One or two holders each, on servers of their own: run side by side.
describe.runIf(Tools.available().redis).concurrent("SharedPool on Redis: holders, outages and clocks", suite, () => {
  it.live("a SIGKILLed holder's permit stays taken, then comes back within the TTL", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const options = { key: "killed", max: 1, ttl: TTL }
      const first = yield* store.acquire(options)
      assert.strictEqual(first._tag, "Warming")
      const holder = yield* spawnWorker(server, { name: "holder", ...options, scenario: { _tag: "hold" } })
      yield* holder.ready
      yield* holder.waitFor(is("granted"))
      // held well past one TTL: the holder renews it
      yield* Effect.sleep(TTL * 1.5)
      const stillHeld = yield* store.acquire(options)
      assert.deepInclude(stillHeld, { _tag: "Full", holders: 1 })

      yield* holder.signal("SIGKILL")
      yield* holder.exit()
      const killed = mono()
      const right = yield* store.acquire(options)
      assert.deepInclude(right, { _tag: "Full", holders: 1 }, "rejected right after the kill")
      if (right._tag === "Full") assert.isAtMost(right.retryAfter, TTL)

      const granted = yield* acquireGranted(store, options)
      const after = mono() - killed
      note("SIGKILL: granted again after (ms)", after)
      assert.isAtMost(after, TTL + 250, `the permit came back ${after} ms after the kill`)
      assert.isAtLeast(after, TTL / 2, `the permit was renewed before the kill, not freed early (${after} ms)`)
      assert.strictEqual(granted.holders, 1)
    })
  )

  it.live("a holder paused past its TTL loses its lease: LeaseLost, its work interrupted, the new holder kept", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const options = { key: "paused", max: 1, ttl: TTL }
      const { leases } = keysOf(options.key)
      const first = yield* store.acquire(options)
      assert.strictEqual(first._tag, "Warming")
      const paused = yield* spawnWorker(server, { name: "paused", ...options, scenario: { _tag: "hold" } })
      const next = yield* spawnWorker(server, { name: "next", ...options, gate: true, scenario: { _tag: "hold" } })
      yield* paused.ready
      yield* paused.waitFor(is("granted"))
      yield* next.ready
      yield* next.go
      yield* Effect.sleep(100)
      assert.isUndefined(next.events.find(is("granted")), "full while the first holder runs")

      yield* paused.signal("SIGSTOP")
      const stopped = mono()
      const granted = yield* next.waitFor(is("granted"), 5000)
      assert.isAtMost(granted.start - stopped, TTL + 300, "the slot freed within one TTL of the pause")
      yield* Effect.sleep(200)

      yield* paused.signal("SIGCONT")
      const resumed = mono()
      const lost = yield* paused.waitFor(is("leaselost"), 3000)
      const interrupted = yield* paused.waitFor(is("interrupted"), 3000)
      note("SIGSTOP", {
        grantedAfterStop: granted.start - stopped,
        lostAfterResume: lost.at - resumed,
        reason: lost.reason
      })
      assert.isAtMost(interrupted.at, lost.at, "the work was interrupted before LeaseLost was reported")
      assert.isAtMost(lost.at - resumed, 1000, "lost at once after resuming")
      assert.strictEqual(yield* paused.exit(), 0, paused.diagnostics())

      // The new holder keeps its lease: the old one's release touched nothing but its own.
      assert.strictEqual(yield* server.cli("ZCARD", leases), "1")
      assert.deepInclude(yield* store.acquire(options), { _tag: "Full", holders: 1 })
      yield* Effect.sleep(TTL + 100)
      assert.deepInclude(yield* store.acquire(options), { _tag: "Full", holders: 1 }, "and keeps renewing it")
      assert.isUndefined(next.events.find(is("leaselost")), next.diagnostics())
      assert.isUndefined(next.events.find(is("interrupted")), next.diagnostics())
    })
  )

  it.live(
    "Redis hung or down: a typed PoolStoreError within the timeout (fail closed); fail-open admits up to max",
    () =>
      Effect.gen(function* () {
        const server = yield* RedisServer.scoped
        const { store } = yield* connect(server, { timeout: "300 millis" })
        const options = { key: "down", max: 1, ttl: TTL }
        const lease = { id: "some-lease", fence: 1, ttl: TTL }
        const closed = yield* SharedPool.make({ key: options.key, max: 1, ttl: TTL }).pipe(
          Effect.provideService(PoolStore.PoolStore, store)
        )
        const open = yield* SharedPool.make({ key: options.key, max: 1, ttl: TTL, onStoreError: "allow" }).pipe(
          Effect.provideService(PoolStore.PoolStore, store)
        )
        const timed = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.map(Effect.timed(Effect.flip(effect)), ([duration, error]) => ({
            millis: Duration.toMillis(duration),
            error
          }))
        const expectStoreError = (
          label: string,
          result: { readonly millis: number; readonly error: unknown },
          operation: string,
          within: readonly [number, number]
        ) => {
          const error = result.error as PoolStore.PoolStoreError
          assert.strictEqual(error._tag, "PoolStoreError", `${label}: ${String(error)}`)
          assert.strictEqual(error.operation, operation, label)
          assert.isAtLeast(result.millis, within[0], `${label} took ${result.millis} ms`)
          assert.isAtMost(result.millis, within[1], `${label} took ${result.millis} ms`)
        }
        const ran: Array<string> = []

        // hung: connected, but no answer
        yield* server.signal("SIGSTOP")
        yield* Effect.gen(function* () {
          expectStoreError("acquire, hung", yield* timed(store.acquire(options)), "acquire", [295, 700])
          expectStoreError("renew, hung", yield* timed(store.renew({ key: options.key, lease })), "renew", [295, 700])
          expectStoreError(
            "release, hung",
            yield* timed(store.release({ key: options.key, lease })),
            "release",
            [295, 700]
          )
          const pooled = yield* timed(
            closed.withPermit(
              Effect.sync(() => ran.push("closed")),
              { worker: "w" }
            )
          )
          expectStoreError("withPermit, hung", pooled, "acquire", [295, 700])
          // fail-open: admitted without a lease, still bounded by max in this process
          const finish = yield* Deferred.make<void>()
          const admitted = yield* Effect.forkChild(
            open.withPermit(Effect.sync(() => ran.push("open")).pipe(Effect.andThen(Deferred.await(finish))), {
              worker: "a"
            }),
            { startImmediately: true }
          )
          yield* Effect.sleep(10).pipe(Effect.repeat({ until: () => ran.length > 0 }), Effect.timeout(2000))
          assert.deepStrictEqual(ran, ["open"])
          const second = yield* Effect.flip(
            open.withPermit(
              Effect.sync(() => ran.push("second")),
              { worker: "b" }
            )
          )
          assert.deepInclude(second, { _tag: "PoolRejected", reason: "full" })
          yield* Deferred.succeed(finish, undefined)
          yield* Fiber.join(admitted)
        }).pipe(Effect.ensuring(server.signal("SIGCONT")))

        // down: connection refused
        yield* server.kill9()
        expectStoreError("acquire, down", yield* timed(store.acquire(options)), "acquire", [0, 350])
        expectStoreError("release, down", yield* timed(store.release({ key: options.key, lease })), "release", [0, 350])
        expectStoreError(
          "withPermit, down",
          yield* timed(
            closed.withPermit(
              Effect.sync(() => ran.push("closed")),
              { worker: "w" }
            )
          ),
          "acquire",
          [0, 350]
        )
        assert.deepStrictEqual(ran, ["open"], "fail-closed never ran the work")
        const opened = yield* Effect.timed(
          open.withPermit(
            Effect.sync(() => ran.push("open again")),
            { worker: "c" }
          )
        )
        assert.deepStrictEqual(ran, ["open", "open again"])
        assert.isAtMost(Duration.toMillis(opened[0]), 350)
      })
  )

  const liveWithFaketime = it.live.runIf(Tools.available().faketime)
  liveWithFaketime("a client whose clock is 3 hours ahead cannot take a live holder's slot, nor lose its own", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      const { store } = yield* connect(server)
      const options = { key: "skew", max: 1, ttl: TTL }
      const first = yield* store.acquire(options)
      assert.strictEqual(first._tag, "Warming")
      const holder = yield* spawnWorker(server, { name: "holder", ...options, scenario: { _tag: "hold" } })
      const skewed = yield* spawnWorker(
        server,
        { name: "skewed", ...options, gate: true, scenario: { _tag: "try", tries: 4, interval: 300 } },
        { faketime: "+3h" }
      )
      const skewedHolder = yield* spawnWorker(
        server,
        { name: "skewed-holder", ...options, gate: true, scenario: { _tag: "hold" } },
        { faketime: "+3h" }
      )
      const ready = yield* skewed.ready
      assert.isAtLeast(ready.wall - Date.now(), 2.9 * 3600_000, "faketime moved the worker's clock")
      yield* skewedHolder.ready

      // a skewed client against a live holder
      yield* holder.ready
      yield* holder.waitFor(is("granted"))
      yield* skewed.go
      yield* skewed.waitFor(is("done"))
      assert.deepStrictEqual(
        skewed.events.filter(is("try")).map((t) => t.outcome),
        ["full", "full", "full", "full"],
        skewed.diagnostics()
      )
      assert.isUndefined(holder.events.find(is("leaselost")))

      // a skewed holder keeps its lease past its TTL
      yield* holder.signal("SIGKILL")
      yield* skewedHolder.go
      yield* skewedHolder.waitFor(is("granted"), 3000)
      yield* Effect.sleep(TTL + 100)
      assert.deepInclude(yield* store.acquire(options), { _tag: "Full", holders: 1 })
      assert.isUndefined(skewedHolder.events.find(is("leaselost")), skewedHolder.diagnostics())
    })
  )
})
