// The Redis side of the lease store: one Lua script per operation, so each
// operation is one atomic round trip. Every caller value reaches a script as
// KEYS or ARGV, never spliced into its text.
//
// Each script starts with a Redis 7 shebang that declares its flags. Without
// `allow-oom`, Redis refuses a script before it runs while it is out of
// memory (`maxmemory` with `noeviction`); an undeclared script would be let
// in and stopped only at its first write that needs memory, after the
// writes before it. So an acquire is refused whole under OOM (fail closed),
// while renewals and releases, which free memory or keep it level, go on:
// work in progress keeps its lease.

import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import type { Redis } from "effect/persistence"

// The server's clock in integer milliseconds. Every deadline is judged by it,
// never by a client's clock. Redis 7 replicates script effects, so TIME may be
// called before writes.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

// A lease of n permits is n members of the leases set: its id, then id#2 ..
// id#n, all with one deadline, so the set's size is the permits held.
const MEMBER = `local function member(id, i) if i == 1 then return id end return id .. '#' .. i end`

// KEYS: 1 leases (ZSET member -> deadline ms), 2 meta (HASH max, ttl, since, fence),
//       3 tombstones (ZSET lease id -> expiry ms)
// ARGV: 1 lease id, 2 max, 3 ttl ms, 4 meta idle ms, 5 permits
// Reply: {'ok', fence, holders} | {'full', retryAfterMs, holders} | {'warming', retryAfterMs}
//        | {'cancelled'} | error 'MISMATCH max|ttl <stored>'
//
// A key's contract is its max and its ttl: the first acquire of an epoch
// records both and every later one must match, so every holder's lease lasts
// the same ttl and one TTL of warm-up after a data loss outlives every lease
// granted before it. (Version 0.2 recorded only `maxttl`, the largest ttl
// seen; it is still written, equal to ttl, so a 0.2 replica reads the record.)
export const ACQUIRE = `#!lua
${NOW}
${MEMBER}
local id, max, ttl, idle = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local permits = tonumber(ARGV[5] or '1')
local m = redis.call('HMGET', KEYS[2], 'max', 'ttl', 'since', 'maxttl')
if not m[1] then
  -- First use, or Redis lost its data: leases granted before the loss may still
  -- be held. Start a new epoch and refuse grants for one TTL (delayed restart).
  -- The fencing counter is seeded from the server clock (us) so tokens keep
  -- increasing across a data loss.
  redis.call('HSET', KEYS[2], 'max', max, 'ttl', ttl, 'maxttl', ttl, 'since', now, 'fence', now * 1000)
  m = {tostring(max), tostring(ttl), tostring(now)}
end
if tonumber(m[1]) ~= max then return redis.error_reply('MISMATCH max ' .. m[1]) end
local stored = m[2] or m[4]
if tonumber(stored) ~= ttl then return redis.error_reply('MISMATCH ttl ' .. stored) end
if not m[2] then redis.call('HSET', KEYS[2], 'ttl', ttl) end
-- The record outlives every lease (renewals refresh it too), then goes once
-- the key has been idle: the next use warms up as a first use does.
redis.call('PEXPIRE', KEYS[2], idle)
-- Tombstones are purged by RELEASE, which writes them; here a lookup suffices.
local dead = redis.call('ZSCORE', KEYS[3], id)
if dead and tonumber(dead) > now then return {'cancelled'} end
local ready = tonumber(m[3]) + ttl
if now < ready then return {'warming', ready - now} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n + permits > max then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {'full', tonumber(first[2] or ttl) - now, n}
end
for i = 1, permits do redis.call('ZADD', KEYS[1], now + ttl, member(id, i)) end
-- Every lease of the key lasts ttl, so the newest deadline is now + ttl: the
-- set goes by itself once the last lease has expired (a crashed holder's).
redis.call('PEXPIRE', KEYS[1], ttl)
return {'ok', redis.call('HINCRBY', KEYS[2], 'fence', 1), n + permits}`

// KEYS: 1 leases, 2 meta. ARGV: 1 lease id, 2 ttl ms, 3 meta idle ms, 4 permits.
// Never recreates a missing lease. Reply: 1 renewed | 0 lost
export const RENEW = `#!lua flags=allow-oom
${NOW}
${MEMBER}
local id, permits = ARGV[1], tonumber(ARGV[4] or '1')
local d = redis.call('ZSCORE', KEYS[1], id)
if not d or tonumber(d) <= now then
  for i = 1, permits do redis.call('ZREM', KEYS[1], member(id, i)) end
  return 0
end
for i = 1, permits do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), member(id, i)) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`

// KEYS: 1 leases, 2 tombstones. ARGV: 1 lease id, 2 tombstone ms, 3 permits
// the lease holds, 4 how many go back (its last members; all by default).
// Removes only the caller's own lease (its id is unguessable). When it is not
// there (the acquire was interrupted before it ran, or the lease expired), a
// tombstone makes a late acquire of that id answer 'cancelled'. Tombstones
// are purged here, and the set expires with its newest one.
// Reply: holders left | -1 when the lease was not held
export const RELEASE = `#!lua flags=allow-oom
${NOW}
${MEMBER}
local id, permits = ARGV[1], tonumber(ARGV[3] or '1')
local back = tonumber(ARGV[4] or ARGV[3] or '1')
local held = false
for i = permits, permits - back + 1, -1 do
  if redis.call('ZREM', KEYS[1], member(id, i)) == 1 then held = true end
end
if held then return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf') end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return -1`

// The Redis keys of a pool: all in one hash slot (the part in braces), so a
// script may touch them together on a cluster. A prefix has no ':' (see
// `PoolStore.validateName`), so distinct prefix and key pairs never meet.
export const keysOf = (prefix: string, key: string) => {
  const slot = `{${prefix}:${key}}`
  return { leases: `${slot}:leases`, meta: `${slot}:meta`, tomb: `${slot}:tomb` }
}

export type AcquireReply = ["ok", number, number] | ["full", number, number] | ["warming", number] | ["cancelled"]

/**
 * A script sent in one round trip: `EVALSHA` of the locally computed SHA1,
 * falling back to `EVAL` (which runs and caches it) on `NOSCRIPT`: on first
 * use, or after the server restarted. `Redis.eval` would send a `SCRIPT LOAD`
 * first, a second round trip.
 */
export const script = <A>(redis: Redis.Redis["Service"], lua: string, numberOfKeys: number) => {
  const sha = createHash("sha1").update(lua).digest("hex")
  const count = String(numberOfKeys)
  return (...keysThenArgs: ReadonlyArray<string>): Effect.Effect<A, Redis.RedisError> =>
    redis.send<A>("EVALSHA", sha, count, ...keysThenArgs).pipe(
      Effect.catchIf(
        (error) => String(error.cause).includes("NOSCRIPT"),
        () => redis.send<A>("EVAL", lua, count, ...keysThenArgs)
      )
    )
}
