// Counts what happens inside the limited section of a contended run, so each
// run can prove it did the work it claims: every task once, never more than
// the limit at the same time. A run that fails its check throws.

export class Probe {
  running = 0
  peak = 0
  done = 0
  readonly tasks: number
  private readonly runs: Uint8Array

  constructor(tasks: number) {
    this.tasks = tasks
    this.runs = new Uint8Array(tasks)
  }

  enter(task: number): void {
    this.runs[task] = (this.runs[task] ?? 0) + 1
    this.running++
    if (this.running > this.peak) this.peak = this.running
  }

  leave(): void {
    this.running--
    this.done++
  }

  /** Throws unless every task ran exactly once with at most `limit` at a time. */
  verify(subject: string, limit: number): { readonly tasks: number; readonly peakConcurrency: number } {
    const problems: Array<string> = []
    if (this.done !== this.tasks) problems.push(`${this.done} of ${this.tasks} tasks finished`)
    const notOnce = this.runs.findIndex((count) => count !== 1)
    if (notOnce !== -1) problems.push(`task ${notOnce} ran ${this.runs[notOnce]} times`)
    if (this.peak > limit) problems.push(`peak concurrency ${this.peak} > ${limit}`)
    if (this.running !== 0) problems.push(`${this.running} tasks still inside`)
    if (problems.length > 0) throw new Error(`${subject}: run not trusted: ${problems.join("; ")}`)
    return { tasks: this.tasks, peakConcurrency: this.peak }
  }
}
