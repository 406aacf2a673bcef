import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Logger, Queue, References } from "effect"
import { Redis } from "effect/persistence"
import * as PoolStore from "../src/PoolStore.ts"
import * as SharedPool from "../src/SharedPool.ts"
import * as RedisServer from "./utils/RedisServer.ts"
import { is, maxOverlap, mono, relayRound, spawnWorker, type Worker } from "./utils/RedisWorkers.ts"
import * as Tools from "./utils/Tools.ts"

// Shared pools at scale against a real redis-server: wake-ups pushed across
// processes, Redis load that does not grow with the callers queued, and many
// processes draining one queue. Bounds here prove a mechanism (a wake-up is
// pushed, not polled; the load is per process, not per caller) with room for
// a busy machine; the benchmark (`npm run bench -- --redis`) measures the
// figures themselves.

const TTL = 1000

// REDIS_TEST_VERBOSE=1 prints the figures behind the assertions.
const note = (label: string, value: unknown) => {
  if (process.env.REDIS_TEST_VERBOSE) console.log(`${label}: ${JSON.stringify(value)}`)
}

const quiet = Layer.merge(
  Logger.layer([Logger.withConsoleError(Logger.formatSimple)]),
  Layer.succeed(References.MinimumLogLevel, "Error")
)

// A store connected to `server`, for this scope.
const connect = (server: RedisServer.RedisServer) =>
  Effect.map(
    Layer.build(
      PoolStore.layerStoreRedis({ prefix: "t", timeout: "500 millis" }).pipe(
        Layer.provideMerge(NodeRedis.layer({ url: server.url, disableOfflineQueue: true })),
        Layer.provide(quiet)
      )
    ),
    (context) => Context.get(context, PoolStore.PoolStore)
  )

// First use of a key: Warming for one TTL. Waits it out.
const warm = (server: RedisServer.RedisServer, key: string, max: number) =>
  Effect.gen(function* () {
    const store = yield* connect(server)
    const first = yield* store.acquire({ key, max, ttl: TTL })
    if (first._tag === "Warming") yield* Effect.sleep(first.retryAfter + 5)
    return store
  })

// Every command Redis has run so far, those run by scripts included.
const commands = (server: RedisServer.RedisServer) =>
  Effect.map(server.cli("INFO", "commandstats"), (info) =>
    [...info.matchAll(/calls=(\d+)/g)].reduce((sum, [, calls]) => sum + Number(calls), 0)
  )

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0

const suite = { timeout: 120_000 }

afterAll(() => {
  assert.deepStrictEqual(RedisServer.running(), [], "every redis-server this file started was stopped")
})

describe.runIf(Tools.available().redis).concurrent("shared pools at scale, on Redis", suite, () => {
  it.live("a permit freed in one process reaches a caller queued in another at once, not at its next poll", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      yield* warm(server, "relay", 1)
      // A poll of 30 s: only a pushed wake-up can hand the permit over sooner.
      const relay = (name: string) =>
        spawnWorker(server, {
          name,
          key: "relay",
          max: 1,
          ttl: TTL,
          poll: 30_000,
          maxWaiting: 1,
          scenario: { _tag: "relay", rounds: 12 }
        })
      const holder = yield* relay("holder")
      const waiter = yield* relay("waiter")
      yield* holder.ready
      yield* waiter.ready
      // Each round: the holder takes the permit, the waiter queues for it
      // (30 ms to ask and hear it is full: setup, not measured), the holder
      // releases; from the release to the waiter's work.
      const latencies: Array<number> = []
      for (let round = 1; round <= 12; round++) latencies.push(yield* relayRound(holder, waiter, round))
      note(
        "hand-off latencies ms",
        latencies.map((ms) => Math.round(ms * 10) / 10)
      )
      // Polling would take 30 s a round; a wake-up takes a round trip or two.
      assert.isBelow(median(latencies), 250, JSON.stringify(latencies))
      assert.isBelow(Math.max(...latencies), 2000, JSON.stringify(latencies))
      assert.isTrue(
        latencies.every((ms) => ms >= 0),
        JSON.stringify(latencies)
      )
    }).pipe(Effect.scoped)
  )

  it.live("1,000 callers queued in one process keep Redis load flat: the head asks, the others wait", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      yield* warm(server, "crowd", 1)
      // The permit is held elsewhere (another pool, another connection), so
      // the crowd's head has to ask the store.
      const elsewhere = yield* SharedPool.make({ key: "crowd", max: 1, ttl: TTL }).pipe(
        Effect.provideService(PoolStore.PoolStore, yield* connect(server))
      )
      const pool = yield* SharedPool.make({ key: "crowd", max: 1, ttl: TTL, maxWaiting: 1000 }).pipe(
        Effect.provideService(PoolStore.PoolStore, yield* connect(server))
      )
      const holder = yield* Effect.forkChild(elsewhere.withPermit(Effect.never, { worker: "holder" }), {
        startImmediately: true
      })
      for (let at = mono(); (yield* elsewhere.active) < 1; ) {
        if (mono() - at > 10_000) assert.fail("the holder was never granted")
        yield* Effect.sleep(5)
      }
      const queued = yield* Effect.forkChild(
        Effect.forEach(
          Array.from({ length: 1000 }, (_, i) => i),
          (i) => pool.withPermit(Effect.void, { worker: i }),
          { concurrency: "unbounded", discard: true }
        ),
        { startImmediately: true }
      )
      // Settled: the first has asked, heard the pool is full and queued too.
      yield* Effect.sleep(200)
      assert.strictEqual((yield* pool.stats).waiting, 1000)
      const before = yield* commands(server)
      const start = mono()
      yield* Effect.sleep(2000)
      const perSecond = (((yield* commands(server)) - before) * 1000) / (mono() - start)
      note("Redis commands/s with 1,000 queued", Math.round(perSecond))
      // The holder's renewals and the head's ask at each fallback poll (1 s):
      // a few scripts a second, whatever the crowd (our INFO calls included).
      assert.isAtMost(perSecond, 100)
      assert.strictEqual((yield* pool.stats).waiting, 1000)
      // Then every one of them is served, in order, as the permit comes back.
      yield* Fiber.interrupt(holder)
      yield* Fiber.join(queued)
      const stats = yield* pool.stats
      assert.deepStrictEqual([stats.acquired, stats.released, stats.waiting, stats.active], [1000, 1000, 0, 0])
    }).pipe(Effect.scoped)
  )

  it.live("a lost subscription: a queued caller polls every poll until it is back, then is woken again", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      yield* warm(server, "lossy", 1)
      // The waiter's store subscribes through a Redis service whose
      // subscriptions the test can fail, and keep failing, at will.
      let broken = false
      const live: Array<Queue.Queue<Redis.RedisMessage, Redis.RedisError>> = []
      const lossy = Layer.effect(
        Redis.Redis,
        Effect.map(Redis.Redis, (real) =>
          Redis.Redis.of({
            ...real,
            subscribe: (channel) =>
              Effect.gen(function* () {
                const mine = yield* Queue.unbounded<Redis.RedisMessage, Redis.RedisError>()
                if (broken) {
                  yield* Queue.fail(mine, new Redis.RedisError({ cause: new Error("subscription refused") }))
                  return mine
                }
                const messages = yield* real.subscribe(channel)
                yield* Effect.forkScoped(
                  Effect.forever(Effect.flatMap(Queue.take(messages), (m) => Queue.offer(mine, m)))
                )
                live.push(mine)
                return mine
              })
          })
        )
      ).pipe(Layer.provide(NodeRedis.layer({ url: server.url, disableOfflineQueue: true })))
      const waiterStore = Context.get(
        yield* Layer.build(
          PoolStore.layerStoreRedis({ prefix: "t", timeout: "500 millis" }).pipe(
            Layer.provide(lossy),
            Layer.provide(quiet)
          )
        ),
        PoolStore.PoolStore
      )
      const holderStore = yield* connect(server)
      // poll 300 ms: the fallback while wake-ups are pushed is then 1 s.
      const options = { key: "lossy", max: 1, ttl: TTL, maxWaiting: 1, poll: 300 }
      const holder = yield* SharedPool.make(options).pipe(Effect.provideService(PoolStore.PoolStore, holderStore))
      const waiter = yield* SharedPool.make(options).pipe(Effect.provideService(PoolStore.PoolStore, waiterStore))
      // One hand-off from the holder to a queued waiter: its latency.
      const handOff = Effect.gen(function* () {
        const release = yield* Deferred.make<void>()
        let released = 0
        const holding = yield* Effect.forkChild(
          holder.withPermit(
            Effect.ensuring(
              Deferred.await(release),
              Effect.sync(() => {
                released = mono()
              })
            )
          ),
          { startImmediately: true }
        )
        while ((yield* holder.active) < 1) yield* Effect.sleep(5)
        let granted = 0
        const waiting = yield* Effect.forkChild(
          waiter.withPermit(
            Effect.sync(() => {
              granted = mono()
            })
          ),
          { startImmediately: true }
        )
        // The waiter asks, hears the pool is full and queues (setup).
        yield* Effect.sleep(100)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holding)
        yield* Fiber.join(waiting)
        return granted - released
      })
      const pushed = yield* handOff
      // The subscription fails and cannot be taken again: the waiter polls.
      broken = true
      for (const queue of live.splice(0)) {
        yield* Queue.fail(queue, new Redis.RedisError({ cause: new Error("connection lost") }))
      }
      yield* Effect.sleep(50)
      const polled = [yield* handOff, yield* handOff]
      // It comes back (the store subscribes again, with a backoff up to 2 s).
      broken = false
      yield* Effect.sleep(2500)
      const again = yield* handOff
      note("hand-off ms: pushed, polled, pushed again", [pushed, ...polled, again].map(Math.round))
      assert.isBelow(pushed, 150)
      // Polled every 300 ms, not at the 1 s fallback: the channel is known down.
      for (const ms of polled) assert.isBelow(ms, 900)
      assert.isBelow(again, 150)
      assert.isTrue(live.length > 0, "subscribed again")
    }).pipe(Effect.scoped)
  )

  it.live("4 processes x 50 queued callers drain one key without ever holding more than max", () =>
    Effect.gen(function* () {
      const server = yield* RedisServer.scoped
      yield* warm(server, "drain", 8)
      const workers: Array<Worker> = []
      for (const name of ["a", "b", "c", "d"]) {
        workers.push(
          yield* spawnWorker(server, {
            name,
            key: "drain",
            max: 8,
            ttl: TTL,
            maxWaiting: 50,
            gate: true,
            scenario: { _tag: "queue", fibers: 50, hold: 20 }
          })
        )
      }
      for (const worker of workers) yield* worker.ready
      for (const worker of workers) yield* worker.go
      for (const worker of workers) yield* worker.waitFor(is("done"), 60_000)
      const held = workers.flatMap((worker) => worker.events.filter(is("held")))
      assert.strictEqual(held.length, 200)
      // Never more than max at once across the four processes.
      assert.isAtMost(maxOverlap(held).most, 8)
      const span = Math.max(...held.map((h) => h.end)) - Math.min(...held.map((h) => h.start))
      note("drain: ms, ideal ms", [Math.round(span), (200 * 20) / 8])
    }).pipe(Effect.scoped)
  )
})
