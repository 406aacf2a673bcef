import { execFile } from "node:child_process"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"

// The benchmark suite's smoke test: a quick run ends well, and its results
// hold every case, ratio and target as finite positive numbers. It proves the
// suite runs and checks itself, not how fast anything is.

const runScript = new URL("../scratchpad/bench/run.ts", import.meta.url).pathname

// Each case with its number of rows, in the order they are run.
const expectedRows: ReadonlyArray<readonly [string, number]> = [
  ["1", 8],
  ["2", 9],
  ["2f", 4],
  ["3", 3],
  ["4", 3],
  ["5", 4],
  ["6", 5]
]

interface Results {
  readonly options: { readonly quick: boolean }
  readonly machine: { readonly node: string }
  readonly cases: ReadonlyArray<{
    readonly id: string
    readonly reference: string
    readonly rows: ReadonlyArray<{
      readonly subject: string
      readonly nsPerOp: number
      readonly opsPerSec: number
      readonly peakHeapMB: number
      readonly ratio: number
      readonly bytesPerOp?: number
    }>
  }>
  readonly ratios: Readonly<Record<string, number>>
  readonly targets: ReadonlyArray<{ readonly id: string; readonly measured: number; readonly verdict: string }>
}

const assertPositive = (value: unknown, what: string) => {
  assert.isTrue(typeof value === "number" && Number.isFinite(value) && value > 0, `${what}: ${String(value)}`)
}

describe("benchmark suite", () => {
  it("runs --quick and writes every case, ratio and target as finite positive numbers", async () => {
    const directory = await mkdtemp(join(tmpdir(), "coroutine-pool-bench-"))
    try {
      const out = join(directory, "results.json")
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ["--expose-gc", runScript, "--quick", "--out", out],
        {
          timeout: 60_000
        }
      )
      assert.include(stdout, "verdict")
      const results = JSON.parse(await readFile(out, "utf8")) as Results
      assert.isTrue(results.options.quick)
      assert.strictEqual(results.machine.node, process.version)

      assert.deepStrictEqual(
        results.cases.map((result) => [result.id, result.rows.length]),
        expectedRows.map(([id, rows]) => [id, rows])
      )
      for (const result of results.cases) {
        assert.strictEqual(result.rows.find((row) => row.subject === result.reference)?.ratio, 1, `case ${result.id}`)
        for (const row of result.rows) {
          const where = `case ${result.id} ${row.subject}`
          assertPositive(row.nsPerOp, `${where} nsPerOp`)
          assertPositive(row.opsPerSec, `${where} opsPerSec`)
          assertPositive(row.peakHeapMB, `${where} peakHeapMB`)
          assertPositive(row.ratio, `${where} ratio`)
          if (result.id === "4") assertPositive(row.bytesPerOp, `${where} bytesPerOp`)
        }
      }

      const rows = results.cases.reduce((sum, result) => sum + result.rows.length, 0)
      assert.strictEqual(Object.keys(results.ratios).length, rows - results.cases.length)
      for (const [name, ratio] of Object.entries(results.ratios)) assertPositive(ratio, name)

      assert.deepStrictEqual(
        results.targets.map((target) => target.id),
        ["1", "6a", "6b", "2f", "4", "2w", "2a", "2b", "3"]
      )
      for (const target of results.targets) {
        assertPositive(target.measured, `target ${target.id}`)
        assert.include(["PASS", "MISS"], target.verdict)
      }
    } finally {
      await rm(directory, { recursive: true, force: true })
    }
  }, 60_000)
})
