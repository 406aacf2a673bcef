// Leases kept in this process, judged by Effect's `Clock` (so `TestClock`
// drives it). Nothing is lost unless the process is, so it never warms up.

import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { PoolConfigMismatch } from "./errors.ts"
import { type Admission, checkRequest, type Lease, type Store } from "./store.ts"

interface MemoryEntry {
  readonly max: number
  readonly ttl: number
  fence: number
  // lease id -> its deadline (millis of the store's clock) and permits
  readonly leases: Map<string, { deadline: number; permits: number }>
}

// The permits held by the leases of an entry.
const held = (entry: MemoryEntry) => {
  let permits = 0
  for (const lease of entry.leases.values()) permits += lease.permits
  return permits
}

export const make = (): Store => {
  const entries = new Map<string, MemoryEntry>()
  let ids = 0
  const purge = (entry: MemoryEntry, now: number) => {
    for (const [id, lease] of entry.leases) if (lease.deadline <= now) entry.leases.delete(id)
  }
  return {
    acquire: ({ key, max, permits = 1, ttl }) => {
      const invalid = checkRequest(key, max, ttl, permits)
      if (invalid !== undefined) return Effect.fail(invalid)
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        let entry = entries.get(key)
        if (entry === undefined) {
          entry = { max, ttl, fence: 0, leases: new Map() }
          entries.set(key, entry)
        }
        if (entry.max !== max) {
          return Effect.fail(new PoolConfigMismatch({ key, option: "max", stored: entry.max, requested: max }))
        }
        if (entry.ttl !== ttl) {
          return Effect.fail(new PoolConfigMismatch({ key, option: "ttl", stored: entry.ttl, requested: ttl }))
        }
        purge(entry, now)
        const holders = held(entry)
        if (holders + permits > max) {
          let earliest = Number.POSITIVE_INFINITY
          for (const lease of entry.leases.values()) if (lease.deadline < earliest) earliest = lease.deadline
          return Effect.succeed<Admission>({ _tag: "Full", holders, retryAfter: earliest - now })
        }
        const lease: Lease =
          permits === 1
            ? { id: `lease-${++ids}`, fence: ++entry.fence, ttl }
            : { id: `lease-${++ids}`, fence: ++entry.fence, ttl, permits }
        entry.leases.set(lease.id, { deadline: now + ttl, permits })
        return Effect.succeed<Admission>({ _tag: "Granted", lease, holders: holders + permits })
      })
    },
    renew: ({ key, lease }) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const leases = entries.get(key)?.leases
        const held = leases?.get(lease.id)
        if (leases === undefined || held === undefined) return false
        if (held.deadline <= now) {
          leases.delete(lease.id)
          return false
        }
        held.deadline = now + lease.ttl
        return true
      }),
    // Part of a lease (`permits` of them) may go back; the rest stays held.
    release: ({ key, lease, permits }) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = entries.get(key)
        const held_ = entry?.leases.get(lease.id)
        if (entry === undefined || held_ === undefined) return -1
        if (permits === undefined || permits >= held_.permits) entry.leases.delete(lease.id)
        else held_.permits -= permits
        purge(entry, now)
        return held(entry)
      })
  }
}
