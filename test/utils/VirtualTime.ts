// Runs a program on a fresh TestClock and TestConsole. The program starts from
// a clock wake, one virtual milli in, because the TestClock waits for whatever
// a wake sets off, however finely the scheduler slices it, before it moves
// time on; a program forked directly could still be starting when time moves.
import { assert } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer } from "effect"
import { TestClock, TestConsole } from "effect/testing"

/** Starts `effect` and lets it run all it can at its start instant. */
export const start = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(Effect.delay(effect, "1 millis"))
    yield* TestClock.adjust("1 millis")
    return fiber
  })

/**
 * Runs `effect` to its end, failing the test unless it finishes within
 * `within` of virtual time. Returns its value and every line it printed.
 */
export const run = <A, E>(effect: Effect.Effect<A, E>, within: Duration.Input) =>
  Effect.gen(function* () {
    const fiber = yield* start(effect)
    yield* TestClock.adjust(within)
    assert.isDefined(fiber.pollUnsafe(), `still running after ${Duration.format(Duration.fromInputUnsafe(within))}`)
    return { value: yield* Fiber.join(fiber), lines: yield* TestConsole.logLines }
  }).pipe(Effect.provide(Layer.mergeAll(TestClock.layer(), Layer.fresh(TestConsole.layer))))
