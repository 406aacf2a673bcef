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

// A command over many items (Lua's unpack has a limit), in chunks of an even
// size so that (score, member) pairs stay together; answers the replies joined.
const CHUNKED = `local function chunked(command, key, flag, items)
  local replies = {}
  for i = 1, #items, 1000 do
    local chunk = {}
    for j = i, math.min(i + 999, #items) do chunk[#chunk + 1] = items[j] end
    local reply
    if flag then reply = redis.call(command, key, flag, unpack(chunk)) else reply = redis.call(command, key, unpack(chunk)) end
    if type(reply) == 'table' then for _, v in ipairs(reply) do replies[#replies + 1] = v end end
  end
  return replies
end`

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
${CHUNKED}
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
-- Tombstones are rare: looked up only when there are some.
local tombs = redis.call('EXISTS', KEYS[3]) == 1
local full = false
-- Grants are written together: one ZADD, one HINCRBY for their fences.
local members, granted = {}, {}
for r = 2, #ARGV, 4 do
  local id, permits, max, ttl = ARGV[r], tonumber(ARGV[r + 1]), tonumber(ARGV[r + 2]), tonumber(ARGV[r + 3])
  local dead = tombs and redis.call('ZSCORE', KEYS[3], id)
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
    for i = 1, permits do
      members[#members + 1] = now + ttl
      members[#members + 1] = member(id, i)
    end
    n = n + permits
    granted[#granted + 1] = #answers + 1
    answers[#answers + 1] = {'ok', 0, n}
  end
end
if #granted > 0 then
  chunked('ZADD', KEYS[1], nil, members)
  local last = redis.call('HINCRBY', KEYS[2], 'fence', #granted)
  for j, a in ipairs(granted) do answers[a][2] = last - #granted + j end
  -- Every lease of the key lasts ttl, so the newest deadline is now + ttl:
  -- the set goes by itself once the last lease has expired (a crashed holder's).
  redis.call('PEXPIRE', KEYS[1], stored)
end
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
${CHUNKED}
local idle, releases = ARGV[1], tonumber(ARGV[3])
local last = 3 + releases * 4
-- Which leases are held, in one lookup of each one's first member: the
-- releases', then the renewals'.
local ids = {}
for r = 4, last, 4 do ids[#ids + 1] = ARGV[r] end
for r = last + 1, #ARGV, 3 do ids[#ids + 1] = ARGV[r] end
local deadlines = chunked('ZMSCORE', KEYS[1], nil, ids)
local released, renewed = {}, {}
local gone, tombs = {}, false
for k = 1, releases do
  local r = 4 + (k - 1) * 4
  local id, permits, back, tomb = ARGV[r], tonumber(ARGV[r + 1]), tonumber(ARGV[r + 2]), ARGV[r + 3]
  if deadlines[k] then
    for i = permits, permits - back + 1, -1 do gone[#gone + 1] = member(id, i) end
    released[k] = 0
  else
    -- Not there: the acquire was interrupted before it ran, or the lease
    -- expired. A tombstone makes a late acquire of that id answer 'cancelled'.
    if not tombs then
      tombs = true
      redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
    end
    redis.call('ZADD', KEYS[3], now + tonumber(tomb), id)
    redis.call('PEXPIRE', KEYS[3], tomb)
    released[k] = -1
  end
end
chunked('ZREM', KEYS[1], nil, gone)
local renewing, lost = {}, {}
local ttl = nil
for r = last + 1, #ARGV, 3 do
  local id, permits = ARGV[r], tonumber(ARGV[r + 1])
  local d = deadlines[#renewed + 1 + releases]
  ttl = ARGV[r + 2]
  if not d or tonumber(d) <= now then
    -- Never recreated: what is left of a lease that expired goes.
    for i = 1, permits do lost[#lost + 1] = member(id, i) end
    renewed[#renewed + 1] = 0
  else
    for i = 1, permits do
      renewing[#renewing + 1] = now + tonumber(ttl)
      renewing[#renewing + 1] = member(id, i)
    end
    renewed[#renewed + 1] = 1
  end
end
chunked('ZREM', KEYS[1], nil, lost)
if #renewing > 0 then
  chunked('ZADD', KEYS[1], 'XX', renewing)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], idle)
end
if #gone > 0 then
  -- Holders left once the batch's releases are done, for each one held.
  local left = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
  for k = 1, releases do if released[k] == 0 then released[k] = left end end
  -- Permits came free: processes with callers queued ask at once.
  redis.call('PUBLISH', ARGV[2], left)
end
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
