// What a shared pool publishes besides every pool's events, and their lines.
// Apart from the lease source so that a reader of events (the timeline)
// need not load the store.

import * as Schema from "effect/Schema"
import { figures, formatEvent, PoolEvent, transition, workerLine } from "./events.ts"

export const Lost = Schema.TaggedStruct("Lost", transition)
export interface Lost extends Schema.Schema.Type<typeof Lost> {}

export const Warming = Schema.TaggedStruct("Warming", {
  retryAfter: Schema.Number,
  active: Schema.Int,
  max: Schema.Int,
  waiting: Schema.Int
})
export interface Warming extends Schema.Schema.Type<typeof Warming> {}

export const SharedEvent = Schema.Union([...PoolEvent.members, Lost, Warming])
export type SharedEvent = PoolEvent | Lost | Warming

export const formatShared = (event: SharedEvent): string => {
  switch (event._tag) {
    case "Lost":
      return workerLine(event, "lost its lease")
    case "Warming":
      return `Pool: the store is warming up, no grants for ${event.retryAfter} ms (${figures(event)})`
    default:
      return formatEvent(event)
  }
}
