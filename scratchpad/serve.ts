// An HTTP server whose /work route is guarded by HttpAdmission: at most
// POOL_MAX requests sleep at once, up to POOL_MAX_WAITING more queue, and the
// rest get 503 with Retry-After. /metrics (not guarded) shows the pool's
// Prometheus metrics. Ctrl-C (SIGINT) or SIGTERM shuts it down.
//
//   npm run serve                      # or: PORT=8080 POOL_MAX=2 npx node scratchpad/serve.ts
//   curl 'http://127.0.0.1:3000/work?ms=500'
//   curl http://127.0.0.1:3000/metrics
//
// test/http.test.ts starts `Main` on port 0 and drives it with real requests.
import { createServer } from "node:http"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { runMain } from "@effect/platform-node/NodeRuntime"
import { Config, ConfigProvider, Effect, Layer, Schema } from "effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import { CoroutinePool, HttpAdmission } from "../src/index.ts"

const WorkParams = Schema.Struct({
  ms: Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 600_000 })).pipe(
    Schema.withDecodingDefault(Effect.succeed("100"))
  )
})

// GET /work?ms=N sleeps N ms (default 100) and answers
// {"slept":N,"running":k}, where k counts the /work handlers running at the
// moment it started, itself included: never more than the pool's max.
// A bad `ms` is a 400.
const Work = HttpRouter.use((router) => {
  let running = 0
  const enter = Effect.sync(() => ++running)
  const leave = Effect.sync(() => void running--)
  return router.add(
    "GET",
    "/work",
    Effect.gen(function* () {
      const { ms } = yield* HttpRouter.schemaParams(WorkParams)
      const seen = yield* Effect.acquireUseRelease(
        enter,
        (seen) => Effect.as(Effect.sleep(ms), seen),
        () => leave
      )
      return HttpServerResponse.jsonUnsafe({ slept: ms, running: seen })
    })
  )
}).pipe(Layer.provide(HttpAdmission.layer({ retryAfter: "1 second" })))

/** The routes: `/work` under admission, `/metrics` outside it. Needs a pool. */
export const App = Layer.mergeAll(Work, PrometheusMetrics.layerHttp({ path: "/metrics" }))

// The pool reads POOL_MAX, POOL_MAX_WAITING, POOL_MAX_WAIT and POOL_NAME;
// whatever is unset falls back to these.
const Pool = CoroutinePool.layerConfig().pipe(
  Layer.provide(
    ConfigProvider.layerAdd(ConfigProvider.fromUnknown({ POOL_MAX: 4, POOL_MAX_WAITING: 16, POOL_NAME: "work" }))
  )
)

/**
 * The whole server: 127.0.0.1 at `PORT` (default 3000; 0 picks a free port)
 * and the pool. The pool and the `HttpServer` (its bound address) stay
 * visible to whatever the layer is provided to.
 */
export const Main = HttpRouter.serve(App, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(Pool),
  Layer.provideMerge(
    NodeHttpServer.layerConfig(createServer, {
      host: Config.succeed("127.0.0.1"),
      port: Config.Int("PORT").pipe(Config.withDefault(3000))
    })
  )
)

if (import.meta.main) {
  // Logs "Listening on http://127.0.0.1:3000". `runMain` interrupts on
  // SIGINT/SIGTERM: the server stops accepting, lets the requests in flight
  // (queued ones too) finish, then the pool closes.
  Layer.launch(HttpServer.withLogAddress(Main)).pipe(runMain)
}
