/**
 * Admission control for Effect's HTTP router: each request runs under a
 * permit of a {@link CoroutinePool.CoroutinePool}, and a request the pool
 * turns away is answered `503 Service Unavailable` with a `Retry-After`
 * header.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Types from "effect/Types"
import * as CoroutinePool from "./CoroutinePool.ts"
import * as Decode from "./internal/options.ts"
import * as SharedPool from "./SharedPool.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Names the worker that asks the pool for a permit, as it appears in the
   * pool's events and errors. Default: the request method and the matched
   * route's pattern, such as `"GET /users/:id"`: one label per route, however
   * many distinct URLs it serves.
   */
  readonly worker?:
    | ((
        request: HttpServerRequest.HttpServerRequest,
        route: HttpRouter.Route<unknown, unknown>
      ) => CoroutinePool.WorkerId)
    | undefined
  /**
   * What the `Retry-After` header of a `503` tells the client, rounded up to
   * whole seconds. Default: 1 second. With a shared pool it is the most a
   * client is told to wait: the store's hint (when its earliest lease ends)
   * when that is sooner.
   */
  readonly retryAfter?: Duration.Input | undefined
}

/**
 * `layer` was given a `retryAfter` that is not a finite duration of zero or
 * more. `value` carries the offending value as given.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRetryAfter extends Schema.TaggedError<InvalidRetryAfter>()("InvalidRetryAfter", {
  value: Schema.Unknown
}) {
  override get message(): string {
    return `Invalid retryAfter: expected a finite duration of zero or more, such as "5 seconds", got ${String(this.value)}`
  }
}

/**
 * Route middleware that admits each request through the
 * {@link CoroutinePool.CoroutinePool} in the context, and answers `503` with
 * `Retry-After` when the pool turns it away.
 *
 * **When to use**
 *
 * Use to bound how many requests to some routes are handled at once: load
 * shedding, protecting a slow dependency, keeping latency in check under a
 * burst. Provide it to the routes it guards, and provide a pool to it. A pool
 * made with `maxWaiting: 0` rejects the excess at once; with `maxWaiting` (and
 * `maxWait`) requests queue in FIFO order, up to that many, for up to that
 * long, before they are turned away.
 *
 * **Details**
 *
 * Each request takes a permit before its handler runs, waiting in the pool's
 * queue exactly like `withPermit` (it uses `pool.acquire`, which shares that
 * queue and those reasons). If the pool turns it away, the handler does
 * not run (its body is not read) and the client gets:
 *
 * ```text
 * HTTP/1.1 503 Service Unavailable
 * Retry-After: 1
 * Content-Type: application/json
 *
 * {"error":"overloaded","reason":"queue-full"}
 * ```
 *
 * where `reason` is the `PoolRejected` reason: `"full"` (no queue),
 * `"queue-full"`, `"timeout"` (waited `maxWait`) or `"closed"` (the pool has
 * shut down).
 *
 * The permit is held by the request's scope, which Effect's HTTP server
 * closes once the response is done, not when the handler returns its
 * response object. With `NodeHttpServer` "done" means the whole body has
 * been handed to Node's `ServerResponse` and `end()` was called: for a
 * streamed body, after its last chunk was written (with backpressure), so a
 * slow stream keeps its permit until it ends; for an empty body or one under
 * 1 MiB, right after `end(body)` (the bytes may still sit in the socket's
 * buffer); for larger, raw (Node stream) and form-data bodies, once Node
 * reports the end written. Under `HttpRouter.toWebHandler` it is when the
 * Web `Response` is handed back, or, for a streamed body, when that stream
 * ends or is cancelled.
 *
 * So the pool's hold time (`coroutine_pool_hold_seconds`) is the time to
 * answer, and a WebSocket route holds its permit for as long as its handler
 * runs, which is usually the life of the connection.
 *
 * A client that disconnects interrupts its request: a waiting request leaves
 * the queue (the pool counts it abandoned), and a running one is interrupted
 * and its permit returned as the scope closes. The worker label defaults to
 * the method and route pattern (see {@link Options}).
 *
 * **Gotchas**
 *
 * This is route middleware on purpose: only the matched route's handler runs
 * interruptibly. Global middleware (`HttpRouter.middleware(..., { global:
 * true })`, `HttpRouter.serve(app, { middleware })`) runs uninterruptibly, so
 * a request queued there would keep waiting after its client had gone. For
 * the same reason a route added with `{ uninterruptible: true }` waits for its
 * permit even after the client has gone.
 *
 * The layer takes the pool from the context it is built in. To guard two
 * groups of routes with two pools, provide a pool layer to each group's
 * admission layer (two calls of `CoroutinePool.layer` make two pools); to use
 * a pool you already hold, provide `Layer.succeed(CoroutinePool.CoroutinePool,
 * pool)`. Fails with {@link InvalidRetryAfter} for a bad `retryAfter`.
 *
 * **Example** (Guarding a route)
 *
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { HttpRouter, HttpServerResponse } from "effect/http"
 * import { CoroutinePool, HttpAdmission } from "coroutine-pool"
 *
 * const Report = HttpRouter.add(
 *   "GET",
 *   "/report",
 *   Effect.sleep("1 second").pipe(Effect.as(HttpServerResponse.text("done")))
 * ).pipe(
 *   // at most 4 reports at once, 16 more may queue for up to 5 seconds
 *   Layer.provide(HttpAdmission.layer({ retryAfter: "5 seconds" })),
 *   Layer.provide(CoroutinePool.layer({ max: 4, maxWaiting: 16, maxWait: "5 seconds" }))
 * )
 *
 * // A route without the layer, such as a health check, is never turned away.
 * const Health = HttpRouter.add("GET", "/health", HttpServerResponse.text("ok"))
 *
 * const App = Layer.mergeAll(Report, Health)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<never, InvalidRetryAfter, CoroutinePool.CoroutinePool> =>
  HttpRouter.middleware(
    Effect.gen(function* () {
      const pool = yield* CoroutinePool.CoroutinePool
      return yield* admission(
        (worker) => pool.acquire(1, { worker }),
        (_, handler) => handler,
        options
      )
    })
  ).layer

/**
 * Like {@link layer}, with the permits of the program's shared pool (see
 * `SharedPool.layer`): one limit for the route across every replica.
 *
 * **Details**
 *
 * A rejected request's `Retry-After` is the store's hint (when the earliest
 * lease ends), rounded up to whole seconds, capped by `retryAfter`: a long
 * lease TTL never tells clients to stay away longer than configured. When the store cannot be reached the request is refused
 * (`503`, `{"error":"unavailable"}`): the pool fails closed unless it was made
 * with `onStoreError: "allow"`. The route's handler reads the request's lease
 * (and its fencing token) with `SharedPool.CurrentLease`.
 *
 * **Example** (One limit for a route across replicas)
 *
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Config, Effect, Layer } from "effect"
 * import { HttpRouter, HttpServerResponse } from "effect/http"
 * import { HttpAdmission, PoolStore, SharedPool } from "coroutine-pool"
 *
 * const Export = HttpRouter.add("POST", "/export", Effect.as(Effect.sleep("2 seconds"), HttpServerResponse.text("ok"))).pipe(
 *   Layer.provide(HttpAdmission.layerShared()),
 *   Layer.provide(SharedPool.layer({ key: "exports", max: 3 })),
 *   Layer.provide(PoolStore.layerStoreRedis()),
 *   Layer.provide(NodeRedis.layerConfig({ url: Config.String("REDIS_URL") }))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerShared = (options?: Options): Layer.Layer<never, InvalidRetryAfter, SharedPool.SharedPool> =>
  HttpRouter.middleware(
    Effect.gen(function* () {
      const pool = yield* SharedPool.SharedPool
      return yield* admission(
        (worker) => pool.acquire(1, { worker }),
        (lease, handler) =>
          lease === undefined ? handler : Effect.provideService(handler, SharedPool.CurrentLease, lease),
        options
      )
    })
  ).layer

type Handler = Effect.Effect<HttpServerResponse.HttpServerResponse, Types.unhandled>

// Takes a permit for each request with `acquire` (what it answers, a lease
// say, `provide` hands to the handler) and turns the refused away.
const admission = Effect.fnUntraced(function* <A, E extends { readonly _tag: string }>(
  acquire: (
    worker: CoroutinePool.WorkerId
  ) => Effect.Effect<A, CoroutinePool.PoolRejected | CoroutinePool.InvalidPermits | E, Scope.Scope>,
  provide: (acquired: A, handler: Handler) => Handler,
  options: Options | undefined
) {
  const retryAfter = yield* decodeRetryAfter(options?.retryAfter)
  const worker = options?.worker ?? routeLabel
  const refuse = (error: CoroutinePool.PoolRejected | CoroutinePool.InvalidPermits | E) => {
    if (!(error instanceof CoroutinePool.PoolRejected)) {
      return HttpServerResponse.jsonUnsafe(
        { error: "unavailable", reason: error._tag },
        { status: 503, headers: { "retry-after": retryAfter } }
      )
    }
    // The store's hint, when it has one, up to the configured value.
    const wait =
      error.retryAfter === undefined
        ? retryAfter
        : String(Math.min(Number(retryAfter), Math.max(0, Math.ceil(error.retryAfter / 1000))))
    return HttpServerResponse.jsonUnsafe(
      { error: "overloaded", reason: error.reason },
      { status: 503, headers: { "retry-after": wait } }
    )
  }
  return (httpEffect: Handler) =>
    Effect.contextWith((context: Context.Context<HttpServerRequest.HttpServerRequest | HttpRouter.RouteContext>) => {
      const request = Context.get(context, HttpServerRequest.HttpServerRequest)
      const { route } = Context.get(context, HttpRouter.RouteContext)
      // `acquire` ties the permit to the request's scope (the current
      // `Scope`), which the server closes after the response is written
      // or the request is interrupted.
      return Effect.matchEffect(acquire(worker(request, route)), {
        onFailure: (error) => Effect.succeed(refuse(error)),
        onSuccess: (acquired) => provide(acquired, httpEffect)
      })
    })
})

const routeLabel = (request: HttpServerRequest.HttpServerRequest, route: HttpRouter.Route<unknown, unknown>) =>
  `${request.method} ${route.path}`

// The header carries whole seconds, rounded up: "1.2 seconds" tells the
// client to wait 2 rather than too little.
const decodeRetryAfter = (input: Duration.Input | undefined): Effect.Effect<string, InvalidRetryAfter> => {
  const millis = Decode.millis(input ?? "1 second", { min: 0, max: Number.MAX_SAFE_INTEGER })
  return millis === undefined
    ? Effect.fail(new InvalidRetryAfter({ value: input }))
    : Effect.succeed(String(Math.ceil(millis / 1000)))
}
