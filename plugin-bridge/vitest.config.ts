import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Obsidian provides "obsidian" at run time; tests get a small stand-in that records calls
    alias: { obsidian: fileURLToPath(new URL("./test/obsidian-mock.ts", import.meta.url)) },
  },
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
