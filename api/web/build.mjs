// Bundles main.js (GraphiQL, React, their CSS) into ../static/graphiql for the Python package.
import * as esbuild from "esbuild";

await esbuild.build({
  entryPoints: ["main.js"],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outdir: "../static/graphiql",
  entryNames: "graphiql",
  loader: { ".woff": "file", ".woff2": "file", ".ttf": "file", ".svg": "file" },
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "linked",
  logLevel: "warning",
});
console.log("built api/static/graphiql");
