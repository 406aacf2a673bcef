// The system tools some tests spawn: redis-server and redis-cli (test/redis.test.ts,
// the Redis part of test/consumer.test.ts) and faketime (one test of
// test/redis.test.ts). test/utils/globalSetup.ts looks for them once per run,
// says once what is skipped and how to install them, and fails the run
// instead when CI is set. A test file asks with `Tools.available().redis` (for
// `describe.runIf` / `it.runIf`).

import { accessSync, constants, statSync } from "node:fs"
import { delimiter, join } from "node:path"
import { inject } from "vitest"

export interface Available {
  /** redis-server and redis-cli are on PATH. */
  readonly redis: boolean
  /** faketime is on PATH. */
  readonly faketime: boolean
}

declare module "vitest" {
  export interface ProvidedContext {
    tools: Available
  }
}

export const install = "sudo apt-get update && sudo apt-get install -y redis-server faketime"

/** Whether an executable file `name` is in one of PATH's directories. */
export const onPath = (name: string, path: string = process.env.PATH ?? ""): boolean =>
  path
    .split(delimiter)
    .filter((dir) => dir !== "")
    .some((dir) => {
      const file = join(dir, name)
      try {
        accessSync(file, constants.X_OK)
        return statSync(file).isFile()
      } catch {
        return false
      }
    })

/** Looks on PATH now (globalSetup does, once per run). */
export const find = (): Available & { readonly missing: ReadonlyArray<string> } => {
  const missing = ["redis-server", "redis-cli", "faketime"].filter((name) => !onPath(name))
  return {
    redis: !missing.includes("redis-server") && !missing.includes("redis-cli"),
    faketime: !missing.includes("faketime"),
    missing
  }
}

/** What globalSetup found, for a test file (not for globalSetup itself). */
export const available = (): Available => inject("tools")
