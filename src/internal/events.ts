// What every pool publishes: one event per transition, and the tutorial's
// line for it.

import * as Schema from "effect/Schema"
import { WorkerId } from "./errors.ts"

export { WorkerId }

// Every worker event names the worker and the pool's figures right after it:
// permits taken, permits in force (the max at that moment) and waiters queued;
// and, when the worker asked for more than one, how many (`permits`).
export const transition = {
  worker: WorkerId,
  active: Schema.Int,
  max: Schema.Int,
  waiting: Schema.Int,
  permits: Schema.optional(Schema.Int)
}

export const Acquired = Schema.TaggedStruct("Acquired", transition)
export interface Acquired extends Schema.Schema.Type<typeof Acquired> {}

export const Rejected = Schema.TaggedStruct("Rejected", transition)
export interface Rejected extends Schema.Schema.Type<typeof Rejected> {}

export const Released = Schema.TaggedStruct("Released", transition)
export interface Released extends Schema.Schema.Type<typeof Released> {}

export const Queued = Schema.TaggedStruct("Queued", transition)
export interface Queued extends Schema.Schema.Type<typeof Queued> {}

export const TimedOut = Schema.TaggedStruct("TimedOut", transition)
export interface TimedOut extends Schema.Schema.Type<typeof TimedOut> {}

export const Abandoned = Schema.TaggedStruct("Abandoned", transition)
export interface Abandoned extends Schema.Schema.Type<typeof Abandoned> {}

export const Resized = Schema.TaggedStruct("Resized", {
  from: Schema.Int,
  max: Schema.Int,
  active: Schema.Int,
  waiting: Schema.Int
})
export interface Resized extends Schema.Schema.Type<typeof Resized> {}

export const PoolEvent = Schema.Union([Acquired, Rejected, Released, Queued, TimedOut, Abandoned, Resized])
export type PoolEvent = Acquired | Rejected | Released | Queued | TimedOut | Abandoned | Resized

// The events about one worker, and their tags.
export type WorkerEvent = Exclude<PoolEvent, Resized>
export type WorkerTag = WorkerEvent["_tag"]

const verbs: Record<WorkerTag, string> = {
  Acquired: "acquired",
  Rejected: "rejected",
  Released: "released",
  Queued: "queued",
  TimedOut: "timed out",
  Abandoned: "abandoned"
}

// The figures in brackets: the queue length only when someone waits, so a
// pool without waiting prints exactly the seed's lines.
export const figures = (event: { readonly active: number; readonly max: number; readonly waiting: number }) =>
  `${event.active}/${event.max} active${event.waiting > 0 ? `, ${event.waiting} waiting` : ""}`

// "Worker <id>: <verb> (<figures>)", the line of any worker event; a worker
// that asked for several permits says how many.
export const workerLine = (
  event: { readonly worker: WorkerId; readonly permits?: number | undefined } & Parameters<typeof figures>[0],
  verb: string
) => {
  const permits = event.permits === undefined || event.permits === 1 ? "" : weighted(verb, event.permits)
  return `Worker ${event.worker}: ${verb}${permits} (${figures(event)})`
}

// "acquired 3 permits", "queued for 3 permits".
const weighted = (verb: string, permits: number) =>
  verb === "acquired" || verb === "released" ? ` ${permits} permits` : ` for ${permits} permits`

export const formatEvent = (event: PoolEvent): string =>
  event._tag === "Resized"
    ? `Pool: resized from ${event.from} to ${event.max} (${figures(event)})`
    : workerLine(event, verbs[event._tag])
