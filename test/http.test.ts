import { createServer } from "node:http"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, type Duration, Effect, Exit, Fiber, Latch, Layer, Metric, Schedule, Stream } from "effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { Main } from "../scratchpad/serve.ts"
import { CoroutinePool, HttpAdmission, PoolStore, SharedPool } from "../src/index.ts"

// The example server (scratchpad/serve.ts) on a free loopback port, driven by
// real HTTP requests from node's fetch. Every wait is a poll of the pool's
// stats for a condition, never a fixed sleep, so a loaded machine only makes
// the tests slower.

// Main with nothing from the environment but PORT=0 (the pool takes the
// example's defaults: max 4, 16 waiting, named "work"), and its own metric
// registry, so /metrics shows this server's pool only.
const testMain = () =>
  Main.pipe(
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ PORT: "0" }))),
    Layer.provide(Layer.succeed(Metric.MetricRegistry, new Map()))
  )

const baseUrl = Effect.map(HttpServer.HttpServer, (server) => HttpServer.formatAddress(server.address))

interface Reply {
  readonly status: number
  readonly retryAfter: string | null
  readonly body: unknown
}

const get = (url: string, signal?: AbortSignal) =>
  Effect.promise(async (): Promise<Reply> => {
    const response = await fetch(url, signal === undefined ? {} : { signal })
    const text = await response.text()
    return {
      status: response.status,
      retryAfter: response.headers.get("retry-after"),
      body: response.headers.get("content-type")?.startsWith("application/json") ? JSON.parse(text) : text
    }
  })

// Polls until `predicate` holds for the pool's stats, for up to 20 seconds.
const statsWhen = (predicate: (stats: CoroutinePool.PoolStats) => boolean) =>
  Effect.flatMap(CoroutinePool.CoroutinePool, (pool) => pool.stats).pipe(
    Effect.repeat({ until: predicate, schedule: Schedule.spaced("10 millis") }),
    Effect.timeout("20 seconds")
  )

// The value of one sample of the Prometheus text, or the sum of all samples
// of `name` whose labels include `labels`.
const metric = (text: string, name: string, labels: Record<string, string> = {}): number => {
  let sum = 0
  let found = false
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const sampleLabels = new Map(Array.from((match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g), (m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([key, value]) => sampleLabels.get(key) === value)) {
      sum += Number(match[3])
      found = true
    }
  }
  assert.isTrue(found, `no sample of ${name} ${JSON.stringify(labels)} in:\n${text}`)
  return sum
}

const scrape = (base: string) =>
  Effect.map(get(`${base}/metrics`), (reply) => {
    assert.strictEqual(reply.status, 200)
    const text = String(reply.body)
    const pool = { pool: "work" }
    return {
      active: metric(text, "coroutine_pool_active", pool),
      waiting: metric(text, "coroutine_pool_waiting", pool),
      acquired: metric(text, "coroutine_pool_acquired_total", pool),
      rejected: metric(text, "coroutine_pool_rejected_total", pool),
      queueFull: metric(text, "coroutine_pool_rejected_total", { ...pool, reason: "queue-full" }),
      released: metric(text, "coroutine_pool_released_total", pool),
      abandoned: metric(text, "coroutine_pool_abandoned_total", pool)
    }
  })

describe("the example server under HttpAdmission", () => {
  it.live("300 concurrent requests: never more than max at once, every one 200 or 503, /metrics counts them all", () =>
    Effect.gen(function* () {
      const base = yield* baseUrl
      const { max, maxWaiting } = yield* statsWhen(() => true)
      const replies = yield* Effect.forEach(Array.from({ length: 300 }), () => get(`${base}/work?ms=300`), {
        concurrency: "unbounded"
      })

      const ok = replies.filter((reply) => reply.status === 200)
      const overloaded = replies.filter((reply) => reply.status === 503)
      assert.strictEqual(ok.length + overloaded.length, replies.length, "every reply is 200 or 503")
      // The first max + maxWaiting to arrive are all served (no maxWait):
      // the rest of 300 cannot all fit.
      assert.isAtLeast(ok.length, max + maxWaiting)
      assert.isAbove(overloaded.length, 0)
      // Each handler reports how many /work handlers ran when it started,
      // itself included; the last to start of any overlapping set sees them all.
      const running = ok.map((reply) => (reply.body as { readonly running: number }).running)
      for (const [i, reply] of ok.entries()) assert.deepStrictEqual(reply.body, { slept: 300, running: running[i] })
      assert.isAtLeast(Math.min(...running), 1)
      assert.strictEqual(Math.max(...running), max, "the pool was saturated and never exceeded")
      for (const reply of overloaded) {
        assert.strictEqual(reply.retryAfter, "1")
        assert.deepStrictEqual(reply.body, { error: "overloaded", reason: "queue-full" })
      }

      const stats = yield* statsWhen((stats) => stats.active === 0 && stats.released === stats.acquired)
      const scraped = yield* scrape(base)
      assert.deepStrictEqual(scraped, {
        active: 0,
        waiting: 0,
        acquired: ok.length,
        rejected: overloaded.length,
        queueFull: overloaded.length,
        released: ok.length,
        abandoned: 0
      })
      assert.deepStrictEqual([stats.acquired, stats.rejected], [ok.length, overloaded.length])
    }).pipe(Effect.provide(testMain()))
  )

  it.live("clients that disconnect, queued or holding, give their permits back", () =>
    Effect.gen(function* () {
      const base = yield* baseUrl
      const { max } = yield* statsWhen(() => true)
      // max requests hold a permit for a minute, max more queue behind them.
      const start = (n: number) =>
        Effect.forEach(Array.from({ length: n }), () =>
          Effect.gen(function* () {
            const client = new AbortController()
            const fiber = yield* Effect.forkChild(get(`${base}/work?ms=60000`, client.signal), {
              startImmediately: true
            })
            return { client, fiber }
          })
        )
      const holding = yield* start(max)
      yield* statsWhen((stats) => stats.active === max)
      const queued = yield* start(max)
      yield* statsWhen((stats) => stats.waiting === max)

      // Queued first, so that no permit is handed to a request about to go.
      for (const { client } of queued) client.abort()
      let stats = yield* statsWhen((stats) => stats.waiting === 0)
      assert.deepStrictEqual([stats.active, stats.abandoned], [max, max])
      for (const { client } of holding) client.abort()
      stats = yield* statsWhen((stats) => stats.active === 0)
      assert.deepStrictEqual([stats.acquired, stats.released], [max, max])
      for (const { fiber } of [...holding, ...queued]) {
        assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber)), "the fetch was aborted")
      }

      // The interrupted handlers have ended: a new request runs alone.
      assert.deepStrictEqual(yield* get(`${base}/work?ms=10`), {
        status: 200,
        retryAfter: null,
        body: { slept: 10, running: 1 }
      })
      yield* statsWhen((stats) => stats.released === stats.acquired)
      const scraped = yield* scrape(base)
      assert.deepStrictEqual(scraped, {
        active: 0,
        waiting: 0,
        acquired: max + 1,
        rejected: 0,
        queueFull: 0,
        released: max + 1,
        abandoned: max
      })
    }).pipe(Effect.provide(testMain()))
  )
})

describe("HttpAdmission", () => {
  // A streamed response whose last chunk waits for `finish`, on one permit
  // with no queue.
  const streaming = (finish: Latch.Latch, options?: HttpAdmission.Options) =>
    HttpRouter.serve(
      HttpRouter.add(
        "GET",
        "/stream/:id",
        HttpServerResponse.stream(
          Stream.concat(Stream.make("first "), Stream.fromEffect(Effect.as(finish.await, "last"))).pipe(
            Stream.encodeText
          )
        )
      ).pipe(Layer.provide(HttpAdmission.layer(options))),
      { disableLogger: true, disableListenLog: true }
    ).pipe(
      Layer.provideMerge(CoroutinePool.layer({ max: 1 })),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 }))
    )

  it.live("holds the permit until the body is written, not until the handler returns", () =>
    Effect.gen(function* () {
      const finish = yield* Latch.make()
      yield* Effect.gen(function* () {
        const base = yield* baseUrl
        const pool = yield* CoroutinePool.CoroutinePool
        const events = yield* pool.subscribe
        const collected = yield* Stream.runCollect(Stream.take(events, 3)).pipe(
          Effect.forkChild({ startImmediately: true })
        )
        // fetch resolves on the headers; the handler has long returned.
        const response = yield* Effect.promise(() => fetch(`${base}/stream/1`))
        assert.strictEqual(response.status, 200)
        assert.strictEqual((yield* pool.stats).active, 1)
        const rejected = yield* get(`${base}/stream/2`)
        assert.deepStrictEqual(rejected, {
          status: 503,
          retryAfter: "3",
          body: { error: "overloaded", reason: "full" }
        })

        yield* finish.open
        assert.strictEqual(yield* Effect.promise(() => response.text()), "first last")
        yield* statsWhen((stats) => stats.active === 0)
        // The worker label is the route's pattern, not the URL.
        assert.deepStrictEqual(
          Array.from(yield* Fiber.join(collected), (event) => [event._tag, "worker" in event && event.worker]),
          [
            ["Acquired", "GET /stream/:id"],
            ["Rejected", "GET /stream/:id"],
            ["Released", "GET /stream/:id"]
          ]
        )
      }).pipe(
        // On a failed assertion too, so the server's shutdown need not wait for the stream.
        Effect.ensuring(finish.open),
        Effect.provide(streaming(finish, { retryAfter: "2.5 seconds" }))
      )
    })
  )

  it.live("a bad retryAfter fails the layer", () =>
    Effect.gen(function* () {
      const finish = yield* Latch.make()
      for (const retryAfter of ["-1 second", "Infinity"] as const) {
        const exit = yield* Effect.exit(Layer.build(streaming(finish, { retryAfter })))
        assert.isTrue(Exit.isFailure(exit))
        assert.include(String(Exit.isFailure(exit) && exit.cause), "InvalidRetryAfter")
      }
    })
  )
})

describe("HttpAdmission.layerShared", () => {
  // A route under a shared pool of one permit, served by a web handler (no
  // socket): the store is shared with `other`, a second "replica" of the pool.
  const serve = (store: Layer.Layer<PoolStore.PoolStore>, retryAfter: Duration.Input = "10 seconds") =>
    Effect.acquireRelease(
      Effect.sync(() =>
        HttpRouter.toWebHandler(
          HttpRouter.add("GET", "/export", Effect.succeed(HttpServerResponse.text("done"))).pipe(
            Layer.provide(HttpAdmission.layerShared({ retryAfter })),
            Layer.provide(SharedPool.layer({ key: "exports", max: 1, ttl: "5 seconds" })),
            Layer.provide(store)
          ),
          { disableLogger: true }
        )
      ),
      ({ dispose }) => Effect.promise(dispose)
    )
  const get = (handler: (request: Request) => Promise<Response>) =>
    Effect.promise(async () => {
      const response = await handler(new Request("http://localhost/export"))
      return { status: response.status, retryAfter: response.headers.get("retry-after"), body: await response.text() }
    })

  it.live(
    "another replica holding the only permit: 503 with the store's retry hint up to retryAfter; store down: 503 unavailable",
    () =>
      Effect.gen(function* () {
        const store = yield* Layer.build(PoolStore.layerStoreMemory)
        const shared = Layer.succeedContext(store)
        const other = yield* SharedPool.make({ key: "exports", max: 1, ttl: "5 seconds" }).pipe(Effect.provide(shared))
        const { handler } = yield* serve(shared)
        assert.deepStrictEqual(yield* get(handler), { status: 200, retryAfter: null, body: "done" })
        assert.isTrue(yield* other.tryAcquire(1, { worker: "replica-2" }))
        // The lease ends in 5 s: under a cap of 10 s, the hint.
        assert.deepStrictEqual(yield* get(handler), {
          status: 503,
          retryAfter: "5",
          body: '{"error":"overloaded","reason":"full"}'
        })
        // Over a cap of 1 s, the cap.
        const capped = yield* serve(shared, "1 second")
        assert.deepStrictEqual(yield* get(capped.handler), {
          status: 503,
          retryAfter: "1",
          body: '{"error":"overloaded","reason":"full"}'
        })
        yield* other.release(1, { worker: "replica-2" })
        assert.strictEqual((yield* get(handler)).status, 200)

        const down = Layer.succeed(
          PoolStore.PoolStore,
          PoolStore.PoolStore.of({
            acquire: ({ key }) =>
              Effect.fail(
                new PoolStore.PoolStoreError({ key, operation: "acquire", reason: "unavailable", detail: "down" })
              ),
            renew: () => Effect.succeed(false),
            release: () => Effect.succeed(-1)
          })
        )
        const unreachable = yield* serve(down, "1 second")
        assert.deepStrictEqual(yield* get(unreachable.handler), {
          status: 503,
          retryAfter: "1",
          body: '{"error":"unavailable","reason":"PoolStoreError"}'
        })
      }).pipe(Effect.scoped)
  )

  it.live("the route's handler reads the request's lease and its fencing token", () =>
    Effect.gen(function* () {
      const store = Layer.succeedContext(yield* Layer.build(PoolStore.layerStoreMemory))
      const fence = Effect.map(SharedPool.CurrentLease, (lease) => HttpServerResponse.text(`fence ${lease?.fence}`))
      const { dispose, handler } = HttpRouter.toWebHandler(
        HttpRouter.add("GET", "/export", fence).pipe(
          Layer.provide(HttpAdmission.layerShared()),
          Layer.provide(SharedPool.layer({ key: "exports", max: 1, ttl: "5 seconds" })),
          Layer.provide(store)
        ),
        { disableLogger: true }
      )
      yield* Effect.addFinalizer(() => Effect.promise(dispose))
      // Under the middleware it read `undefined`: each request has a lease of its own.
      assert.deepStrictEqual(yield* get(handler), { status: 200, retryAfter: null, body: "fence 1" })
      assert.deepStrictEqual(yield* get(handler), { status: 200, retryAfter: null, body: "fence 2" })
    }).pipe(Effect.scoped)
  )
})
