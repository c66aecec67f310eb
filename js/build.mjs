// Bundles every js/entries/<name>.ts into python/layerscope/static/<name>.js (one small ESM
// bundle per view: anywidget stores the bundle in each widget's saved state), and copies the two
// AMD files an offline exported page needs (require.js and the html-manager's embed-amd.js).
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
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
// embed-amd.js asks for its Font Awesome faces (bqplot's toolbar icons) at webpack's public path
// (`x.p + "<hash>.woff2"`), next to the script: in an exported page that is a file:// miss per
// face and format. Inline the woff2 faces (every browser we support takes woff2 first, so the
// woff/ttf/eot fallbacks are never asked for).
const htmlManager = join(root, "node_modules", "@jupyter-widgets", "html-manager", "dist");
let embed = readFileSync(join(htmlManager, "embed-amd.js"), "utf8");
let inlined = 0;
embed = embed.replace(/\b[A-Za-z_$][\w$]*\.p\+"([0-9a-f]{20}\.woff2)"/g, (_, file) => {
  inlined += 1;
  const b64 = readFileSync(join(htmlManager, file)).toString("base64");
  return JSON.stringify(`data:font/woff2;base64,${b64}`);
});
if (inlined === 0) throw new Error("embed-amd.js: no woff2 font reference found to inline");
writeFileSync(join(out, "vendor", "embed-amd.js"), embed);

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
// The small widget manager of pages whose widgets are all anywidgets (js/offline/page.ts): a
// classic script, inlined into the exported page in place of require.js and embed-amd.js.
await esbuild.build({
  entryPoints: [join(root, "js", "offline", "page.ts")],
  outfile: join(out, "vendor", "offline-page.js"),
  bundle: true,
  format: "iife",
  target: "es2020",
  minify: true,
  logLevel: "info",
});

if (dev) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
