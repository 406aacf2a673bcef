// The engine every pool runs on: who holds permits, who waits for them in
// what order, and the one place where that changes.
//
// Each method runs synchronously from start to end, and the runtime never
// switches fibers in the middle of synchronous code, so a decision, the count
// change and the published event form one atomic step: no lock is needed,
// and the event stream lists transitions in exactly the order they happened.
//
// Where permits come from is a `Source`: a local count (the in-process pool)
// takes them on the spot; leases in a store (the shared pool) must be asked
// for, and the source gives its answer here.
//
// Invariant: while anyone is queued, nobody takes a permit ahead of the
// queue's head, and a head asking for more permits than are free is not
// overtaken: a newcomer (`tryAcquire`, a call that may not wait) is turned
// away, and freed permits go to the head first. There is no barging.

import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import {
  type Asker,
  Asking,
  type Caller,
  Ended,
  Granted,
  Holding,
  Line,
  Queued,
  Refused,
  Scoped,
  Waiting
} from "./caller.ts"
import { type PoolRejected, rejected, type WorkerId } from "./errors.ts"
import type { Ledger, WorkerTag } from "./ledger.ts"

/** What a source says to `permits` asked for with nobody queued ahead. */
export type Take = "taken" | "ask" | "none"

/** Where permits come from. */
export interface Source {
  /** Whether permits must be asked for (then `ask` is called, and answers later). */
  readonly asks: boolean
  /**
   * Whether `permits` can be had now: `"taken"` (counted here and now),
   * `"ask"` (the source is asked, and answers with `granted`, `refused` or
   * `failed`), or `"none"`.
   */
  readonly take: (engine: Engine, permits: number) => Take
  /**
   * Asks for `caller`'s permits. The source answers, now or later; an
   * answer for a caller that has gone is still given, so that a grant goes back.
   */
  readonly ask: (engine: Engine, caller: Caller) => void
  /** `permits` of `caller`'s came back: the source takes them (lost ones excepted). */
  readonly release: (engine: Engine, caller: Caller, permits: number) => void
  /** The `active` figure events show: this pool's holders, or a store's. */
  readonly shown: (engine: Engine) => number
}

// What a caller is turned away for: at once (the queue is full, or it could
// not wait), or by the source's answer.
export type Refusal = Exclude<PoolRejected["reason"], "timeout" | "closed">

export class Engine {
  active = 0
  // Permits asked for by callers whose answer has not come yet.
  asking = 0
  closed = false
  max: number
  // Why the last caller `enter` turned away was turned away, and the store's
  // hint: read at once by the caller, which builds the error only if it
  // needs one (a call that answers `None` does not).
  refusal: PoolRejected["reason"] = "full"
  refusalRetryAfter: number | undefined = undefined
  readonly queue = new Line(Queued)
  // Fibers holding permits inside `withPermit`, so closing can interrupt them.
  readonly holders = new Line(Holding)
  // Permits held by scopes (`acquire`).
  readonly scoped = new Line(Scoped)
  // Permits taken with `tryAcquire`, per worker, oldest first: the only ones
  // `release` may return.
  readonly manual = new Map<WorkerId, Array<Caller>>()
  readonly maxWaiting: number
  readonly source: Source
  readonly ledger: Ledger
  // Callers of a source that must be asked, counted as they arrive.
  private arrivals = 0
  // Callers granted (or turned away) and not yet resumed.
  private readonly woken: Array<Caller> = []
  private resuming = false

  constructor(max: number, maxWaiting: number, source: Source, ledger: Ledger) {
    this.max = max
    this.maxWaiting = maxWaiting
    this.source = source
    this.ledger = ledger
  }

  get waiting(): number {
    return this.queue.size
  }

  private lineOf(caller: Caller): Line | undefined {
    switch (caller.place) {
      case Queued:
        return this.queue
      case Holding:
        return this.holders
      case Scoped:
        return this.scoped
      default:
        return undefined
    }
  }

  /** The permits taken, as events show them. */
  get shown(): number {
    return this.source.shown(this)
  }

  private publish(tag: WorkerTag, caller: Caller) {
    this.ledger.publish(tag, caller.worker, caller.permits, this)
  }

  /** A rejection with the figures of this moment. */
  rejection(worker: WorkerId, reason: PoolRejected["reason"], retryAfter?: number): PoolRejected {
    return rejected(worker, reason, this.shown, this.max, retryAfter)
  }

  // ---------------------------------------------------------------------------
  // entering
  // ---------------------------------------------------------------------------

  /**
   * Whether `enter` would take in a caller asking for `permits` now (grant,
   * ask its source or queue it) rather than turn it away.
   */
  admits(permits: number, wait: boolean): boolean {
    if (this.closed) return false
    if (this.queue.size === 0 && this.source.take(this, permits) !== "none") return true
    return wait && this.queue.size < this.maxWaiting
  }

  /**
   * Turns away a caller `admits` said no to: counted and published, the
   * reason kept in `refusal`.
   */
  reject(worker: WorkerId, permits: number, wait: boolean): void {
    if (this.closed) {
      this.ledger.refused.closed++
      this.refusal = "closed"
      this.refusalRetryAfter = undefined
    } else this.refuse(worker, permits, wait, "full", undefined)
  }

  /**
   * A caller asks for its permits: granted at once (status Granted, a fiber
   * holder), asking its source (status Asking), queued (status Waiting, when
   * `wait` and there is room), or turned away: then `false`, with the
   * reason in `refusal`.
   */
  enter(caller: Caller, wait: boolean): boolean {
    const permits = caller.permits
    if (this.source.asks) (caller as Asker).seq = ++this.arrivals
    if (this.closed) {
      this.reject(caller.worker, permits, wait)
      return false
    }
    if (this.queue.size === 0) {
      const take = this.source.take(this, permits)
      if (take === "taken") {
        this.admit(caller, undefined)
        this.holders.push(caller)
        return true
      }
      if (take === "ask") {
        caller.wait = wait
        caller.status = Asking
        this.asking += permits
        this.source.ask(this, caller)
        return true
      }
    }
    if (wait && this.queue.size < this.maxWaiting) {
      caller.wait = wait
      this.queue_(caller)
      return true
    }
    this.refuse(caller.worker, permits, wait, "full", undefined)
    return false
  }

  private queue_(caller: Caller, before?: Caller): void {
    caller.status = Waiting
    caller.since = this.ledger.now()
    this.queue.insertBefore(caller, before)
    this.publish("Queued", caller)
  }

  // Turns a caller away at once: counted and published, the reason kept.
  private refuse(
    worker: WorkerId,
    permits: number,
    wait: boolean,
    reason: Refusal,
    retryAfter: number | undefined
  ): void {
    const refusal = wait && this.maxWaiting > 0 && reason === "full" ? "queue-full" : reason
    this.ledger.refused[refusal]++
    this.ledger.publish("Rejected", worker, permits, this)
    this.refusal = refusal
    this.refusalRetryAfter = retryAfter
  }

  /** The rejection of the caller `enter` just turned away. */
  refused_(worker: WorkerId): PoolRejected {
    return this.rejection(worker, this.refusal, this.refusalRetryAfter)
  }

  // `caller` takes its permits, after a wait that began at `since`
  // (`undefined`: it did not wait).
  private admit(caller: Caller, since: number | undefined): void {
    caller.status = Granted
    this.active += caller.permits
    caller.since = since === undefined ? this.ledger.admittedNow() : this.ledger.admitted(since)
    this.publish("Acquired", caller)
  }

  // ---------------------------------------------------------------------------
  // a source's answers
  // ---------------------------------------------------------------------------

  /**
   * The source granted an asking caller its permits (`grant`: a lease). It
   * becomes a fiber holder and is woken; or, if it has gone or the pool has
   * closed meanwhile, the permits go straight back.
   */
  granted(caller: Asker, grant: unknown): void {
    // A newcomer still waiting for this answer when the pool closed (a
    // queued caller was turned away by the close itself).
    const closedMeanwhile = this.closed && caller.status === Asking && !caller.gone
    this.stopAsking(caller)
    caller.grant = grant
    if (caller.gone || caller.status === Refused || this.closed) {
      caller.status = Ended
      this.source.release(this, caller, caller.permits)
      if (closedMeanwhile) this.turnAway(caller, Cause.fail(this.closedRejection(caller.worker)))
      return
    }
    const since = caller.place === Queued ? (caller.since as number) : undefined
    if (caller.place === Queued) this.queue.remove(caller)
    this.admit(caller, since)
    this.holders.push(caller)
    this.wake(caller)
    this.handOff()
  }

  /**
   * The source had no permits for an asking caller (`reason`: `"full"`, or
   * its own). A newcomer queues (when it may wait) or is turned away; a
   * queued caller goes on waiting for its next turn to ask.
   */
  refused(caller: Caller, reason: Refusal, retryAfter?: number): void {
    const closedMeanwhile = this.closed && caller.status === Asking
    this.stopAsking(caller)
    if (caller.gone || caller.status === Refused) return
    if (closedMeanwhile) {
      this.turnAway(caller, Cause.fail(this.closedRejection(caller.worker)))
      return
    }
    // Still queued, it waits for its next poll; a newcomer queues, or is
    // turned away. Either is woken to go on.
    if (caller.place !== Queued) {
      if (!caller.wait || this.queue.size >= this.maxWaiting) {
        this.refuse(caller.worker, caller.permits, caller.wait, reason, retryAfter)
        this.turnAway(caller, Cause.fail(this.refused_(caller.worker)))
        return
      }
      // It asked before anyone now queued arrived (they queued behind its
      // ask): it takes its place by arrival, not at the end.
      let next = this.queue.head
      while (next !== undefined && (next as Asker).seq < (caller as Asker).seq) next = next.next
      this.queue_(caller, next)
    }
    this.wake(caller)
    this.resumeWoken()
  }

  /** The source failed to answer an asking caller: it leaves, turned away by `failure` (a `Cause`). */
  failed(caller: Caller, failure: Cause.Cause<unknown>): void {
    this.stopAsking(caller)
    if (caller.gone || caller.status === Refused) return
    if (caller.place === Queued) {
      this.queue.remove(caller)
      this.publish("Abandoned", caller)
      this.turnAway(caller, failure)
      this.handOff()
      return
    }
    this.turnAway(caller, failure)
  }

  private closedRejection(worker: WorkerId): PoolRejected {
    this.ledger.refused.closed++
    return this.rejection(worker, "closed")
  }

  // Wakes `caller` to fail with `failure`.
  private turnAway(caller: Caller, failure: Cause.Cause<unknown>): void {
    caller.status = Refused
    caller.continuation = Effect.failCause(failure)
    this.wake(caller)
    this.resumeWoken()
  }

  private stopAsking(caller: Caller): void {
    if (caller.status === Asking) {
      this.asking -= caller.permits
      caller.status = Waiting
    } else if (caller.asking) {
      this.asking -= caller.permits
    }
    caller.asking = false
  }

  // ---------------------------------------------------------------------------
  // leaving the queue
  // ---------------------------------------------------------------------------

  /**
   * The wait of `caller` ended without interruption: it was granted its
   * permits, or `maxWait` passed (then it leaves, timed out).
   */
  settle(caller: Caller): PoolRejected | undefined {
    if (caller.status === Granted) return undefined
    this.queue.remove(caller)
    // An ask still out for it is answered to nobody: its grant goes back.
    if (caller.asking) caller.gone = true
    this.publish("TimedOut", caller)
    this.handOff()
    return this.rejection(caller.worker, "timeout")
  }

  /**
   * The caller's fiber is done with the pool (its work ended, or it was
   * interrupted): permits it holds come back; if it was still queued it
   * leaves (`Abandoned`). An interrupt racing a hand-off finds the permits
   * already its own and passes them on, neither lost nor duplicated.
   */
  leave(caller: Caller): void {
    caller.resume = undefined
    caller.gone = true
    if (caller.status === Granted) this.release(caller)
    else if (caller.status === Waiting && caller.place === Queued) {
      this.queue.remove(caller)
      this.publish("Abandoned", caller)
      this.handOff()
    }
  }

  // ---------------------------------------------------------------------------
  // handing permits on
  // ---------------------------------------------------------------------------

  // Gives free permits to the head of the queue, in order; a head asking for
  // more than is free is not overtaken. A source that must be asked is asked
  // for the head instead. It runs last in every transition that frees
  // permits, so it also resumes the callers it woke.
  private handOff(): void {
    let caller = this.queue.head
    while (caller !== undefined && !caller.asking) {
      const take = this.source.take(this, caller.permits)
      if (take === "none") break
      if (take === "ask") {
        caller.asking = true
        this.asking += caller.permits
        this.source.ask(this, caller)
        break
      }
      this.queue.remove(caller)
      this.admit(caller, caller.since as number)
      this.holders.push(caller)
      this.wake(caller)
      caller = this.queue.head
    }
    this.resumeWoken()
  }

  /**
   * The head of the queue asks its source again (its poll is due), unless it
   * is being asked for already or there is no room for it here.
   */
  askAgain(caller: Caller): void {
    if (caller.asking || caller !== this.queue.head || this.closed) return
    if (this.source.take(this, caller.permits) !== "ask") return
    caller.asking = true
    this.asking += caller.permits
    this.source.ask(this, caller)
  }

  /** Hands free permits on to the queue (a source's state changed). */
  poke(): void {
    this.handOff()
  }

  // A caller that has not parked yet has no `resume`: it sees its status
  // when it parks.
  private wake(caller: Caller): void {
    if (caller.resume !== undefined) this.woken.push(caller)
  }

  // Resumes woken callers once the transition that woke them is complete:
  // straight into their work when granted (`continuation`), with their failure when
  // turned away, or to look again. Each runs on the spot until it next
  // suspends, like a completed Deferred's waiters, without a trip through
  // the scheduler. Callers woken meanwhile (a resumed fiber may release at
  // once) join this loop instead of nesting another one, so the stack stays
  // flat however long the queue is.
  private resumeWoken(): void {
    if (this.resuming || this.woken.length === 0) return
    this.resuming = true
    try {
      for (let i = 0; i < this.woken.length; i++) {
        const caller = this.woken[i] as Caller
        const resume = caller.resume
        caller.resume = undefined
        if (resume === undefined) continue
        resume(caller.status !== Waiting && caller.continuation !== undefined ? caller.continuation : Effect.void)
      }
    } finally {
      this.woken.length = 0
      this.resuming = false
    }
  }

  // ---------------------------------------------------------------------------
  // holding and giving back
  // ---------------------------------------------------------------------------

  /** Files a granted caller's permits under its worker, for `release`. */
  keepByHand(caller: Caller): void {
    this.lineOf(caller)?.remove(caller)
    const taken = this.manual.get(caller.worker)
    if (taken === undefined) this.manual.set(caller.worker, [caller])
    else taken.push(caller)
  }

  /** Hands a fiber holder's permits over to a scope (`acquire`). */
  keepInScope(caller: Caller): void {
    this.holders.remove(caller)
    this.scoped.push(caller)
  }

  /** Permits `worker` took by hand: how many it holds. */
  heldByHand(worker: WorkerId): number {
    let held = 0
    for (const caller of this.manual.get(worker) ?? []) held += caller.permits
    return held
  }

  /**
   * `release`: gives back `permits` that `worker` took by hand, oldest first
   * (a take larger than what is left to give back is split). The caller has
   * checked it holds that many.
   */
  releaseByHand(worker: WorkerId, permits: number): ReadonlyArray<Caller> {
    const taken = this.manual.get(worker) as Array<Caller>
    const returned: Array<Caller> = []
    let left = permits
    // Every take is given back before anyone is handed a permit: a waiter
    // resumed by the hand-off never sees this release half done.
    while (left > 0) {
      const caller = taken[0] as Caller
      if (caller.permits <= left) {
        taken.shift()
        left -= caller.permits
        this.giveBack(caller, caller.permits)
      } else {
        this.giveBack(caller, left)
        left = 0
      }
      returned.push(caller)
    }
    if (taken.length === 0) this.manual.delete(worker)
    this.handOff()
    return returned
  }

  /** A fiber holder, or a scope, is done with its permits. */
  release(caller: Caller): void {
    if (caller.status !== Granted) return
    this.lineOf(caller)?.remove(caller)
    this.released(caller, caller.permits)
  }

  /**
   * The source took a holder's permits back (a lease lost): they end
   * without `Released` and without being given back; the source publishes
   * its own event with `publish`. Answers whether the caller still held them.
   */
  lose(caller: Caller, publish: () => void): boolean {
    if (caller.status !== Granted) return false
    this.lineOf(caller)?.remove(caller)
    const taken = this.manual.get(caller.worker)
    const index = taken?.indexOf(caller) ?? -1
    if (taken !== undefined && index >= 0) {
      taken.splice(index, 1)
      if (taken.length === 0) this.manual.delete(caller.worker)
    }
    caller.status = Ended
    this.active -= caller.permits
    this.ledger.held(caller.since)
    publish()
    this.handOff()
    return true
  }

  // `permits` of `caller`'s came back (all of them, or part of a take by
  // hand): counted, given to the source, published, handed on.
  private released(caller: Caller, permits: number): void {
    this.giveBack(caller, permits)
    this.handOff()
  }

  // `released` but the hand-off, which the caller does once it is done.
  private giveBack(caller: Caller, permits: number): void {
    this.active -= permits
    this.ledger.held(caller.since)
    this.source.release(this, caller, permits)
    if (permits === caller.permits) caller.status = Ended
    this.ledger.publish("Released", caller.worker, permits, this)
    if (caller.status !== Ended) caller.permits -= permits
  }

  /**
   * Changes the number of permits. Queued callers asking for more than the
   * new `max` could never be admitted: they are turned away with `refusal`.
   */
  resize(max: number, tooMany: (caller: Caller) => Cause.Cause<unknown>): void {
    const from = this.max
    this.max = max
    this.ledger.resized(from, this)
    for (let caller = this.queue.head; caller !== undefined; ) {
      const next = caller.next
      if (caller.permits > max) {
        this.queue.remove(caller)
        if (caller.asking) caller.gone = true
        this.publish("Abandoned", caller)
        caller.status = Refused
        caller.continuation = Effect.failCause(tooMany(caller))
        this.wake(caller)
      }
      caller = next
    }
    this.handOff()
  }

  // ---------------------------------------------------------------------------
  // closing
  // ---------------------------------------------------------------------------

  /**
   * Stops admissions and turns every queued caller away, with the figures
   * of this moment (before any holder gives its permits back).
   */
  close(): void {
    this.closed = true
    for (let caller = this.queue.head; caller !== undefined; caller = this.queue.head) {
      this.queue.remove(caller)
      if (caller.asking) this.stopAsking(caller)
      this.publish("Abandoned", caller)
      caller.status = Refused
      caller.continuation = Effect.fail(this.closedRejection(caller.worker))
      this.wake(caller)
    }
    this.resumeWoken()
  }

  /** The fibers running inside `withPermit`, but `current` (it cannot wait for itself). */
  holderFibers(current: Fiber.Fiber<unknown, unknown>): Set<Fiber.Fiber<unknown, unknown>> {
    const fibers = new Set<Fiber.Fiber<unknown, unknown>>()
    for (let caller = this.holders.head; caller !== undefined; caller = caller.next) {
      if (caller.fiber !== undefined && caller.fiber !== current) fibers.add(caller.fiber)
    }
    return fibers
  }

  /** Gives back the permits no fiber holds: those of `tryAcquire` and `acquire`. */
  releaseUnowned(): void {
    const takes = [...this.manual.values()]
    this.manual.clear()
    for (const taken of takes) {
      for (const caller of taken) this.giveBack(caller, caller.permits)
    }
    this.handOff()
    for (let caller = this.scoped.head; caller !== undefined; caller = this.scoped.head) this.release(caller)
  }
}
