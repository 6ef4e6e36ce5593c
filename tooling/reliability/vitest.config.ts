import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One broker-heavy file at a time: the suite shares a 2-core machine with everything else.
    fileParallelism: false,
    reporters: ["default", ["json", { outputFile: "reports/vitest.json" }]]
  }
})
