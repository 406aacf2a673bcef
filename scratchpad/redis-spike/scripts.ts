import { Redis } from "effect/persistence"

// Server-clock "now" in ms (integer). Redis 7 replicates script effects, so TIME is allowed before writes.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

// KEYS: 1 leases (ZSET id -> deadline ms), 2 meta (HASH max, since, maxttl, fence), 3 tombstones (ZSET id -> expiry ms)
// ARGV: 1 leaseId, 2 max, 3 ttlMs, 4 tombstoneMs
// Replies: {'ok', fence, ttl, holders} | {'full', retryAfterMs, holders} | {'warming', retryAfterMs} | {'cancelled'}
//          error 'MAXMISMATCH <stored> <requested>' | 'BADARGS'
export const ACQUIRE = `${NOW}
local id, max, ttl, tomb = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not max or max < 1 or not ttl or ttl < 1 or not tomb then return redis.error_reply('BADARGS') end
local m = redis.call('HMGET', KEYS[2], 'max', 'since', 'maxttl')
if not m[1] then
  -- First use, or Redis lost its data: leases granted before the loss may still be held.
  -- Start a new epoch now and refuse grants for one TTL (delayed restart). Seed the fencing
  -- counter from the server clock (us) so tokens stay monotonic across a data loss.
  redis.call('HSET', KEYS[2], 'max', max, 'since', now, 'maxttl', ttl, 'fence', now * 1000)
  m = {tostring(max), tostring(now), tostring(ttl)}
end
if tonumber(m[1]) ~= max then
  return redis.error_reply('MAXMISMATCH stored=' .. m[1] .. ' requested=' .. ARGV[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZSCORE', KEYS[3], id) then return {'cancelled'} end
local maxttl = tonumber(m[3])
if ttl > maxttl then maxttl = ttl; redis.call('HSET', KEYS[2], 'maxttl', ttl) end
local ready = tonumber(m[2]) + maxttl
if now < ready then return {'warming', ready - now} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], id) then return redis.error_reply('DUPLICATE lease id') end
local n = redis.call('ZCARD', KEYS[1])
if n >= max then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {'full', tonumber(first[2]) - now, n}
end
redis.call('ZADD', KEYS[1], now + ttl, id)
local fence = redis.call('HINCRBY', KEYS[2], 'fence', 1)
return {'ok', fence, ttl, n + 1}`

// KEYS: 1 leases. ARGV: 1 leaseId, 2 ttlMs. Never recreates a missing lease.
// Replies: {'ok', ttl} | {'lost', 'missing'|'expired'}
export const RENEW = `${NOW}
local d = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not d then return {'lost', 'missing'} end
if tonumber(d) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return {'lost', 'expired'}
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return {'ok', tonumber(ARGV[2])}`

// KEYS: 1 leases, 2 tombstones. ARGV: 1 leaseId, 2 tombstoneMs.
// Removes only the caller's own lease (by its unguessable id). If it is not there (acquire
// interrupted before it ran, or already expired) leave a tombstone so a late acquire is refused.
// Reply: 1 removed | 0 not held
export const RELEASE = `${NOW}
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then return 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return 0`

export type AcquireReply =
  | ["ok", number, number, number]
  | ["full", number, number]
  | ["warming", number]
  | ["cancelled"]
export type RenewReply = ["ok", number] | ["lost", "missing" | "expired"]

export const keys = (prefix: string, pool: string) => {
  if (/[{}]/.test(prefix) || /[{}]/.test(pool)) throw new Error("prefix/pool must not contain { or }")
  const tag = `{${prefix}:${pool}}` // one hash slot for all keys of a pool
  return { leases: `${tag}:leases`, meta: `${tag}:meta`, tomb: `${tag}:tomb` }
}
type K = ReturnType<typeof keys>
export const acquire = Redis.script(
  (k: K, id: string, max: number, ttl: number, tomb: number) => [k.leases, k.meta, k.tomb, id, max, ttl, tomb],
  { numberOfKeys: 3, lua: ACQUIRE }
).withReturnType<AcquireReply>()
export const renew = Redis.script((k: K, id: string, ttl: number) => [k.leases, id, ttl], {
  numberOfKeys: 1,
  lua: RENEW
}).withReturnType<RenewReply>()
export const release = Redis.script((k: K, id: string, tomb: number) => [k.leases, k.tomb, id, tomb], {
  numberOfKeys: 2,
  lua: RELEASE
}).withReturnType<0 | 1>()

// One round trip per operation: EVALSHA with a locally computed SHA1; on NOSCRIPT (first use, or
// after a Redis restart) fall back to EVAL, which runs the script and caches it server-side.
// (Redis.eval does SCRIPT LOAD + EVALSHA: 2 round trips on first use, 3 after a restart.)
import { createHash } from "node:crypto"
import { Effect } from "effect"
export const oneTrip = <A>(redis: Redis.Redis["Service"], lua: string, numberOfKeys: number) => {
  const sha = createHash("sha1").update(lua).digest("hex")
  return (...keysThenArgs: ReadonlyArray<string | number>): Effect.Effect<A, Redis.RedisError> => {
    const rest = [String(numberOfKeys), ...keysThenArgs.map(String)]
    return redis.send<A>("EVALSHA", sha, ...rest).pipe(
      Effect.catchIf(
        (e) => String(e.cause).startsWith("NOSCRIPT") || String(e.cause).includes("Error: NOSCRIPT"),
        () => redis.send<A>("EVAL", lua, ...rest)
      )
    )
  }
}
