// The module functions of `CoroutinePool` (`withPermit(pool)`, ...): each one
// calls the pool's method of the same name, data-first or data-last. They
// live here so that the public module is its types and its documentation;
// it re-exports each with its type (`typeof`), so the API is unchanged.

import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { InvalidPermits, PermitNotHeld, PoolRejected } from "./errors.ts"
import type { Api, PermitOptions } from "./pool.ts"

// Any pool: its methods are all these functions call.
type CoroutinePool<E, Event> = Api<E, Event>

/** What marks a pool (`CoroutinePool.TypeId`): it tells a pool from a count of permits below. */
export const TypeId = "~coroutine-pool/CoroutinePool" as const

const isPool = (u: unknown): u is CoroutinePool<unknown, unknown> => typeof u === "object" && u !== null && TypeId in u

export const withPermit: {
  <P>(
    pool: CoroutinePool<P, unknown>,
    options?: PermitOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PoolRejected | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    options?: PermitOptions
  ): Effect.Effect<A, E | PoolRejected | P, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R, P>(self: Effect.Effect<A, E, R>, pool: CoroutinePool<P, unknown>, options?: PermitOptions) =>
    pool.withPermit(self, options)
)

export const withPermits: {
  <P>(
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PoolRejected | InvalidPermits | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ): Effect.Effect<A, E | PoolRejected | InvalidPermits | P, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ) => pool.withPermits(permits, options)(self)
)

export const withPermitIfAvailable: {
  <P>(
    pool: CoroutinePool<P, unknown>,
    options?: PermitOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<Option.Option<A>, E | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    options?: PermitOptions
  ): Effect.Effect<Option.Option<A>, E | P, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R, P>(self: Effect.Effect<A, E, R>, pool: CoroutinePool<P, unknown>, options?: PermitOptions) =>
    pool.withPermitIfAvailable(self, options)
)

export const withPermitsIfAvailable: {
  <P>(
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<Option.Option<A>, E | InvalidPermits | P, R>
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ): Effect.Effect<Option.Option<A>, E | InvalidPermits | P, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R, P>(
    self: Effect.Effect<A, E, R>,
    pool: CoroutinePool<P, unknown>,
    permits: number,
    options?: PermitOptions
  ) => pool.withPermitsIfAvailable(permits, options)(self)
)

export const acquire: {
  (
    permits?: number,
    options?: PermitOptions
  ): <P>(pool: CoroutinePool<P, unknown>) => Effect.Effect<void, PoolRejected | InvalidPermits | P, Scope.Scope>
  <P>(
    pool: CoroutinePool<P, unknown>,
    permits?: number,
    options?: PermitOptions
  ): Effect.Effect<void, PoolRejected | InvalidPermits | P, Scope.Scope>
} = dual(
  (args) => isPool(args[0]),
  <P>(pool: CoroutinePool<P, unknown>, permits?: number, options?: PermitOptions) => pool.acquire(permits, options)
)

export const tryAcquire: {
  (
    permits?: number,
    options?: PermitOptions
  ): <P>(pool: CoroutinePool<P, unknown>) => Effect.Effect<boolean, InvalidPermits | P>
  <P>(
    pool: CoroutinePool<P, unknown>,
    permits?: number,
    options?: PermitOptions
  ): Effect.Effect<boolean, InvalidPermits | P>
} = dual(
  (args) => isPool(args[0]),
  <P>(pool: CoroutinePool<P, unknown>, permits?: number, options?: PermitOptions) => pool.tryAcquire(permits, options)
)

export const release: {
  (
    permits?: number,
    options?: PermitOptions
  ): <P>(pool: CoroutinePool<P, unknown>) => Effect.Effect<void, PermitNotHeld | InvalidPermits | P>
  <P>(
    pool: CoroutinePool<P, unknown>,
    permits?: number,
    options?: PermitOptions
  ): Effect.Effect<void, PermitNotHeld | InvalidPermits | P>
} = dual(
  (args) => isPool(args[0]),
  <P>(pool: CoroutinePool<P, unknown>, permits?: number, options?: PermitOptions) => pool.release(permits, options)
)
