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
// ARGV: 1 meta idle ms, then per request, in the order they were asked:
//       lease id, permits, max, ttl ms
// Reply: one answer per request: {'ok', fence, holders} | {'full', retryAfterMs, holders}
//        | {'warming', retryAfterMs} | {'cancelled'} | {'mismatch', 'max'|'ttl', stored}
//
// The acquires of one process that were due at once, in one call. They are
// answered first come, first served: once one does not fit, none after it is
// granted (a small request does not overtake a large one).
//
// A key's contract is its max and its ttl: the first acquire of an epoch
// records both and every later one must match, so every holder's lease lasts
// the same ttl and one TTL of warm-up after a data loss outlives every lease
// granted before it. (Version 0.2 recorded only `maxttl`, the largest ttl
// seen; it is still written, equal to ttl, so a 0.2 replica reads the record.)
export const ACQUIRE = `#!lua
${NOW}
${MEMBER}
local idle = tonumber(ARGV[1])
local answers = {}
local m = redis.call('HMGET', KEYS[2], 'max', 'ttl', 'since', 'maxttl')
if not m[1] then
  -- First use, or Redis lost its data: leases granted before the loss may still
  -- be held. Start a new epoch and refuse grants for one TTL (delayed restart).
  -- The fencing counter is seeded from the server clock (us) so tokens keep
  -- increasing across a data loss.
  local max, ttl = ARGV[4], ARGV[5]
  redis.call('HSET', KEYS[2], 'max', max, 'ttl', ttl, 'maxttl', ttl, 'since', now, 'fence', now * 1000)
  m = {max, ttl, tostring(now)}
end
local stored = m[2] or m[4]
if not m[2] then redis.call('HSET', KEYS[2], 'ttl', stored) end
-- The record outlives every lease (renewals refresh it too), then goes once
-- the key has been idle: the next use warms up as a first use does.
redis.call('PEXPIRE', KEYS[2], idle)
local ready = tonumber(m[3]) + tonumber(stored)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
local full = false
local granted = false
for r = 2, #ARGV, 4 do
  local id, permits, max, ttl = ARGV[r], tonumber(ARGV[r + 1]), tonumber(ARGV[r + 2]), tonumber(ARGV[r + 3])
  local dead = redis.call('ZSCORE', KEYS[3], id)
  if tonumber(m[1]) ~= max then
    answers[#answers + 1] = {'mismatch', 'max', m[1]}
  elseif tonumber(stored) ~= ttl then
    answers[#answers + 1] = {'mismatch', 'ttl', stored}
  elseif dead and tonumber(dead) > now then
    answers[#answers + 1] = {'cancelled'}
  elseif now < ready then
    answers[#answers + 1] = {'warming', ready - now}
  elseif full or n + permits > max then
    full = true
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    answers[#answers + 1] = {'full', tonumber(first[2] or (now + ttl)) - now, n}
  else
    for i = 1, permits do redis.call('ZADD', KEYS[1], now + ttl, member(id, i)) end
    n = n + permits
    granted = true
    answers[#answers + 1] = {'ok', redis.call('HINCRBY', KEYS[2], 'fence', 1), n}
  end
end
-- Every lease of the key lasts ttl, so the newest deadline is now + ttl: the
-- set goes by itself once the last lease has expired (a crashed holder's).
if granted then redis.call('PEXPIRE', KEYS[1], stored) end
return answers`

// KEYS: 1 leases, 2 meta, 3 tombstones.
// ARGV: 1 meta idle ms, 2 the key's channel, 3 how many releases, then per
//       release: lease id, permits it holds, how many go back (its last
//       members), tombstone ms; then per renewal: lease id, permits, ttl ms.
// Reply: {releases, renewals}: per release, holders left or -1 when the lease
//        was not held; per renewal, 1 renewed or 0 lost.
//
// Releases and renewals of one process that were due at once, in one call.
// A release removes only the caller's own lease (its id is unguessable).
// When it is not there (the acquire was interrupted before it ran, or the
// lease expired), a tombstone makes a late acquire of that id answer
// 'cancelled'. Tombstones are purged here, and the set expires with its
// newest one. A renewal never recreates a missing lease. When permits came
// free, the key's channel says so: processes with callers queued ask at once
// instead of at their next poll.
export const RETURN = `#!lua flags=allow-oom
${NOW}
${MEMBER}
local idle, releases = ARGV[1], tonumber(ARGV[3])
local released, renewed = {}, {}
local freed = false
local last = 3 + releases * 4
for r = 4, last, 4 do
  local id, permits, back, tomb = ARGV[r], tonumber(ARGV[r + 1]), tonumber(ARGV[r + 2]), ARGV[r + 3]
  local held = false
  for i = permits, permits - back + 1, -1 do
    if redis.call('ZREM', KEYS[1], member(id, i)) == 1 then held = true end
  end
  if held then
    freed = true
    released[#released + 1] = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
    redis.call('ZADD', KEYS[3], now + tonumber(tomb), id)
    redis.call('PEXPIRE', KEYS[3], tomb)
    released[#released + 1] = -1
  end
end
for r = last + 1, #ARGV, 3 do
  local id, permits, ttl = ARGV[r], tonumber(ARGV[r + 1]), ARGV[r + 2]
  local d = redis.call('ZSCORE', KEYS[1], id)
  if not d or tonumber(d) <= now then
    for i = 1, permits do redis.call('ZREM', KEYS[1], member(id, i)) end
    renewed[#renewed + 1] = 0
  else
    for i = 1, permits do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ttl), member(id, i)) end
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], idle)
    renewed[#renewed + 1] = 1
  end
end
if freed then redis.call('PUBLISH', ARGV[2], redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')) end
return {released, renewed}`

// The Redis keys of a pool: all in one hash slot (the part in braces), so a
// script may touch them together on a cluster. A prefix has no ':' (see
// `PoolStore.validateName`), so distinct prefix and key pairs never meet.
export const keysOf = (prefix: string, key: string) => {
  const slot = `{${prefix}:${key}}`
  return { leases: `${slot}:leases`, meta: `${slot}:meta`, tomb: `${slot}:tomb`, freed: `${slot}:freed` }
}

export type AcquireAnswer =
  | ["ok", number, number]
  | ["full", number, number]
  | ["warming", number]
  | ["cancelled"]
  | ["mismatch", "max" | "ttl", string]

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
