import esbuild from "esbuild";
import { builtinModules } from "node:module";

const production = process.argv[2] === "production";

const context = await esbuild.context({
  entryPoints: ["src/main.ts"],
  bundle: true,
  // provided by Obsidian at run time
  external: ["obsidian", "electron", "@codemirror/*", "@lezer/*", ...builtinModules],
  format: "cjs",
  target: "es2020",
  platform: "browser",
  logLevel: "info",
  sourcemap: production ? false : "inline",
  treeShaking: true,
  minify: production,
  outfile: "main.js",
});

// the client alone, for other editors and Node >= 18 (no Obsidian inside)
const client = await esbuild.context({
  entryPoints: ["src/client.ts"],
  bundle: true,
  format: "esm",
  target: "es2020",
  platform: "neutral",
  logLevel: "info",
  outfile: "dist/vaultlens-client.mjs",
});

if (production) {
  await Promise.all([context.rebuild(), client.rebuild()]);
  await Promise.all([context.dispose(), client.dispose()]);
} else {
  await Promise.all([context.watch(), client.watch()]);
}
