// The results: their shape in results.json, the targets, and the table.
import type { Measurement } from "./measure.ts"
import type { ParkedMeasurement } from "./parked.ts"

export interface Row {
  readonly subject: string
  /** Operations per run: calls, tasks or parked waiters. */
  readonly ops: number
  readonly nsPerOp: number
  readonly opsPerSec: number
  readonly peakHeapMB: number
  /** Peak RSS above the run's start; absent where it was not sampled. */
  readonly rssDeltaMB?: number
  /** This row's figure (`ratioOf`) divided by the reference row's. */
  readonly ratio: number
  readonly bytesPerOp?: number
  readonly runsNsPerOp?: ReadonlyArray<number>
  readonly checks: Readonly<Record<string, number>>
  /** Event-loop turns per operation, from a separate untimed pass (case 2). */
  readonly turnsPerOp?: number
  readonly note?: string
}

export interface CaseResult {
  readonly id: string
  readonly title: string
  readonly reference: string
  readonly ratioOf: "ns/op" | "bytes/op"
  readonly notes: ReadonlyArray<string>
  /** Figures computed from the rows, named in the notes. */
  readonly derived?: Readonly<Record<string, number>>
  readonly rows: ReadonlyArray<Row>
}

export interface Target {
  readonly id: string
  readonly description: string
  readonly measured: number
  readonly comparator: "<=" | ">=" | ">"
  readonly threshold: number
  readonly verdict: "PASS" | "MISS"
}

const ratioOf = (row: { readonly nsPerOp: number; readonly bytesPerOp?: number }, of: CaseResult["ratioOf"]) =>
  of === "ns/op" ? row.nsPerOp : (row.bytesPerOp ?? Number.NaN)

export type Unrated = Omit<Row, "ratio">

/** Adds each row's ratio to the case's reference row (`reference` names its subject). */
export const makeCase = (fields: Omit<CaseResult, "rows">, rows: ReadonlyArray<Unrated>): CaseResult => {
  const reference = rows.find((row) => row.subject === fields.reference)
  if (reference === undefined) throw new Error(`case ${fields.id}: no reference row ${fields.reference}`)
  const base = ratioOf(reference, fields.ratioOf)
  return { ...fields, rows: rows.map((row) => ({ ...row, ratio: ratioOf(row, fields.ratioOf) / base })) }
}

export const fromMeasurement = (measurement: Measurement, note?: string): Unrated => ({
  subject: measurement.subject,
  ops: measurement.ops,
  nsPerOp: measurement.nsPerOp,
  opsPerSec: measurement.opsPerSec,
  peakHeapMB: measurement.peakHeapMB,
  rssDeltaMB: measurement.peakRssDeltaMB,
  runsNsPerOp: measurement.runsNsPerOp,
  checks: measurement.checks,
  ...(note === undefined ? {} : { note })
})

export const fromParked = (measurement: ParkedMeasurement, note?: string): Unrated => ({
  subject: measurement.subject,
  ops: measurement.waiters,
  nsPerOp: measurement.parkNsPerWaiter,
  opsPerSec: 1e9 / measurement.parkNsPerWaiter,
  peakHeapMB: measurement.peakHeapMB,
  bytesPerOp: measurement.bytesPerWaiter,
  checks: { ...measurement.checks, cleanupMs: measurement.cleanupMs },
  ...(note === undefined ? {} : { note })
})

export const target = (
  id: string,
  description: string,
  measured: number,
  comparator: Target["comparator"],
  threshold: number
): Target => {
  const pass =
    comparator === "<=" ? measured <= threshold : comparator === ">=" ? measured >= threshold : measured > threshold
  return {
    id,
    description,
    measured,
    comparator,
    threshold,
    verdict: Number.isFinite(measured) && pass ? "PASS" : "MISS"
  }
}

// ---------------------------------------------------------------------------
// the table
// ---------------------------------------------------------------------------

const fixed = (value: number, digits: number): string =>
  Number.isFinite(value)
    ? value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "-"

const nanoseconds = (ns: number): string => (ns < 100 ? fixed(ns, 1) : fixed(ns, 0))

const rate = (perSecond: number): string =>
  perSecond >= 1e6
    ? `${fixed(perSecond / 1e6, 2)}M`
    : perSecond >= 1e3
      ? `${fixed(perSecond / 1e3, 1)}k`
      : fixed(perSecond, 0)

const count = (n: number): string =>
  n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n)

const render = (rows: ReadonlyArray<ReadonlyArray<string>>, rightAligned: ReadonlyArray<boolean>): string => {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? []
  const line = (row: ReadonlyArray<string>) =>
    row
      .map((cell, column) =>
        rightAligned[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)
      )
      .join("  ")
      .trimEnd()
  const [header, ...body] = rows
  return [line(header ?? []), widths.map((width) => "-".repeat(width)).join("  "), ...body.map(line)].join("\n")
}

export const table = (cases: ReadonlyArray<CaseResult>): string => {
  const header = ["case", "subject", "n", "ns/op", "ops/s", "peak heap MB", "RSS Δ MB", "× ref", "B/op"]
  const rows = cases.flatMap((result) =>
    result.rows.map((row) => [
      result.id,
      `${row.subject}${row.subject === result.reference ? " (ref)" : ""}`,
      count(row.ops),
      nanoseconds(row.nsPerOp),
      rate(row.opsPerSec),
      fixed(row.peakHeapMB, 1),
      row.rssDeltaMB === undefined ? "-" : fixed(row.rssDeltaMB, 1),
      `${fixed(row.ratio, 2)}${result.ratioOf === "bytes/op" ? " B" : ""}`,
      row.bytesPerOp === undefined ? "" : fixed(row.bytesPerOp, 0)
    ])
  )
  return render([header, ...rows], [false, false, true, true, true, true, true, true, true])
}

export const targetsTable = (targets: ReadonlyArray<Target>): string =>
  render(
    [
      ["target", "measured", "goal", "verdict"],
      ...targets.map((t) => [t.description, fixed(t.measured, 2), `${t.comparator} ${t.threshold}`, t.verdict])
    ],
    [false, true, true, false]
  )

export const notes = (cases: ReadonlyArray<CaseResult>): string =>
  cases
    .map((result) =>
      [
        `${result.id}. ${result.title} (× ref: ${result.ratioOf} ÷ ${result.reference})`,
        ...result.notes.map((note) => `   - ${note}`),
        ...result.rows.flatMap((row) => (row.note === undefined ? [] : [`   - ${row.subject}: ${row.note}`]))
      ].join("\n")
    )
    .join("\n")

/**
 * The results as JSON, laid out the way Biome formats it, so the file passes
 * `biome check`: numbers rounded to 0.001, arrays of numbers on one line.
 */
export const toJson = (value: unknown): string => {
  const rounded = JSON.stringify(
    value,
    (_, field: unknown) =>
      typeof field === "number" && Number.isFinite(field) && !Number.isInteger(field)
        ? Math.round(field * 1000) / 1000
        : field,
    2
  )
  const numberArrays = /\[\n\s+(-?[\d.e+-]+(?:,\n\s+-?[\d.e+-]+)*)\n\s+\]/g
  return `${rounded.replace(numberArrays, (_, items: string) => `[${items.split(/,\s+/).join(", ")}]`)}\n`
}
