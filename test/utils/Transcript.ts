// The printed lines of a demo run, parsed back into transitions, and the
// invariants every run must satisfy whatever its options and scheduling.
import { assert } from "@effect/vitest"

export interface Line {
  readonly worker: number
  readonly kind: "acquired" | "rejected" | "released"
  readonly active: number
  readonly max: number
}

const pattern = /^Worker (\d+): (acquired|rejected|released) \((\d+)\/(\d+) active\)$/

export const parse = (lines: ReadonlyArray<unknown>): Array<Line> =>
  lines.map((line) => {
    assert.isString(line, "every Console.log call prints one string")
    const match = pattern.exec(line as string)
    assert.isNotNull(match, `not a pool line: ${String(line)}`)
    const [, worker, kind, active, max] = match as RegExpExecArray
    return { worker: Number(worker), kind: kind as Line["kind"], active: Number(active), max: Number(max) }
  })

/** Asserts the invariants of a complete run of `workers` workers on a pool of `max` permits. */
export const assertConsistent = (transcript: ReadonlyArray<Line>, workers: number, max: number): void => {
  let previous = 0
  const phase = new Map<number, "waiting" | "holding" | "done">()
  transcript.forEach((line, index) => {
    const at = `line ${index}: ${JSON.stringify(line)}`
    assert.strictEqual(line.max, max, at)
    assert.isAtLeast(line.active, 0, at)
    assert.isAtMost(line.active, max, at)
    const state = phase.get(line.worker) ?? "waiting"
    switch (line.kind) {
      case "acquired":
        assert.strictEqual(line.active, previous + 1, at)
        assert.strictEqual(state, "waiting", at)
        phase.set(line.worker, "holding")
        break
      case "released":
        assert.strictEqual(line.active, previous - 1, at)
        assert.strictEqual(state, "holding", at)
        phase.set(line.worker, "done")
        break
      case "rejected":
        assert.strictEqual(line.active, previous, at)
        assert.strictEqual(previous, max, `a rejection only when the pool is full, ${at}`)
        assert.strictEqual(state, "waiting", at)
        break
    }
    previous = line.active
  })
  assert.strictEqual(previous, 0, "every permit is back at the end")
  assert.deepStrictEqual(
    Array.from({ length: workers }, (_, worker): string | undefined => phase.get(worker)),
    Array.from({ length: workers }, (): string => "done"),
    "every worker acquired once and released once"
  )
  const rejections = transcript.filter((line) => line.kind === "rejected").length
  assert.strictEqual(transcript.length, 2 * workers + rejections)
}
