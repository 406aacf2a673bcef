import { execFile } from "node:child_process"
import { mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from "node:fs/promises"
import { basename, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"

// Every ```ts example in the README is type-checked, so none can rot.
//
// Each block is written to a file of its own (blocks may declare the same
// names) and all of them go through ONE run of the project's tsc against a
// generated tsconfig.json that extends the root one. A failure names the block
// and the README line of each error. README_PATH=<file> checks another copy.
//
// Where the generated files go: `.readme-examples/<run>/` at the repo root.
// - The root tsconfig's `include` (src, test, scratchpad, vitest.config.ts)
//   does not cover it, so `npm run typecheck` never sees these files.
// - It is in .gitignore, and biome.json has `vcs.useIgnoreFile`, so
//   `biome check` skips it too.
// - It is inside this package, so `import ... from "coroutine-pool"` (the
//   package's self-reference), "effect" and the `"type": "module"` of
//   package.json apply exactly as Node defines them for this package's code.
//   Under node_modules/.cache/ they would not by Node's rules, which stop the
//   package-scope lookup at a node_modules directory (no self-reference, no
//   "type"); tsc 7 resolves them there today, but that is not something to
//   rely on. The OS temp dir has no node_modules at all.
// Each run gets its own directory (two `npm test` at once do not clash) and
// removes it, and `.readme-examples/` itself once empty, when it ends.

const root = fileURLToPath(new URL("..", import.meta.url))
const readmePath = resolve(process.env.README_PATH ?? join(root, "README.md"))
const readmeName = relative(root, readmePath).startsWith("..") ? readmePath : relative(root, readmePath)
const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
const outDir = join(root, ".readme-examples")

interface Block {
  /** e.g. `example 3/4 under "Embedding it in a backend"` */
  readonly name: string
  readonly file: string
  /** README line (1-based) of the opening fence: line n of the block is README line fence + n. */
  readonly fence: number
  /** Spaces before the fence (a block in a list item), dropped from each line: README column = column + indent. */
  readonly indent: number
  readonly lines: ReadonlyArray<string>
}

const slug = (text: string) =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "")
    .slice(0, 40)

/** The fenced blocks whose info string starts with `ts` or `typescript`, in order, named after their heading. */
const extractBlocks = (markdown: string): ReadonlyArray<Block> => {
  const found: Array<Omit<Block, "name" | "file"> & { readonly heading: string }> = []
  const lines = markdown.split(/\r?\n/)
  let heading = "(before any heading)"
  let open: { marker: string; indent: number; fence: number; lang: string; body: Array<string> } | undefined
  for (const [index, line] of lines.entries()) {
    if (open === undefined) {
      const fence = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(line)
      if (fence !== null) {
        const [, indent = "", marker = "", info = ""] = fence
        const lang = info.trim().split(/\s+/)[0]?.toLowerCase() ?? ""
        open = { marker, indent: indent.length, fence: index + 1, lang, body: [] }
        continue
      }
      const title = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line)?.[1]
      if (title !== undefined) heading = title.replace(/`/g, "")
      continue
    }
    const close = /^\s*(`{3,}|~{3,})\s*$/.exec(line)?.[1]
    if (close !== undefined && close[0] === open.marker[0] && close.length >= open.marker.length) {
      if (open.lang === "ts" || open.lang === "typescript") {
        found.push({ heading, fence: open.fence, indent: open.indent, lines: open.body })
      }
      open = undefined
      continue
    }
    // Drop at most the fence's own indentation (a block nested in a list item).
    open.body.push(line.replace(new RegExp(`^ {0,${open.indent}}`), ""))
  }
  if (open !== undefined) throw new Error(`the code fence opened at line ${open.fence} is never closed`)
  return found.map((block, index) => {
    const number = String(index + 1).padStart(2, "0")
    return {
      name: `example ${index + 1}/${found.length} under "${block.heading}"`,
      file: `block-${number}-${slug(block.heading) || "untitled"}.ts`,
      fence: block.fence,
      indent: block.indent,
      lines: block.lines
    }
  })
}

interface Run {
  readonly code: number
  readonly output: string
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  new Promise<Run>((done) => {
    execFile(command, args, { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
      const output = `${stdout}${stderr}`
      done({ code, output: error !== null && code === -1 ? `${output}${error.message}\n` : output })
    })
  })

// tsc --pretty false prints `file(line,col): error TSnnnn: message`, the
// message's further lines indented. Each diagnostic is rewritten to start
// with the README location and block name, and to show the README line.
const explain = (output: string, blocks: ReadonlyArray<Block>) =>
  output
    .trimEnd()
    .split("\n")
    .map((line) => {
      const match = /^(.+?)\((\d+),(\d+)\): (.*)$/.exec(line)
      const block = match === null ? undefined : blocks.find((candidate) => candidate.file === basename(match[1] ?? ""))
      if (match === null || block === undefined) return line
      const blockLine = Number(match[2])
      const readmeLine = block.fence + blockLine
      const source = block.lines[blockLine - 1] ?? ""
      return [
        `${readmeName}:${readmeLine}:${Number(match[3]) + block.indent} (${block.name}, its line ${blockLine}): ${match[4]}`,
        `    ${readmeLine} | ${source}`
      ].join("\n")
    })
    .join("\n")

// A directory of this run's own. Retried if a run that just ended removed
// `.readme-examples/` between the mkdir and the mkdtemp.
const makeRunDir = async (): Promise<string> => {
  await mkdir(outDir, { recursive: true })
  return mkdtemp(join(outDir, "run-")).catch((error: NodeJS.ErrnoException) =>
    error.code === "ENOENT" ? makeRunDir() : Promise.reject(error)
  )
}

describe("README examples", () => {
  it("extracting: ```ts blocks only, named after their heading, fences inside blocks ignored", () => {
    const markdown = [
      "# Title", //                                   1
      "```sh", //                                     2
      "npm test", //                                  3
      "```", //                                       4
      "## Usage ##", //                               5
      "````ts", //                                    6
      "const a = 1", //                               7
      "```text", //                                   8
      "# not a heading", //                           9
      "```", //                                      10
      "````", //                                     11
      "- a list item:", //                           12
      "  ```typescript", //                          13
      "    const b = 2", //                          14
      "  ```", //                                    15
      "```text", //                                  16
      "const c: number = 'not checked'", //          17
      "```" //                                       18
    ].join("\n")
    assert.deepStrictEqual(extractBlocks(markdown), [
      {
        name: 'example 1/2 under "Usage"',
        file: "block-01-usage.ts",
        fence: 6,
        indent: 0,
        lines: ["const a = 1", "```text", "# not a heading", "```"]
      },
      { name: 'example 2/2 under "Usage"', file: "block-02-usage.ts", fence: 13, indent: 2, lines: ["  const b = 2"] }
    ])
    assert.throws(() => extractBlocks("```ts\nconst a = 1\n"), /line 1 is never closed/)
  })

  it(`every \`\`\`ts example in ${readmeName} type-checks (one tsc run)`, { timeout: 60_000 }, async () => {
    const blocks = extractBlocks(await readFile(readmePath, "utf8"))
    assert.isAbove(blocks.length, 0, `no \`\`\`ts block found in ${readmeName}`)

    const dir = await makeRunDir()
    try {
      for (const block of blocks) {
        // `export {}` makes the file a module even if the block imports
        // nothing; appended last, so block line n stays file line n.
        await writeFile(join(dir, block.file), `${block.lines.join("\n")}\nexport {}\n`)
      }
      const settings = {
        extends: relative(dir, join(root, "tsconfig.json")),
        compilerOptions: {
          // Everything else comes from the root tsconfig (strict,
          // exactOptionalPropertyTypes, noUncheckedIndexedAccess, nodenext,
          // verbatimModuleSyntax, ...): the examples must compile under the
          // strictest settings a user may have. Except these two: an example
          // defines `program` or `main` to show a value, not to use it, or
          // takes a callback parameter it does not need; exporting or using
          // each one would only add noise to the README. (Kept on, they would
          // fail the current README: `program`, `main`, `watch` are unused.)
          noUnusedLocals: false,
          noUnusedParameters: false
        },
        files: blocks.map((block) => block.file),
        // `include` would otherwise be inherited from the root config.
        include: []
      }
      await writeFile(join(dir, "tsconfig.json"), `${JSON.stringify(settings, null, 2)}\n`)

      // Run from the repo root, so tsc prints an error in src/ (which the
      // examples import) as src/..., not ../../src/...
      const config = join(relative(root, dir), "tsconfig.json")
      const result = await run(process.execPath, [tsc, "--noEmit", "--pretty", "false", "-p", config], root)
      if (result.code !== 0) {
        assert.fail(
          [
            `tsc exited with code ${result.code} on the \`\`\`ts examples of ${readmeName}:`,
            "",
            explain(result.output, blocks),
            "",
            `Examples checked: ${blocks.map((block) => `${block.name} at line ${block.fence}`).join("; ")}`
          ].join("\n")
        )
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
      await rmdir(outDir).catch(() => undefined) // only once no other run uses it
    }
  })
})
