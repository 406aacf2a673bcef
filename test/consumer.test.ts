import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { copiesOf, ok, type Run, run } from "./utils/Consumer.ts"
import * as Examples from "./utils/Examples.ts"
import * as RedisServer from "./utils/RedisServer.ts"
import * as Tools from "./utils/Tools.ts"

// The package as an app gets it: `npm pack` (its prepack builds dist/), then,
// in throw-away directories under the OS temp dir:
// - app/: the tarball beside the app's own effect, @effect/platform-node,
//   typescript and @types/node (this repo's versions, so npm's cache serves
//   them) in ONE `npm install`; test/fixtures/consumer/main.ts compiled by
//   the app's own tsc (nodenext, strict, no allowImportingTsExtensions, the
//   package's .d.ts checked) and run with plain node; the package's bin.
// - lean/: the tarball beside effect only: the optional peer is not
//   installed, the library still loads, the bin says what it needs.
// - v3/: `npm install --dry-run effect@3 <tarball>` fails with ERESOLVE.
// All three installs run at once. The expected output of main.ts is in
// test/fixtures/consumer/expected-*.txt: update it with main.ts.
// main.ts begins with the README's quick start, so the quick start runs here
// as a user runs it; a test below checks that the two are the same code.

const root = fileURLToPath(new URL("..", import.meta.url))
const fixtures = join(root, "test", "fixtures", "consumer")
const manifest = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as {
  readonly name: string
  readonly version: string
}
const installed = async (name: string) =>
  `${name}@${(JSON.parse(await readFile(join(root, "node_modules", name, "package.json"), "utf8")) as { version: string }).version}`

const npm = (args: ReadonlyArray<string>, cwd: string) => run("npm", args, { cwd, timeout: 120_000 })
const quiet = ["--prefer-offline", "--no-audit", "--no-fund"]

// What a strict app on Node's own module rules has. skipLibCheck stays off, so
// the package's .d.ts files are type-checked too (the DOM libs are for
// effect's own .d.ts, which name a few Web types).
const appTsconfig = {
  compilerOptions: {
    target: "es2024",
    lib: ["es2024", "dom", "dom.iterable"],
    types: ["node"],
    module: "nodenext",
    moduleResolution: "nodenext",
    strict: true,
    skipLibCheck: false,
    rootDir: "src",
    outDir: "dist"
  },
  include: ["src"]
}

const writeApp = async (dir: string, name: string) => {
  await mkdir(dir, { recursive: true })
  await writeFile(
    join(dir, "package.json"),
    `${JSON.stringify({ name, version: "1.0.0", private: true, type: "module" }, null, 2)}\n`
  )
}

interface Packed {
  readonly filename: string
  readonly files: ReadonlyArray<{ readonly path: string }>
}

// The quick start in README.md is main.ts's first part: the same lines, but
// for its imports (at the top of main.ts) and the line that runs it (main.ts
// runs it first in its program).
it("README.md's quick start is the code main.ts runs first", async () => {
  const readme = Examples.fromMarkdown(await readFile(join(root, "README.md"), "utf8"), "README.md")
  const quickStart = readme.find((block) => block.name.endsWith('under "Quick start"'))
  assert.isDefined(quickStart, "a ```ts block under the heading Quick start in README.md")
  const region = /^\/\/ quick start \(README\.md\): begin\n([\s\S]*?)^\/\/ quick start \(README\.md\): end$/m.exec(
    await readFile(join(fixtures, "main.ts"), "utf8")
  )?.[1]
  assert.isDefined(region, "the lines between the two quick start comments of main.ts")
  const code = (quickStart?.lines ?? []).filter(
    (line) => !line.startsWith("import ") && line !== "Effect.runPromise(quickStart)"
  )
  assert.strictEqual(code.join("\n").trim(), (region ?? "").trim())
})

describe.concurrent("the packed package, installed in a throw-away app", () => {
  let work = ""
  let tarball = ""
  let files: ReadonlyArray<string> = []
  let app = ""
  let lean = ""
  let v3: Run | undefined
  let compiled: Run | undefined

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "coroutine-pool-consumer-"))
    const packed = ok("npm pack", await npm(["pack", "--pack-destination", work, "--json"], root))
    const [info] = JSON.parse(packed.stdout) as ReadonlyArray<Packed>
    assert.isDefined(info)
    if (info === undefined) return
    tarball = join(work, info.filename)
    files = info.files.map((file) => file.path).sort()

    app = join(work, "app")
    lean = join(work, "lean")
    const effect = await installed("effect")
    const others = await Promise.all(["@effect/platform-node", "typescript", "@types/node"].map(installed))
    await Promise.all([writeApp(app, "consumer-app"), writeApp(lean, "lean-app"), writeApp(join(work, "v3"), "v3-app")])
    const [full, leanInstall, dryRun] = await Promise.all([
      npm(["install", ...quiet, tarball, effect, ...others], app),
      npm(["install", ...quiet, tarball, effect], lean),
      npm(["install", "--dry-run", ...quiet, "effect@3", tarball], join(work, "v3"))
    ])
    ok("npm install in the app", full)
    ok("npm install in the lean app", leanInstall)
    v3 = dryRun

    await mkdir(join(app, "src"))
    await copyFile(join(fixtures, "main.ts"), join(app, "src", "main.ts"))
    await writeFile(join(app, "tsconfig.json"), `${JSON.stringify(appTsconfig, null, 2)}\n`)
    compiled = await run(join(app, "node_modules", ".bin", "tsc"), ["-p", ".", "--pretty", "false"], { cwd: app })
  }, 180_000)

  afterAll(async () => {
    if (work !== "") await rm(work, { recursive: true, force: true })
  })

  it("the tarball holds dist/ (JS, .d.ts, maps), src/ for the maps, README, LICENSE, package.json: nothing else", () => {
    const stray = files.filter(
      (path) =>
        !["README.md", "LICENSE", "package.json"].includes(path) &&
        !/^dist\/.+\.(js|js\.map|d\.ts|d\.ts\.map)$/.test(path) &&
        !/^src\/.+\.ts$/.test(path)
    )
    assert.deepStrictEqual(stray, [])
    assert.deepStrictEqual(
      files.filter((path) => /^(test|scratchpad|\.ci)\/|\.test\.|\.tsbuildinfo$/.test(path)),
      []
    )
    for (const module of ["index", "CoroutinePool", "SharedPool", "PoolStore", "HttpAdmission", "Timeline", "Demo"]) {
      for (const ext of [".js", ".js.map", ".d.ts", ".d.ts.map"]) assert.include(files, `dist/${module}${ext}`)
      assert.include(files, `src/${module}.ts`, "the maps' sources")
    }
    assert.include(files, "dist/bin.js")
    assert.includeMembers([...files], ["README.md", "LICENSE", "package.json"])
  })

  it("the app has exactly one copy of effect (the library uses the app's)", async () => {
    assert.deepStrictEqual(await copiesOf(app, "effect"), [join(app, "node_modules", "effect")])
    assert.deepStrictEqual(await copiesOf(lean, "effect"), [join(lean, "node_modules", "effect")])
  })

  it("the app's own tsc compiles main.ts against the package's types, with no error", () => {
    assert.deepStrictEqual(compiled, { code: 0, stdout: "", stderr: "" })
  })

  it("main.js: an in-process pool, the sub-paths, HttpAdmission on a Node HTTP server (one 200, one 503)", async () => {
    const result = await run(process.execPath, ["dist/main.js", "local"], { cwd: app, timeout: 20_000 })
    const expected = await readFile(join(fixtures, "expected-local.txt"), "utf8")
    assert.deepStrictEqual(result, { code: 0, stdout: expected, stderr: "" })
  })

  it.runIf(Tools.available().redis)("main.js: two SharedPools of one key over a real redis-server", async () => {
    const server = await RedisServer.start()
    try {
      const result = await run(process.execPath, ["dist/main.js", "shared", server.url], { cwd: app, timeout: 20_000 })
      const expected = await readFile(join(fixtures, "expected-shared.txt"), "utf8")
      assert.deepStrictEqual(result, { code: 0, stdout: expected, stderr: "" })
    } finally {
      await Effect.runPromise(server.stop())
    }
  })

  it("the bin runs the demo (the same lines as the repo's CLI) and prints the package's version", async () => {
    const bin = join(app, "node_modules", ".bin", "coroutine-pool")
    const [packaged, source, version] = await Promise.all([
      run(bin, ["--workers", "3"], { cwd: app, timeout: 20_000 }),
      run(process.execPath, [join(root, "src", "bin.ts"), "--workers", "3"], { cwd: root, timeout: 20_000 }),
      run(bin, ["--version"], { cwd: app, timeout: 20_000 })
    ])
    assert.strictEqual(source.code, 0)
    assert.match(source.stdout, /^Worker 0: acquired \(1\/2 active\)\n/)
    assert.deepStrictEqual(packaged, source)
    assert.deepStrictEqual(version, { code: 0, stdout: `coroutine-pool-demo v${manifest.version}\n`, stderr: "" })
  })

  it("without @effect/platform-node (an optional peer, not installed): the library loads, the bin says what it needs", async () => {
    assert.deepStrictEqual(await copiesOf(lean, "@effect/platform-node"), [])
    const script = [
      'import * as Package from "coroutine-pool"',
      'import { Effect } from "effect"',
      "const pool = Effect.flatMap(Package.CoroutinePool.make({ max: 1 }), (pool) => pool.tryAcquire(1, { worker: 0 }))",
      "console.log(Object.keys(Package).join(' '), await Effect.runPromise(Effect.scoped(pool)))"
    ].join("\n")
    const [library, bin] = await Promise.all([
      run(process.execPath, ["--input-type=module", "-e", script], { cwd: lean, timeout: 20_000 }),
      run(join(lean, "node_modules", ".bin", "coroutine-pool"), ["--workers", "6"], { cwd: lean, timeout: 20_000 })
    ])
    assert.deepStrictEqual(library, {
      code: 0,
      stdout: "CoroutinePool Demo HttpAdmission PoolStore SharedPool Timeline true\n",
      stderr: ""
    })
    assert.deepStrictEqual(bin, {
      code: 1,
      stdout: "",
      stderr:
        "coroutine-pool: the demo needs @effect/platform-node, which is not installed (an optional peer dependency); " +
        "run it with: npx -p coroutine-pool -p @effect/platform-node coroutine-pool --workers 6\n"
    })
  })

  it("installing it beside effect@3 fails at install time with npm's peer-dependency error", () => {
    assert.isDefined(v3)
    assert.notStrictEqual(v3?.code, 0)
    assert.include(v3?.stderr, "ERESOLVE")
    assert.include(v3?.stderr, `peer effect@"^4.1.0" from ${manifest.name}@${manifest.version}`)
  })
})
