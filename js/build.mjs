// Bundles every js/entries/<name>.ts into python/layerscope/static/<name>.js (one small ESM
// bundle per view: anywidget stores the bundle in each widget's saved state), and copies the two
// AMD files an offline exported page needs (require.js and the html-manager's embed-amd.js).
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "python", "layerscope", "static");
const dev = process.argv.includes("--dev");
const entries = readdirSync(join(root, "js", "entries"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => join(root, "js", "entries", f));

mkdirSync(join(out, "vendor"), { recursive: true });
copyFileSync(
  join(root, "node_modules", "requirejs", "require.js"),
  join(out, "vendor", "require.js"),
);
copyFileSync(
  join(root, "node_modules", "@jupyter-widgets", "html-manager", "dist", "embed-amd.js"),
  join(out, "vendor", "embed-amd.js"),
);

const options = {
  entryPoints: entries,
  outdir: out,
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: !dev,
  sourcemap: dev ? "inline" : false,
  // An AMD-detecting dependency would otherwise break under require.js in exported pages.
  define: { "define.amd": "false" },
  logLevel: "info",
};
if (dev) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
