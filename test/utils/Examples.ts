// The ```ts examples of the README and of the JSDoc in src/, extracted and
// type-checked (test/examples.test.ts), so that none can rot.
//
// Each block is written to a file of its own (blocks may declare the same
// names) and all of them go through ONE run of the project's tsc against a
// generated tsconfig.json that extends the root one. Each error is reported at
// its place in the source the block came from (README.md:120:7,
// src/CoroutinePool.ts:335:9) with the block's name (its heading, or the
// export its comment documents) and the source line.
//
// Where the generated files go: `.examples/<run>/` at the repo root.
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
// removes it, and `.examples/` itself once empty, when it ends.

import { execFile } from "node:child_process"
import { mkdir, mkdtemp, readdir, rm, rmdir, writeFile } from "node:fs/promises"
import { join, relative, resolve } from "node:path"

export interface Block {
  /** Where it comes from, as printed: `README.md`, `src/CoroutinePool.ts`. */
  readonly source: string
  /** e.g. `example 3/4 under "Embedding it in a backend"`, `example 1/2 ("Drawing the run") of export const run`. */
  readonly name: string
  /** Its file in the run's directory. */
  readonly file: string
  /** Source line (1-based) of the opening fence: line n of the block is source line fence + n. */
  readonly fence: number
  /**
   * What was dropped from the start of each source line to get the block's
   * line: the indentation of a fence in a list item, a comment's ` * `.
   * Source column = column + prefix length; source text = prefix + line.
   */
  readonly prefixes: ReadonlyArray<string>
  readonly lines: ReadonlyArray<string>
}

/** A line of text to look for fences in: its text, its source line (1-based), what was dropped before it. */
interface Line {
  readonly text: string
  readonly line: number
  readonly prefix: string
}

interface Fenced {
  /** The last Markdown heading before the fence. */
  readonly heading: string | undefined
  /** The `**Example** (Title)` line before the fence, if it is the nearest such line and no block came since. */
  readonly title: string | undefined
  readonly fence: number
  readonly prefixes: ReadonlyArray<string>
  readonly lines: ReadonlyArray<string>
}

/** The fenced blocks whose info string starts with `ts` or `typescript`, in order. */
const fencedBlocks = (lines: ReadonlyArray<Line>, where: string): ReadonlyArray<Fenced> => {
  const found: Array<Fenced> = []
  let heading: string | undefined
  let title: string | undefined
  let open:
    | { marker: string; indent: number; fence: number; lang: string; prefixes: Array<string>; body: Array<string> }
    | undefined
  for (const { text, line, prefix } of lines) {
    if (open === undefined) {
      const fence = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(text)
      if (fence !== null) {
        const [, indent = "", marker = "", info = ""] = fence
        const lang = info.trim().split(/\s+/)[0]?.toLowerCase() ?? ""
        open = { marker, indent: indent.length, fence: line, lang, prefixes: [], body: [] }
        continue
      }
      const headed = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(text)?.[1]
      if (headed !== undefined) heading = headed.replace(/`/g, "")
      const titled = /^\s*\*\*Example\*\*\s*\((.*)\)\s*$/.exec(text)?.[1]
      if (titled !== undefined) title = titled
      continue
    }
    const close = /^\s*(`{3,}|~{3,})\s*$/.exec(text)?.[1]
    if (close !== undefined && close[0] === open.marker[0] && close.length >= open.marker.length) {
      if (open.lang === "ts" || open.lang === "typescript") {
        found.push({ heading, title, fence: open.fence, prefixes: open.prefixes, lines: open.body })
        title = undefined
      }
      open = undefined
      continue
    }
    // Drop at most the fence's own indentation (a block nested in a list item).
    const indent = new RegExp(`^ {0,${open.indent}}`).exec(text)?.[0] ?? ""
    open.prefixes.push(prefix + indent)
    open.body.push(text.slice(indent.length))
  }
  if (open !== undefined) throw new Error(`${where}: the code fence opened at line ${open.fence} is never closed`)
  return found
}

const slug = (text: string) =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "")
    .slice(0, 40)

/** The ```ts blocks of a Markdown file, named after their heading. */
export const fromMarkdown = (markdown: string, source: string): ReadonlyArray<Block> => {
  const lines = markdown.split(/\r?\n/).map((text, index) => ({ text, line: index + 1, prefix: "" }))
  const found = fencedBlocks(lines, source)
  return found.map((block, index) => {
    const heading = block.heading ?? "(before any heading)"
    return {
      source,
      name: `example ${index + 1}/${found.length} under "${heading}"`,
      file: `readme-${String(index + 1).padStart(2, "0")}-${slug(heading) || "untitled"}.ts`,
      fence: block.fence,
      prefixes: block.prefixes,
      lines: block.lines
    }
  })
}

const exported =
  /^export\s+(?:declare\s+)?(?:default\s+)?(?:abstract\s+)?(?:async\s+)?(const|let|var|function|class|interface|type|enum|namespace)\b\*?\s*([A-Za-z_$][\w$]*)/

/** What a comment that ends before line `after` (0-based) documents: `export const NAME`, ... */
const documented = (lines: ReadonlyArray<string>, after: number): string => {
  for (const line of lines.slice(after)) {
    const match = exported.exec(line)
    if (match !== null) return `export ${match[1]} ${match[2]}`
  }
  return "no export"
}

/**
 * The ```ts blocks of the JSDoc comments (`/** ... *\/`, opening a line) of a
 * TypeScript file, each named after the export its comment documents: the
 * first `export const|function|class|interface|type NAME` after the comment
 * (or "the module" for a comment before the first import). Each comment line
 * loses its leading ` * `.
 */
export const fromJSDoc = (code: string, source: string): ReadonlyArray<Block> => {
  const lines = code.split(/\r?\n/)
  const firstImport = lines.findIndex((line) => /^import\s/.test(line))
  const found: Array<Block> = []
  for (let start = 0; start < lines.length; start++) {
    const opening = /^(\s*\/\*\*)(?!\/)( ?)(.*)$/.exec(lines[start] ?? "")
    if (opening === null) continue
    const [, head = "", space = "", rest = ""] = opening
    if (rest.includes("*/")) continue // one line: no block
    const comment: Array<Line> = [{ text: rest, line: start + 1, prefix: head + space }]
    let end = start + 1
    for (; end < lines.length; end++) {
      const text = lines[end] ?? ""
      const closing = text.indexOf("*/")
      const inner = closing === -1 ? text : text.slice(0, closing)
      const prefix = /^\s*\*(?!\/) ?/.exec(inner)?.[0] ?? ""
      comment.push({ text: inner.slice(prefix.length), line: end + 1, prefix })
      if (closing !== -1) break
    }
    if (end === lines.length) throw new Error(`${source}: the comment opened at line ${start + 1} is never closed`)
    const blocks = fencedBlocks(comment, source)
    const documents = firstImport !== -1 && start < firstImport ? "the module" : documented(lines, end + 1)
    const base = slug(source.replace(/\.ts$/, "").replace(/^src\//, "")) || "source"
    for (const [index, block] of blocks.entries()) {
      const number = String(found.length + 1).padStart(2, "0")
      found.push({
        source,
        name: `example ${index + 1}/${blocks.length}${block.title === undefined ? "" : ` ("${block.title}")`} of ${documents}`,
        file: `jsdoc-${base}-${number}-${slug(documents.replace(/^export \S+ /, "")) || "untitled"}.ts`,
        fence: block.fence,
        prefixes: block.prefixes,
        lines: block.lines
      })
    }
    start = end
  }
  return found
}

/** The `.ts` files under `dir` (recursively), as paths relative to `root`, sorted. */
export const sourceFiles = async (root: string, dir: string): Promise<ReadonlyArray<string>> =>
  (await readdir(join(root, dir), { recursive: true }))
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts") && !file.endsWith(".test.ts"))
    .map((file) =>
      relative(root, join(root, dir, file))
        .split("\\")
        .join("/")
    )
    .sort()

// ---------------------------------------------------------------------------
// checking
// ---------------------------------------------------------------------------

export interface Checked {
  /** tsc's exit code (-1: it did not run to the end). */
  readonly code: number
  /** Each block's diagnostics, rewritten to point at its source. */
  readonly errors: ReadonlyMap<Block, ReadonlyArray<string>>
  /** What tsc printed that is not about a block (an error in src/, a bad config, a crash). */
  readonly other: ReadonlyArray<string>
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

// A directory of this run's own. Retried if a run that just ended removed
// `.examples/` between the mkdir and the mkdtemp.
const makeRunDir = async (outDir: string): Promise<string> => {
  await mkdir(outDir, { recursive: true })
  return mkdtemp(join(outDir, "run-")).catch((error: NodeJS.ErrnoException) =>
    error.code === "ENOENT" ? makeRunDir(outDir) : Promise.reject(error)
  )
}

// tsc --pretty false prints `file(line,col): error TSnnnn: message`, the
// message's further lines indented. Each diagnostic about a block is
// rewritten to start with the source location and block name, and is
// followed by the source line it points at.
const attribute = (
  output: string,
  blocks: ReadonlyArray<Block>,
  root: string,
  dir: string
): Pick<Checked, "errors" | "other"> => {
  const byPath = new Map(blocks.map((block) => [join(dir, block.file), block]))
  const errors = new Map<Block, Array<string>>()
  const other: Array<string> = []
  let current: Array<string> = other
  let shown: string | undefined // the source line of the current diagnostic, shown after its last line
  const finish = () => {
    if (shown !== undefined) current.push(shown)
    shown = undefined
  }
  for (const line of output.trimEnd().split("\n")) {
    const match = /^(.+?)\((\d+),(\d+)\): (.*)$/.exec(line)
    if (match === null) {
      if (line !== "") current.push(line)
      continue
    }
    finish()
    const block = byPath.get(resolve(root, match[1] ?? ""))
    if (block === undefined) {
      current = other
      other.push(line)
      continue
    }
    const blockLine = Number(match[2])
    const sourceLine = block.fence + blockLine
    const prefix = block.prefixes[blockLine - 1] ?? ""
    current = errors.get(block) ?? []
    errors.set(block, current)
    current.push(
      `${block.source}:${sourceLine}:${Number(match[3]) + prefix.length} (${block.name}, its line ${blockLine}): ${match[4]}`
    )
    shown = `    ${sourceLine} | ${prefix}${block.lines[blockLine - 1] ?? ""}`
  }
  finish()
  return { errors, other }
}

/**
 * Type-checks every block in one run of the project's tsc (`root`'s
 * node_modules), with a tsconfig that extends `root`'s.
 */
export const typeCheck = async (root: string, blocks: ReadonlyArray<Block>): Promise<Checked> => {
  const outDir = join(root, ".examples")
  const files = new Set(blocks.map((block) => block.file))
  if (files.size !== blocks.length) throw new Error("two examples were given the same file name")
  const dir = await makeRunDir(outDir)
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
        // each one would only add noise to the docs. (Kept on, they would
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
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
    const config = join(relative(root, dir), "tsconfig.json")
    const result = await run(process.execPath, [tsc, "--noEmit", "--pretty", "false", "-p", config], root)
    const { errors, other } = attribute(result.output, blocks, root, dir)
    if (result.code !== 0 && errors.size === 0 && other.length === 0) {
      return { code: result.code, errors, other: ["(tsc failed and printed nothing)"] }
    }
    return { code: result.code, errors, other }
  } finally {
    await rm(dir, { recursive: true, force: true })
    await rmdir(outDir).catch(() => undefined) // only once no other run uses it
  }
}

/**
 * Why `blocks` (some of those checked) fail, as one message; `undefined` when
 * none of them has an error and tsc reported nothing else.
 */
export const failures = (checked: Checked, blocks: ReadonlyArray<Block>, what: string): string | undefined => {
  const failing = blocks.filter((block) => checked.errors.has(block))
  if (failing.length === 0 && checked.other.length === 0) return undefined
  return [
    `tsc exited with code ${checked.code} on the \`\`\`ts examples of ${what}: ${failing.length} of ${blocks.length} fail`,
    ...failing.flatMap((block) => ["", ...(checked.errors.get(block) ?? [])]),
    ...(checked.other.length === 0 ? [] : ["", "Reported outside any example:", ...checked.other]),
    "",
    `Examples checked (${blocks.length}):`,
    ...blocks.map((block) => `  ${block.source}:${block.fence}: ${block.name}`)
  ].join("\n")
}
