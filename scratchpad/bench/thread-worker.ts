// One OS thread of the "threads" subject in case 5: it runs its share of the
// tasks one after another, each blocking the thread for `taskMs` with
// `Atomics.wait`, as a blocking call (a synchronous read, a JDBC query) holds
// its thread. Reports how many tasks it ran.
import { parentPort, workerData } from "node:worker_threads"

const { tasks, taskMs } = workerData as { readonly tasks: number; readonly taskMs: number }
const cell = new Int32Array(new SharedArrayBuffer(4))
let done = 0
for (let i = 0; i < tasks; i++) {
  Atomics.wait(cell, 0, 0, taskMs)
  done++
}
parentPort?.postMessage({ done })
