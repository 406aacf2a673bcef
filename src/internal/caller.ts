// A caller of a pool (asking for, waiting for or holding permits) and the
// lines it sits in. Only the engine (engine.ts) changes them.

import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { WorkerId } from "./errors.ts"

// Where a caller stands. Only the engine's transitions change it.
export const Waiting = 0
export const Granted = 1
// Asking a source for its permits, not queued (nobody was ahead of it).
export const Asking = 2
// Its permits came back (released or lost): nothing more to do.
export const Ended = 3
// Turned away (by its source's answer, the pool's close, a resize): `continuation`
// fails with what.
export const Refused = 4
export type Status = typeof Waiting | typeof Granted | typeof Asking | typeof Ended | typeof Refused

// The lines a caller may sit in.
export const Nowhere = 0
export const Queued = 1
export const Holding = 2
export const Scoped = 3
export type Place = typeof Nowhere | typeof Queued | typeof Holding | typeof Scoped

// A caller that asks for, waits for or holds permits. It sits in at most one
// line at a time (the queue, the fiber holders, the scoped holders), and each
// line is doubly linked, so leaving one (interruption, timeout, release) is
// O(1) wherever the caller stands. Kept small, since every queued fiber has
// one: its status, its place and its flags share one number.
export class Caller {
  // Status in bits 0-2, place in bits 3-4, then `wait`, `asking`, `gone`.
  private state = 0
  // Set once a queued caller's fiber has parked; cleared when it is woken.
  resume: ((effect: Effect.Effect<unknown, unknown>) => void) | undefined = undefined
  // What a woken caller goes on with: its work once granted, its failure
  // once turned away; `undefined`: it looks again at its status.
  continuation: Effect.Effect<unknown, unknown> | undefined
  prev: Caller | undefined = undefined
  next: Caller | undefined = undefined
  // When it queued, then when its hold began (millis of the pool's clock,
  // from the pool's start; `undefined`: its hold is not timed).
  since: number | undefined = undefined
  readonly worker: WorkerId
  permits: number
  // The caller's fiber: interrupted when the pool closes while it holds.
  readonly fiber: Fiber.Fiber<unknown, unknown> | undefined

  constructor(
    worker: WorkerId,
    permits: number,
    fiber: Fiber.Fiber<unknown, unknown> | undefined,
    continuation: Effect.Effect<unknown, unknown> | undefined
  ) {
    this.worker = worker
    this.permits = permits
    this.fiber = fiber
    this.continuation = continuation
  }

  get status(): Status {
    return (this.state & 7) as Status
  }
  set status(value: Status) {
    this.state = (this.state & ~7) | value
  }
  get place(): Place {
    return ((this.state >> 3) & 3) as Place
  }
  set place(value: Place) {
    this.state = (this.state & ~24) | (value << 3)
  }
  // Whether it may queue when nothing is free (its source answers later).
  get wait(): boolean {
    return (this.state & 32) !== 0
  }
  set wait(value: boolean) {
    this.state = value ? this.state | 32 : this.state & ~32
  }
  // A queued caller whose source is being asked for it (the head of the queue).
  get asking(): boolean {
    return (this.state & 64) !== 0
  }
  set asking(value: boolean) {
    this.state = value ? this.state | 64 : this.state & ~64
  }
  // Its fiber left (interrupted, timed out) while its source was being
  // asked: a grant that arrives goes straight back.
  get gone(): boolean {
    return (this.state & 128) !== 0
  }
  set gone(value: boolean) {
    this.state = value ? this.state | 128 : this.state & ~128
  }
}

/** A caller of a source that must be asked. */
export class Asker extends Caller {
  // Its place in the order of arrival (see `Engine.refused`).
  seq = 0
  // What the source granted (a lease), kept until the permits come back.
  grant: unknown = undefined
  // When a queued caller asks its source again (millis of the pool's `Clock`).
  due = 0
}

export class Line {
  head: Caller | undefined = undefined
  tail: Caller | undefined = undefined
  size = 0
  readonly place: Place

  constructor(place: Place) {
    this.place = place
  }

  push(caller: Caller): void {
    this.insertBefore(caller, undefined)
  }

  /** Puts `caller` before `next` (`undefined`: last). */
  insertBefore(caller: Caller, next: Caller | undefined): void {
    caller.place = this.place
    caller.next = next
    caller.prev = next === undefined ? this.tail : next.prev
    if (caller.prev === undefined) this.head = caller
    else caller.prev.next = caller
    if (next === undefined) this.tail = caller
    else next.prev = caller
    this.size++
  }

  remove(caller: Caller): void {
    if (caller.prev === undefined) this.head = caller.next
    else caller.prev.next = caller.next
    if (caller.next === undefined) this.tail = caller.prev
    else caller.next.prev = caller.prev
    caller.place = Nowhere
    caller.prev = undefined
    caller.next = undefined
    this.size--
  }
}
