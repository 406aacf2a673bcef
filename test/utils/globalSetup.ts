// Once per vitest run, before any test file: are the tools the Redis tests
// spawn on PATH? Without them those tests are reported as skipped and one
// line says why and how to install them; with CI set a missing tool fails the
// run instead (CI must run every test: .ci/run installs them).

import type { TestProject } from "vitest/node"
import * as Tools from "./Tools.ts"

export default function setup(project: TestProject): void {
  const found = Tools.find()
  project.provide("tools", { redis: found.redis, faketime: found.faketime })
  if (found.missing.length === 0) return
  const missing = `${found.missing.join(", ")} not found on PATH`
  // CI=1, CI=true (GitHub Actions, GitLab, ...): set; unset, empty, 0 or false: not set.
  if (!["", "0", "false"].includes(process.env.CI?.toLowerCase() ?? "")) {
    throw new Error(`CI is set and ${missing}: the Redis tests must run in CI. Install them: ${Tools.install}`)
  }
  const [skipped, them] = found.redis
    ? ["the clock-skew test of test/redis.test.ts", "it"]
    : ["the Redis tests (test/redis.test.ts and the Redis part of test/consumer.test.ts)", "them"]
  console.log(`Skipping ${skipped}: ${missing}. To run ${them}: ${Tools.install}`)
}
