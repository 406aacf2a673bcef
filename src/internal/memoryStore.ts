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
  // lease id -> deadline (millis of the store's clock)
  readonly leases: Map<string, number>
}

export const make = (): Store => {
  const entries = new Map<string, MemoryEntry>()
  let ids = 0
  const purge = (entry: MemoryEntry, now: number) => {
    for (const [id, deadline] of entry.leases) if (deadline <= now) entry.leases.delete(id)
  }
  return {
    acquire: ({ key, max, ttl }) => {
      const invalid = checkRequest(key, max, ttl)
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
        if (entry.leases.size >= max) {
          let earliest = Number.POSITIVE_INFINITY
          for (const deadline of entry.leases.values()) if (deadline < earliest) earliest = deadline
          return Effect.succeed<Admission>({ _tag: "Full", holders: entry.leases.size, retryAfter: earliest - now })
        }
        const lease: Lease = { id: `lease-${++ids}`, fence: ++entry.fence, ttl }
        entry.leases.set(lease.id, now + ttl)
        return Effect.succeed<Admission>({ _tag: "Granted", lease, holders: entry.leases.size })
      })
    },
    renew: ({ key, lease }) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const leases = entries.get(key)?.leases
        const deadline = leases?.get(lease.id)
        if (leases === undefined || deadline === undefined) return false
        if (deadline <= now) {
          leases.delete(lease.id)
          return false
        }
        leases.set(lease.id, now + lease.ttl)
        return true
      }),
    release: ({ key, lease }) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = entries.get(key)
        if (entry === undefined || !entry.leases.delete(lease.id)) return -1
        purge(entry, now)
        return entry.leases.size
      })
  }
}
