import { readFile } from "node:fs/promises"
import { join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import * as Examples from "./utils/Examples.ts"

// Every ```ts example in the README and in the JSDoc of src/ is type-checked,
// so none can rot: all of them in ONE run of the project's tsc (see
// test/utils/Examples.ts), then one test for the README's and one for the
// JSDoc's. A failure names the source, the block (its heading, or the export
// its comment documents) and the source line of each error.
// README_PATH=<file> checks another copy of the README.

const root = fileURLToPath(new URL("..", import.meta.url))
const readmePath = resolve(process.env.README_PATH ?? join(root, "README.md"))
const readmeName = relative(root, readmePath).startsWith("..") ? readmePath : relative(root, readmePath)

// Broken on purpose, and checked in the same run: proves that an error in an
// example is reported, at its source line and column, rather than passed over.
const canarySource = [
  "/**", //                                                  1
  " * **Example** (Broken on purpose)", //                   2
  " *", //                                                   3
  " * ```ts", //                                             4
  ' * import { CoroutinePool } from "coroutine-pool"', //    5
  " *", //                                                   6
  " * const size: string = CoroutinePool.make({ max: 1 })", // 7
  " * ```", //                                               8
  " */", //                                                  9
  "export const canary = 0" //                              10
].join("\n")

// Lines that open a ```ts fence in a comment: a count the extractor must match.
const jsdocFence = /^\s*\*\s*(`{3,}|~{3,})\s*(ts|typescript)\b/i

let checking:
  | Promise<{
      readonly readme: ReadonlyArray<Examples.Block>
      readonly jsdoc: ReadonlyArray<Examples.Block>
      readonly fences: number
      readonly canary: ReadonlyArray<Examples.Block>
      readonly checked: Examples.Checked
    }>
  | undefined

/** Extracts every example and type-checks them all, once for the tests below. */
const checkAll = () => {
  checking ??= (async () => {
    const readme = Examples.fromMarkdown(await readFile(readmePath, "utf8"), readmeName)
    const sources = await Promise.all(
      (await Examples.sourceFiles(root, "src")).map(async (file) => ({
        file,
        code: await readFile(join(root, file), "utf8")
      }))
    )
    const jsdoc = sources.flatMap(({ code, file }) => Examples.fromJSDoc(code, file))
    const fences = sources.flatMap(({ code }) => code.split(/\r?\n/).filter((line) => jsdocFence.test(line))).length
    const canary = Examples.fromJSDoc(canarySource, "test/canary.ts")
    const checked = await Examples.typeCheck(root, [...readme, ...jsdoc, ...canary])
    return { readme, jsdoc, fences, canary, checked }
  })()
  return checking
}

describe("examples", () => {
  it("extracting from Markdown: ```ts blocks only, named after their heading, fences inside blocks ignored", () => {
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
    assert.deepStrictEqual(Examples.fromMarkdown(markdown, "README.md"), [
      {
        source: "README.md",
        name: 'example 1/2 under "Usage"',
        file: "readme-01-usage.ts",
        fence: 6,
        prefixes: ["", "", "", ""],
        lines: ["const a = 1", "```text", "# not a heading", "```"]
      },
      {
        source: "README.md",
        name: 'example 2/2 under "Usage"',
        file: "readme-02-usage.ts",
        fence: 13,
        prefixes: ["  "],
        lines: ["  const b = 2"]
      }
    ])
    assert.throws(() => Examples.fromMarkdown("```ts\nconst a = 1\n", "README.md"), /line 1 is never closed/)
  })

  it("extracting from JSDoc: ` * ` stripped, ```ts blocks only, named after the export documented", () => {
    const code = [
      "/**", //                                       1
      " * The module.", //                            2
      " *", //                                        3
      " * ```ts", //                                  4
      " * const m = 0", //                            5
      " * ```", //                                    6
      " */", //                                       7
      'import * as Effect from "effect/Effect"', //   8
      "", //                                          9
      "/** One line, no block. */", //               10
      "", //                                         11
      "/**", //                                      12
      " * A thing.", //                              13
      " *", //                                       14
      " * **Example** (Using it)", //                15
      " *", //                                       16
      " * ```ts", //                                 17
      " * const a: number = 1", //                   18
      " *   + 1", //                                 19
      " *", //                                       20
      " * ```", //                                   21
      " *", //                                       22
      " * ```text", //                               23
      " * not checked", //                           24
      " * ```", //                                   25
      " *", //                                       26
      " * ```typescript", //                         27
      " * const b = 2", //                           28
      " * ```", //                                   29
      " *", //                                       30
      " * @since 0.1.0", //                          31
      " */", //                                      32
      "export const thing = Effect.void", //         33
      "", //                                         34
      "  /**", //                                    35
      "   * - in a list:", //                        36
      "   *   ```ts", //                             37
      "   *     const c = 3", //                     38
      "   *   ```", //                               39
      "   */", //                                    40
      "export interface Thing {}" //                 41
    ].join("\n")
    assert.deepStrictEqual(Examples.fromJSDoc(code, "src/A.ts"), [
      {
        source: "src/A.ts",
        name: "example 1/1 of the module",
        file: "jsdoc-a-01-the-module.ts",
        fence: 4,
        prefixes: [" * "],
        lines: ["const m = 0"]
      },
      {
        source: "src/A.ts",
        name: 'example 1/2 ("Using it") of export const thing',
        file: "jsdoc-a-02-thing.ts",
        fence: 17,
        prefixes: [" * ", " * ", " *"],
        lines: ["const a: number = 1", "  + 1", ""]
      },
      {
        source: "src/A.ts",
        name: "example 2/2 of export const thing",
        file: "jsdoc-a-03-thing.ts",
        fence: 27,
        prefixes: [" * "],
        lines: ["const b = 2"]
      },
      {
        source: "src/A.ts",
        name: "example 1/1 of export interface Thing",
        file: "jsdoc-a-04-thing.ts",
        fence: 37,
        prefixes: ["   *   "],
        lines: ["  const c = 3"]
      }
    ])
    assert.throws(() => Examples.fromJSDoc("/**\n * ```ts\n * const a = 1\n */\n", "src/B.ts"), /src\/B.ts: .* line 2/)
    assert.throws(() => Examples.fromJSDoc("/**\n * text\n", "src/B.ts"), /src\/B.ts: the comment opened at line 1/)
  })

  it("a broken example fails, reported at its source line (the check itself)", { timeout: 60_000 }, async () => {
    const { canary, checked } = await checkAll()
    const message = Examples.failures(checked, canary, "test/canary.ts") ?? ""
    assert.include(
      message,
      'test/canary.ts:7:10 (example 1/1 ("Broken on purpose") of export const canary, its line 3): error TS2322: '
    )
    assert.include(message, "\n    7 |  * const size: string = CoroutinePool.make({ max: 1 })\n")
  })

  it(`every \`\`\`ts example in ${readmeName} type-checks`, { timeout: 60_000 }, async () => {
    const { checked, readme } = await checkAll()
    assert.isAbove(readme.length, 0, `no \`\`\`ts block found in ${readmeName}`)
    const failed = Examples.failures(checked, readme, readmeName)
    if (failed !== undefined) assert.fail(failed)
  })

  it("every ```ts example in the JSDoc of src/ type-checks", { timeout: 60_000 }, async () => {
    const { checked, fences, jsdoc } = await checkAll()
    assert.isAbove(jsdoc.length, 0, "no ```ts block found in the JSDoc of src/")
    assert.strictEqual(jsdoc.length, fences, "a ```ts fence in a comment of src/ was not extracted")
    const failed = Examples.failures(checked, jsdoc, "the JSDoc of src/")
    if (failed !== undefined) assert.fail(failed)
  })
})
