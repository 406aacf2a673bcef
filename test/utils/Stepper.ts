// A hand-driven Scheduler: fibers running on it advance only when the test
// calls `step`, one scheduled task at a time, so a race can be replayed at
// every point of its interleaving.
import type { Scheduler } from "effect"

export interface Stepper {
  readonly scheduler: Scheduler.Scheduler
  /** Runs the oldest scheduled task; false when none is pending. */
  readonly step: () => boolean
}

export const make = (): Stepper => {
  const tasks: Array<() => void> = []
  const runNext = () => {
    const task = tasks.shift()
    task?.()
    return task !== undefined
  }
  return {
    scheduler: {
      executionMode: "async",
      // 3 ops per slice is the finest budget with which fibers still progress.
      shouldYield: (fiber) => fiber.currentOpCount >= 3,
      makeDispatcher: () => ({
        scheduleTask: (task) => {
          tasks.push(task)
        },
        flush: () => {
          while (runNext()) {}
        }
      })
    },
    step: runNext
  }
}
