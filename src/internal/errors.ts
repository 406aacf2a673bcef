// The errors every pool may fail with. Imports nothing of the library's.

import * as Schema from "effect/Schema"

// A worker's label (a number or a string); `events.ts` re-exports it.
export const WorkerId: Schema.Union<readonly [Schema.Number, Schema.String]> = Schema.Union([
  Schema.Number,
  Schema.String
])

export type WorkerId = number | string

export class PoolRejected extends Schema.TaggedError<PoolRejected>()("PoolRejected", {
  worker: WorkerId,
  reason: Schema.Literals(["full", "queue-full", "timeout", "closed", "warming"]),
  active: Schema.Int,
  max: Schema.Int,
  /** Milliseconds until a permit is expected to come free, when the pool knows. */
  retryAfter: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return `Worker ${this.worker}: rejected, ${explanations[this.reason](this.max)}`
  }
}

const explanations = {
  full: (max: number) => `all ${max} permits are taken`,
  "queue-full": (max: number) => `all ${max} permits are taken and the queue is full`,
  timeout: () => "no permit came free within maxWait",
  closed: () => "the pool is closed",
  warming: () => "the store is warming up after losing its data"
} as const

// Rejections are the answer a pool gives most under load: built without
// running the class's constructor, which would capture a stack (over 100 ns
// even with `Error.stackTraceLimit` at 0) and re-check fields the engine has
// just computed. The result is an instance of the class (so `instanceof`,
// `_tag`, `message`, `Equal` and `toJSON` behave as for one built with `new`)
// whose `stack` is its first line: a rejection is an answer, not a bug to
// locate.
Object.defineProperties(PoolRejected.prototype, {
  stack: {
    get(this: PoolRejected) {
      return `${this.name}: ${this.message}`
    },
    configurable: true
  },
  // What `Object.prototype.toString` says of any error, so that tools
  // telling errors apart by it (assertion libraries, loggers) see one.
  [Symbol.toStringTag]: { value: "Error", configurable: true }
})

/** A `PoolRejected` with these fields, built at a fraction of a checked construction's cost. */
export const rejected = (
  worker: WorkerId,
  reason: PoolRejected["reason"],
  active: number,
  max: number,
  retryAfter: number | undefined
): PoolRejected => {
  const error = Object.create(PoolRejected.prototype) as {
    -readonly [K in keyof PoolRejected]: PoolRejected[K]
  }
  error._tag = "PoolRejected"
  error.worker = worker
  error.reason = reason
  error.active = active
  error.max = max
  if (retryAfter !== undefined) error.retryAfter = retryAfter
  return error as PoolRejected
}

export class PermitNotHeld extends Schema.TaggedError<PermitNotHeld>()("PermitNotHeld", {
  worker: WorkerId
}) {
  override get message(): string {
    return `Worker ${this.worker} holds no permit to release`
  }
}

export class InvalidPermits extends Schema.TaggedError<InvalidPermits>()("InvalidPermits", {
  permits: Schema.Unknown,
  max: Schema.Int
}) {
  override get message(): string {
    return typeof this.permits === "number" && Number.isSafeInteger(this.permits) && this.permits > this.max
      ? `Asked for ${this.permits} permits: a pool of ${this.max} can never give them`
      : `Invalid permits: expected a positive safe integer, got ${show(this.permits)}`
  }
}

export class InvalidPoolSize extends Schema.TaggedError<InvalidPoolSize>()("InvalidPoolSize", {
  max: Schema.Unknown
}) {
  override get message(): string {
    return `Invalid pool size: max must be a positive safe integer, got ${show(this.max)}`
  }
}

export class InvalidPoolOption extends Schema.TaggedError<InvalidPoolOption>()("InvalidPoolOption", {
  option: Schema.String,
  value: Schema.Unknown,
  expected: Schema.String
}) {
  override get message(): string {
    return `Invalid ${this.option}: expected ${this.expected}, got ${show(this.value)}`
  }
}

export const show = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    try {
      return JSON.stringify(value)
    } catch {
      return String(value)
    }
  }
  return String(value)
}

// ---------------------------------------------------------------------------
// a store's errors
// ---------------------------------------------------------------------------

export class PoolStoreError extends Schema.TaggedError<PoolStoreError>()("PoolStoreError", {
  key: Schema.String,
  operation: Schema.Literals(["acquire", "renew", "release"]),
  reason: Schema.Literals(["timeout", "unavailable", "refused"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `Pool ${this.key}: the store failed to ${this.operation} (${this.reason}): ${this.detail}`
  }
}

export class PoolConfigMismatch extends Schema.TaggedError<PoolConfigMismatch>()("PoolConfigMismatch", {
  key: Schema.String,
  option: Schema.Literals(["max", "ttl"]),
  stored: Schema.Int,
  requested: Schema.Int
}) {
  override get message(): string {
    const unit = this.option === "ttl" ? " ms" : ""
    return `Pool ${this.key}: the store holds ${this.option} ${this.stored}${unit}, this process asked for ${this.requested}${unit}`
  }
}

export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  key: Schema.String,
  worker: WorkerId,
  fence: Schema.Number,
  reason: Schema.Literals(["missing", "deadline"])
}) {
  override get message(): string {
    const why = this.reason === "missing" ? "the store no longer had it" : "no renewal was confirmed in time"
    return `Pool ${this.key}: worker ${this.worker} lost its lease (fence ${this.fence}): ${why}`
  }
}

export class InvalidStoreOption extends Schema.TaggedError<InvalidStoreOption>()("InvalidStoreOption", {
  option: Schema.Literals(["key", "prefix", "worker", "timeout"]),
  value: Schema.Unknown
}) {
  override get message(): string {
    return `Invalid ${this.option}: expected ${storeExpectations[this.option]}, got ${show(this.value)}`
  }
}

const storeExpectations = {
  key: "1 to 128 characters of A-Z a-z 0-9 . _ : -",
  prefix: "1 to 128 characters of A-Z a-z 0-9 . _ -",
  worker: "a number or 1 to 256 printable characters",
  timeout: 'a finite duration of at least 1 millisecond, such as "500 millis"'
} as const
