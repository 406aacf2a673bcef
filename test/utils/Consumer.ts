// Helpers of test/consumer.test.ts: run a command, with an environment fit
// for a nested npm; find every installed copy of a package.

import { execFile } from "node:child_process"
import { readdir, readFile } from "node:fs/promises"
import { delimiter, dirname, join } from "node:path"

export interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

// npm exports its configuration and the running package's details as npm_*
// variables to the scripts it runs (`npm test`): npm_config_local_prefix
// would point a nested `npm install` at this repository. Keep only what
// says where the registry, cache and user config are. The directory of the
// Node running the tests goes first on PATH, so `#!/usr/bin/env node`
// scripts (npm itself, the package's bin) run on it too.
const keep = new Set(["npm_config_cache", "npm_config_registry", "npm_config_userconfig"])
export const env = (): NodeJS.ProcessEnv => {
  const clean: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.toLowerCase().startsWith("npm_") || keep.has(name.toLowerCase())) clean[name] = value
  }
  clean.PATH = [dirname(process.execPath), process.env.PATH ?? ""].join(delimiter)
  return clean
}

/** Runs `command` (never through a shell) and answers its exit code and output; never rejects. */
export const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly timeout?: number }
): Promise<Run> =>
  new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: env(), timeout: options.timeout ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
        resolve({ code, stdout, stderr: code === -1 && error !== null ? `${stderr}${error.message}\n` : stderr })
      }
    )
  })

/** Fails with the command's output unless it exited 0. */
export const ok = (what: string, result: Run): Run => {
  if (result.code !== 0) {
    throw new Error(`${what} exited with code ${result.code}:\n${result.stdout}${result.stderr}`)
  }
  return result
}

/** The directory of every installed package named `name` under `dir`/node_modules, nested ones included. */
export const copiesOf = async (dir: string, name: string): Promise<ReadonlyArray<string>> => {
  const found: Array<string> = []
  const walk = async (nodeModules: string): Promise<void> => {
    const entries = await readdir(nodeModules, { withFileTypes: true }).catch(() => [])
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name.startsWith(".")) continue
      const packages = entry.name.startsWith("@")
        ? (await readdir(join(nodeModules, entry.name), { withFileTypes: true }))
            .filter((scoped) => scoped.isDirectory())
            .map((scoped) => join(nodeModules, entry.name, scoped.name))
        : [join(nodeModules, entry.name)]
      for (const pkg of packages) {
        const manifest = await readFile(join(pkg, "package.json"), "utf8").catch(() => undefined)
        if (manifest !== undefined && (JSON.parse(manifest) as { readonly name?: string }).name === name)
          found.push(pkg)
        await walk(join(pkg, "node_modules"))
      }
    }
  }
  await walk(join(dir, "node_modules"))
  return found
}
