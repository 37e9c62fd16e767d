// Prints every GraphQL query the web UI (api/ui/static) sends, built for the schema whose
// introspection (the UI's own SCHEMA query's data) arrives on stdin, as JSON {name: query}.
// tests/api/test_web_ui.py validates them against the server's schema.
import { readFileSync } from "node:fs";

globalThis.sessionStorage = { getItem: () => null, setItem() {}, removeItem() {} };  // api.js touches it only when called
const ui = new URL("../ui/static/", import.meta.url);
const { VIEWER, SCHEMA, typesOf } = await import(new URL("api.js", ui));
const { QUERIES } = await import(new URL("explorer.js", ui));
const { lineageQuery } = await import(new URL("lineage.js", ui));
const { modelsQuery, modelQuery, endpointQuery } = await import(new URL("models.js", ui));
const { AUDIT } = await import(new URL("audit.js", ui));

const types = typesOf(JSON.parse(readFileSync(0, "utf8")));
const out = { VIEWER, SCHEMA, AUDIT, models: modelsQuery(types), model: modelQuery(types), endpoint: endpointQuery(types) };
for (const [k, v] of Object.entries(QUERIES)) out[k] = typeof v === "function" ? v(["main", "other"]) : v;
for (const dir of ["both", "upstream", "downstream"]) out[`lineage-${dir}`] = lineageQuery(dir);
console.log(JSON.stringify(out));
