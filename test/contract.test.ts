// One contract (test/utils/PoolContract.ts), every pool: the in-process pool,
// a shared pool on the memory store under the TestClock, and a shared pool on
// a real Redis on the real clock, for the parts where Redis adds something
// (its answers come after a round trip, and its leases must all come back).

import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Logger, References } from "effect"
import { CoroutinePool, PoolStore, SharedPool } from "../src/index.ts"
import * as PoolContract from "./utils/PoolContract.ts"
import * as RedisServer from "./utils/RedisServer.ts"
import * as Tools from "./utils/Tools.ts"

PoolContract.register({
  name: "CoroutinePool.make (in process)",
  make: ({ key: _, ...options }) => CoroutinePool.make(options),
  format: (event) => CoroutinePool.formatEvent(event as CoroutinePool.PoolEvent),
  test: (title, body) => it.effect(title, body),
  clock: "test",
  parts: PoolContract.parts,
  shared: false,
  handOff: "grant",
  answers: "at-once",
  figures: "own"
})

PoolContract.register<PoolStore.PoolStore>({
  name: "SharedPool.make on PoolStore.layerStoreMemory",
  make: (options) => SharedPool.make(options),
  format: SharedPool.formatEvent,
  // One store per test: a second pool of the key sees the first one's leases.
  test: (title, body) => it.effect(title, () => Effect.provide(body(), PoolStore.layerStoreMemory)),
  clock: "test",
  parts: PoolContract.parts,
  shared: true,
  handOff: "ask",
  answers: "at-once",
  figures: "own"
})

// Real time: short leases, and a waiting head asks again every 10 ms.
const ttl = 300

// The parts that need no TestClock or stepped scheduler.
const redisParts = PoolContract.parts.filter((part) => !PoolContract.handDriven.includes(part))

// NodeRedis warns on every reconnect attempt; keep the output to failures.
const quiet = Layer.merge(
  Logger.layer([Logger.withConsoleError(Logger.formatSimple)]),
  Layer.succeed(References.MinimumLogLevel, "Error")
)

// A server for the block, a store on it, and every key of the block warmed
// up (a key's first use refuses grants for one TTL), all at once.
const redisStore = Layer.effect(
  PoolStore.PoolStore,
  Effect.gen(function* () {
    const server = yield* RedisServer.scoped
    const context = yield* Layer.build(
      PoolStore.layerStoreRedis({ prefix: "contract" }).pipe(
        Layer.provide(NodeRedis.layer({ url: server.url, disableOfflineQueue: true })),
        Layer.provide(quiet)
      )
    )
    const store = Context.get(context, PoolStore.PoolStore)
    yield* Effect.forEach(
      PoolContract.keys(redisParts),
      ({ key, max }) =>
        Effect.gen(function* () {
          const first = yield* store.acquire({ key, max, ttl })
          assert.strictEqual(first._tag, "Warming", `first use of ${key} warms up`)
          if (first._tag === "Warming") yield* Effect.sleep(first.retryAfter + 5)
        }),
      { concurrency: "unbounded", discard: true }
    )
    return store
  })
)

describe.runIf(Tools.available().redis)("SharedPool.make on PoolStore.layerStoreRedis (real redis-server)", () => {
  layer(redisStore, { excludeTestServices: true })((it) => {
    PoolContract.register<PoolStore.PoolStore>({
      name: "Redis",
      make: (options) => SharedPool.make({ ...options, ttl, poll: "10 millis" }),
      format: SharedPool.formatEvent,
      test: (title, body) => it.effect(title, body),
      clock: "live",
      parts: redisParts,
      shared: true,
      handOff: "ask",
      answers: "later",
      // A release counts itself out at once, before the store's answer: for
      // one pool on a key, its figures are its own.
      figures: "own"
    })
  })
})
