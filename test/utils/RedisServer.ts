// A throwaway redis-server for one test: on 127.0.0.1, on a free port, with no
// persistence, stopped by its pid. `RedisServer.scoped` ties it to a scope so
// a test cannot leak one; a process-exit hook SIGKILLs any server still alive
// if the test process itself goes away.

import { type ChildProcess, execFile, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** The pid of the server running now (a restart changes it). */
  readonly pid: number
  /** SIGTERM by pid (and SIGCONT, in case it was stopped), then waits for it to exit; SIGKILL after 5 s. */
  readonly stop: () => Effect.Effect<void>
  /** SIGKILL by pid, then waits for it to exit. */
  readonly kill9: () => Effect.Effect<void>
  /** Sends a signal by pid (SIGSTOP / SIGCONT hang and resume the server). */
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Starts a new, empty server on the same port once the old one has exited (after `kill9` or `stop`). */
  readonly restart: () => Effect.Effect<void>
  /** Runs `redis-cli -h 127.0.0.1 -p <port> ...args` and answers its stdout, trimmed. */
  readonly cli: (...args: ReadonlyArray<string>) => Effect.Effect<string>
}

interface Running {
  readonly child: ChildProcess
  readonly pid: number
  readonly exited: Promise<void>
  output: string
}

const alive = new Set<Running>()
let exitHook = false
const killAllOnExit = () => {
  if (exitHook) return
  exitHook = true
  process.once("exit", () => {
    for (const running of alive) {
      try {
        process.kill(running.pid, "SIGKILL")
      } catch {
        // already gone
      }
    }
  })
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const dir = () => mkdtempSync(join(tmpdir(), "cp-redis-"))

// Starts redis-server on `port` and resolves once it said it is ready and
// answered PING; rejects (after making sure it is gone) when it exited first
// (the port was taken) or did not get ready within 30 s.
const launch = (port: number): Promise<Running> =>
  new Promise((resolve, reject) => {
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    // Its working directory (it writes nothing there with no persistence), removed when it exits.
    const workDir = dir()
    const child = spawn("redis-server", [...args, "--daemonize", "no", "--dir", workDir], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    if (child.pid === undefined) {
      child.once("error", (error) => reject(new Error(`redis-server did not start: ${error.message}`)))
      rmSync(workDir, { recursive: true, force: true })
      return
    }
    let exitedFlag = false
    const exited = new Promise<void>((done) => {
      child.once("exit", () => {
        exitedFlag = true
        alive.delete(running)
        rmSync(workDir, { recursive: true, force: true })
        done()
      })
    })
    const running: Running = { child, pid: child.pid, exited, output: "" }
    alive.add(running)
    killAllOnExit()
    const collect = (chunk: Buffer) => {
      running.output = (running.output + chunk.toString()).slice(-4000)
    }
    child.stdout?.on("data", collect)
    child.stderr?.on("data", collect)
    const deadline = Date.now() + 30_000
    const poll = () => {
      if (exitedFlag) {
        reject(new Error(`redis-server on port ${port} exited before it was ready:\n${running.output}`))
        return
      }
      if (Date.now() > deadline) {
        process.kill(running.pid, "SIGKILL")
        void exited.then(() => reject(new Error(`redis-server on port ${port} not ready in 30 s:\n${running.output}`)))
        return
      }
      if (!running.output.includes("Ready to accept connections")) {
        setTimeout(poll, 10)
        return
      }
      execFile("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "PING"], (error, stdout) => {
        if (error === null && stdout.trim() === "PONG" && !exitedFlag) resolve(running)
        else setTimeout(poll, 10)
      })
    }
    poll()
  })

const stopRunning = async (running: Running, signal: NodeJS.Signals): Promise<void> => {
  const send = (s: NodeJS.Signals) => {
    try {
      process.kill(running.pid, s)
    } catch {
      // already gone
    }
  }
  if (!alive.has(running)) return running.exited
  send(signal)
  if (signal !== "SIGKILL") send("SIGCONT")
  const timer = setTimeout(() => send("SIGKILL"), 5000)
  await running.exited
  clearTimeout(timer)
}

/** Starts a server on a free port (another one if that port was taken meanwhile). */
export const start = async (): Promise<RedisServer> => {
  let running: Running | undefined
  let port = 0
  let lastError: unknown
  for (let attempt = 0; attempt < 5 && running === undefined; attempt++) {
    port = await freePort()
    try {
      running = await launch(port)
    } catch (error) {
      lastError = error
    }
  }
  if (running === undefined) throw lastError
  let current: Running = running
  const fixedPort = port
  return {
    port: fixedPort,
    url: `redis://127.0.0.1:${fixedPort}`,
    get pid() {
      return current.pid
    },
    stop: () => Effect.promise(() => stopRunning(current, "SIGTERM")),
    kill9: () => Effect.promise(() => stopRunning(current, "SIGKILL")),
    signal: (signal) =>
      Effect.sync(() => {
        process.kill(current.pid, signal)
      }),
    restart: () =>
      Effect.promise(async () => {
        if (alive.has(current)) throw new Error(`redis-server ${current.pid} is still running: kill9() or stop() first`)
        let lastRestartError: unknown
        for (let attempt = 0; attempt < 10; attempt++) {
          try {
            current = await launch(fixedPort)
            return
          } catch (error) {
            lastRestartError = error
            await new Promise((resume) => setTimeout(resume, 100))
          }
        }
        throw lastRestartError
      }),
    cli: (...args) =>
      Effect.callback<string>((resume) => {
        const child = execFile(
          "redis-cli",
          ["-h", "127.0.0.1", "-p", String(fixedPort), ...args],
          { timeout: 10_000 },
          (error, stdout, stderr) => {
            if (error === null) resume(Effect.succeed(stdout.trim()))
            else resume(Effect.die(new Error(`redis-cli ${args.join(" ")} failed: ${error.message}\n${stderr}`)))
          }
        )
        return Effect.sync(() => child.kill("SIGKILL"))
      })
  }
}

/** A server for the current scope, stopped by pid when the scope closes. */
export const scoped: Effect.Effect<RedisServer, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() => start()),
  (server) => server.stop()
)

/** The pids of servers started by this process that are still running. */
export const running = (): ReadonlyArray<number> => Array.from(alive, (r) => r.pid)
