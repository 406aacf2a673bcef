import { configDefaults, defineConfig } from "vitest/config"

// Two groups, one after the other: test/consumer.test.ts (npm pack, three
// npm installs, tsc) would load both cores, and next to it the Redis load
// tests miss their 500 ms store timeouts.
export default defineConfig({
  test: {
    globalSetup: ["test/utils/globalSetup.ts"],
    testTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: "library",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/consumer.test.ts"],
          sequence: { groupOrder: 0 }
        }
      },
      {
        extends: true,
        test: { name: "package", include: ["test/consumer.test.ts"], sequence: { groupOrder: 1 } }
      }
    ]
  }
})
