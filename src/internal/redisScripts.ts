// The Redis side of the lease store: one Lua script per operation, so each
// operation is one atomic round trip. Every caller value reaches a script as
// KEYS or ARGV, never spliced into its text.

import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import type { Redis } from "effect/persistence"

// The server's clock in integer milliseconds. Every deadline is judged by it,
// never by a client's clock. Redis 7 replicates script effects, so TIME may be
// called before writes.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

// KEYS: 1 leases (ZSET lease id -> deadline ms), 2 meta (HASH max, since, maxttl, fence),
//       3 tombstones (ZSET lease id -> expiry ms)
// ARGV: 1 lease id, 2 max, 3 ttl ms, 4 tombstone ms
// Reply: {'ok', fence, holders} | {'full', retryAfterMs, holders} | {'warming', retryAfterMs}
//        | {'cancelled'} | error 'MAXMISMATCH <stored>'
export const ACQUIRE = `${NOW}
local id, max, ttl, tomb = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local m = redis.call('HMGET', KEYS[2], 'max', 'since', 'maxttl')
if not m[1] then
  -- First use, or Redis lost its data: leases granted before the loss may still
  -- be held. Start a new epoch and refuse grants for one TTL (delayed restart).
  -- The fencing counter is seeded from the server clock (us) so tokens keep
  -- increasing across a data loss.
  redis.call('HSET', KEYS[2], 'max', max, 'since', now, 'maxttl', ttl, 'fence', now * 1000)
  m = {tostring(max), tostring(now), tostring(ttl)}
end
if tonumber(m[1]) ~= max then return redis.error_reply('MAXMISMATCH ' .. m[1]) end
-- Tombstones are purged by RELEASE, which writes them; here a lookup suffices.
local dead = redis.call('ZSCORE', KEYS[3], id)
if dead and tonumber(dead) > now then return {'cancelled'} end
local maxttl = tonumber(m[3])
if ttl > maxttl then maxttl = ttl; redis.call('HSET', KEYS[2], 'maxttl', ttl) end
local ready = tonumber(m[2]) + maxttl
if now < ready then return {'warming', ready - now} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= max then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {'full', tonumber(first[2]) - now, n}
end
redis.call('ZADD', KEYS[1], now + ttl, id)
return {'ok', redis.call('HINCRBY', KEYS[2], 'fence', 1), n + 1}`

// KEYS: 1 leases. ARGV: 1 lease id, 2 ttl ms. Never recreates a missing lease.
// Reply: 1 renewed | 0 lost
export const RENEW = `${NOW}
local d = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not d then return 0 end
if tonumber(d) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 1`

// KEYS: 1 leases, 2 tombstones. ARGV: 1 lease id, 2 tombstone ms.
// Removes only the caller's own lease (its id is unguessable). When it is not
// there (the acquire was interrupted before it ran, or the lease expired), a
// tombstone makes a late acquire of that id answer 'cancelled'.
// Reply: holders left | -1 when the lease was not held
export const RELEASE = `${NOW}
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf') end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return -1`

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
