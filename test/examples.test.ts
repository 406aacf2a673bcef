import { readFile } from "node:fs/promises"
import { join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import * as Examples from "./utils/Examples.ts"

// Every ```ts example in the README is type-checked, so none can rot: all of
// them in ONE run of the project's tsc (see test/utils/Examples.ts). A failure
// names the block (its heading) and the README line of each error.
// README_PATH=<file> checks another copy of the README.

const root = fileURLToPath(new URL("..", import.meta.url))
const readmePath = resolve(process.env.README_PATH ?? join(root, "README.md"))
const readmeName = relative(root, readmePath).startsWith("..") ? readmePath : relative(root, readmePath)

let checking:
  | Promise<{
      readonly readme: ReadonlyArray<Examples.Block>
      readonly checked: Examples.Checked
    }>
  | undefined

/** Extracts every example and type-checks them all, once. */
const checkAll = () => {
  checking ??= (async () => {
    const readme = Examples.fromMarkdown(await readFile(readmePath, "utf8"), readmeName)
    const checked = await Examples.typeCheck(root, readme)
    return { readme, checked }
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

  it(`every \`\`\`ts example in ${readmeName} type-checks`, { timeout: 60_000 }, async () => {
    const { checked, readme } = await checkAll()
    assert.isAbove(readme.length, 0, `no \`\`\`ts block found in ${readmeName}`)
    const failed = Examples.failures(checked, readme, readmeName)
    if (failed !== undefined) assert.fail(failed)
  })
})
