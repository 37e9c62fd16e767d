// The explorer: catalogs → schemas → tables, views, models and functions; search; object pages.
import { call, errorAt, gql } from "./api.js";
import { badge, failure, grid, h, href, link, section, when } from "./dom.js";

const PAGE = 200;
const edges = (c) => (c ? c.edges.map((e) => e.node) : []);
const isView = (t) => t.tableType === "VIEW" || t.tableType === "MATERIALIZED_VIEW";
const quote = (full) => full.split(".").map((p) => "`" + p.replaceAll("`", "``") + "`").join(".");

const SECURABLE = "fullName owner comment createdAt createdBy tags { key value column } effectivePrivileges { privilege reasons { kind description } }";
const GRANTS = "{ grants { principal privilege } }";

/** Every query the explorer sends (the tests validate them against the schema). */
export const QUERIES = {
  catalogs: `{ catalogs(first: ${PAGE}) { edges { node { name owner comment } } } }`,
  schemas: `query($c: String!) { catalog(name: $c) { schemas(first: ${PAGE}) { edges { node { name fullName } } } } }`,
  objects: `query($s: String!) { schema(name: $s) {
    tables(first: ${PAGE}) { edges { node { name fullName tableType comment owner } } }
    models(first: ${PAGE}) { edges { node { name fullName comment owner } } }
    functions(first: ${PAGE}) { edges { node { name fullName comment owner } } } } }`,
  catalog: `query($n: String!) { catalog(name: $n) { ${SECURABLE} schemas(first: ${PAGE}) { edges { node { name fullName owner comment } } } }
    grants: catalog(name: $n) ${GRANTS} }`,
  schema: `query($n: String!) { schema(name: $n) { ${SECURABLE} } grants: schema(name: $n) ${GRANTS} }`,
  function: `query($n: String!) { function(name: $n) { ${SECURABLE} dataType language routineDefinition parameters { name type } }
    grants: function(name: $n) ${GRANTS} }`,
  table: `query($n: String!) {
    table(name: $n) { ${SECURABLE} name tableType storageLocation primaryKeys timestampKeys columns { name type nullable comment } }
    grants: table(name: $n) ${GRANTS}
    history: table(name: $n) { history(limit: 20) { version timestamp operation parameters } }
    tablePolicy(name: $n) { rowFilter { function columns } columnMasks { column function using } }
    featureTable(name: $n) { primaryKeys timestampKeys features version lastCommit publishedVersion publishedAt }
    trainingSet(name: $n) { label labelTable labelVersion pointInTime featureTables { table version } models } }`,
  preview: "mutation($s: String!) { sql(statement: $s) { columns rows } }",
  search: (catalogs) => `query($t: String!) { ${catalogs.map((c, i) =>
    `c${i}: search(text: $t, catalog: ${JSON.stringify(c)}, first: 50) { edges { node { fullName tableType comment owner } } }`).join("\n")} }`,
};

/** The side tree, each level loaded when it is opened. */
export async function tree(root) {
  const d = await gql(QUERIES.catalogs);
  root.replaceChildren(...edges(d.catalogs).map((c) => branch(c.name, href("catalog", c.name), () => schemasOf(c.name))));
}

function branch(label, to, load) {
  const body = h("div", { class: "kids" });
  const node = h("details", {}, h("summary", {}, link(to, label)), body);
  node.addEventListener("toggle", async () => {
    if (!node.open || body.dataset.loaded) return;
    body.dataset.loaded = "1";
    try { body.replaceChildren(...(await load())); } catch (err) { body.replaceChildren(failure(err)); }
  }, { once: false });
  return node;
}

async function schemasOf(catalog) {
  const d = await gql(QUERIES.schemas, { c: catalog });
  return edges(d.catalog.schemas).map((s) => branch(s.name, href("schema", s.fullName), () => objectsOf(s.fullName)));
}

async function objectsOf(schema) {
  const { schema: s } = await gql(QUERIES.objects, { s: schema });
  const tables = edges(s.tables);
  const groups = [["Tables", "table", tables.filter((t) => !isView(t))], ["Views", "table", tables.filter(isView)],
    ["Models", "model", edges(s.models)], ["Functions", "function", edges(s.functions)]];
  return groups.filter(([, , items]) => items.length).map(([title, kind, items]) =>
    h("div", { class: "group" }, h("div", { class: "muted" }, title), items.map((o) => h("div", { class: "leaf" }, link(href(kind, o.fullName), o.name)))));
}

export async function homePage() {
  const d = await gql(QUERIES.catalogs);
  return h("div", {}, h("h1", {}, "Catalogs"),
    grid([["Catalog", (c) => link(href("catalog", c.name), c.name)], ["Owner", (c) => c.owner], ["Comment", (c) => c.comment || ""]],
      edges(d.catalogs), "You may see no catalog."));
}

export async function catalogPage(name) {
  const r = await call(QUERIES.catalog, { n: name });
  const c = need(r, "catalog");
  return h("div", {}, header("Catalog", c),
    section("Schemas", grid([["Schema", (s) => link(href("schema", s.fullName), s.name)], ["Owner", (s) => s.owner], ["Comment", (s) => s.comment || ""]], edges(c.schemas))),
    access(c, r));
}

export async function schemaPage(name) {
  const r = await call(QUERIES.schema, { n: name });
  const s = need(r, "schema");
  const { schema: o } = await gql(QUERIES.objects, { s: name });
  const tables = edges(o.tables);
  const list = (kind, items) => grid([["Name", (x) => link(href(kind, x.fullName), x.name)], ["Owner", (x) => x.owner], ["Comment", (x) => x.comment || ""]], items);
  return h("div", {}, header("Schema", s),
    section("Tables", list("table", tables.filter((t) => !isView(t)))), section("Views", list("table", tables.filter(isView))),
    section("Models", list("model", edges(o.models))), section("Functions", list("function", edges(o.functions))), access(s, r));
}

export async function functionPage(name) {
  const r = await call(QUERIES.function, { n: name });
  const f = need(r, "function");
  return h("div", {}, header("Function", f),
    h("p", {}, `returns ${f.dataType || "?"}`, f.language ? ` · ${f.language}` : "", " · parameters: ", f.parameters.map((p) => `${p.name} ${p.type}`).join(", ") || "none"),
    h("pre", {}, f.routineDefinition || ""), access(f, r));
}

export async function tablePage(name) {
  const r = await call(QUERIES.table, { n: name });
  const t = need(r, "table");
  const policy = r.data.tablePolicy || { rowFilter: null, columnMasks: [] };
  const masks = new Map(policy.columnMasks.map((m) => [m.column.toLowerCase(), m]));
  const colTags = (c) => t.tags.filter((g) => g.column?.toLowerCase() === c.name.toLowerCase());
  const columns = grid([
    ["Column", (c) => h("span", {}, c.name, t.primaryKeys.includes(c.name) ? badge("key") : "", t.timestampKeys.includes(c.name) ? badge("timestamp key") : "")],
    ["Type", (c) => h("code", {}, c.type)],
    ["Null", (c) => (c.nullable ? "yes" : "no")],
    ["Comment", (c) => c.comment || ""],
    ["Tags", (c) => colTags(c).map((g) => badge(g.value ? `${g.key}=${g.value}` : g.key, "tag"))],
    ["Mask", (c) => { const m = masks.get(c.name.toLowerCase()); return m ? h("span", { class: "masked", title: `masked by ${m.function}` }, "masked", h("small", {}, ` by ${m.function}`)) : ""; }],
  ], t.columns);
  const preview = h("div", { id: "preview" }, h("p", { class: "muted" }, "Loading the first rows…"));
  loadPreview(preview, t.fullName);
  const lineage = h("a", { class: "button", href: `#/lineage?ref=${encodeURIComponent(t.fullName)}` }, "Lineage");
  return h("div", {}, header(isView(t) ? "View" : "Table", t, lineage),
    h("p", { class: "muted" }, [t.tableType, t.storageLocation].filter(Boolean).join(" · ")),
    section("Columns", columns,
      policy.rowFilter ? h("p", {}, badge("row filter", "masked"), ` ${policy.rowFilter.function}(${policy.rowFilter.columns.join(", ")}) decides which rows each reader sees`) : ""),
    features(r.data.featureTable, r.data.trainingSet),
    section("Preview", h("p", { class: "muted" }, "The first rows as you may read them: masks and row filters apply."), preview),
    access(t, r),
    section("History", errorAt(r, "history") ? failure(errorAt(r, "history")) : grid([["Version", (v) => v.version], ["When", (v) => when(v.timestamp)],
      ["Operation", (v) => v.operation || ""], ["Parameters", (v) => h("code", {}, v.parameters || "")]], r.data.history?.history || [])));
}

function features(ft, ts) {
  const out = [];
  if (ft) {
    out.push(section("Feature table", h("dl", {},
      h("dt", {}, "Keys"), h("dd", {}, ft.primaryKeys.join(", ")), h("dt", {}, "Timestamp keys"), h("dd", {}, ft.timestampKeys.join(", ") || "none"),
      h("dt", {}, "Features"), h("dd", {}, ft.features.join(", ")),
      h("dt", {}, "Freshness"), h("dd", { id: "freshness" }, ft.lastCommit ? `version ${ft.version}, committed ${when(ft.lastCommit)}` : "unknown"),
      h("dt", {}, "Online store"), h("dd", {}, ft.publishedVersion != null ? `version ${ft.publishedVersion}, published ${when(ft.publishedAt)}` : "not published"))));
  }
  if (ts) {
    out.push(section("Training set", h("dl", {},
      h("dt", {}, "Label"), h("dd", {}, `${ts.label.join(", ")} from `, ts.labelTable ? link(href("table", ts.labelTable), `${ts.labelTable}@v${ts.labelVersion}`) : ""),
      h("dt", {}, "Feature tables"), h("dd", {}, ts.featureTables.map((f) => h("div", {}, link(href("table", f.table), `${f.table}@v${f.version}`)))),
      h("dt", {}, "Point in time"), h("dd", {}, ts.pointInTime ? "yes" : "no"),
      h("dt", {}, "Models"), h("dd", {}, ts.models.map((m) => h("div", {}, link(href("model", m.split("/")[0]), m))), ts.models.length ? "" : "none"))));
  }
  return out;
}

async function loadPreview(el, fullName) {
  try {
    const d = await gql(QUERIES.preview, { s: `SELECT * FROM ${quote(fullName)} LIMIT 20` });
    const { columns, rows } = d.sql;
    el.replaceChildren(grid(columns.map((c, i) => [c, (row) => (row[i] === null ? h("span", { class: "muted" }, "null") : row[i])]), rows, "no rows"));
  } catch (err) {
    el.replaceChildren(failure(err));
  }
}

/** Owner, grants and the viewer's effective privileges with why. */
function access(obj, r) {
  const grants = r.data.grants?.grants;
  return section("Access",
    h("p", {}, "Owner: ", h("strong", {}, obj.owner)),
    h("h3", {}, "Your privileges"),
    grid([["Privilege", (p) => p.privilege], ["Why", (p) => p.reasons.map((x) => h("div", {}, x.description))]], obj.effectivePrivileges, "You hold no privilege here."),
    h("h3", {}, "Grants"),
    grants ? grid([["Principal", (g) => g.principal], ["Privilege", (g) => g.privilege]], grants, "no grants") : failure(errorAt(r, "grants") || "grants are not shown"));
}

function header(kind, obj, ...extra) {
  const tags = obj.tags.filter((g) => !g.column);
  return h("div", { class: "head" },
    h("div", { class: "muted" }, kind), h("h1", {}, obj.fullName, ...extra),
    obj.comment ? h("p", {}, obj.comment) : "",
    h("p", {}, tags.map((g) => badge(g.value ? `${g.key}=${g.value}` : g.key, "tag")),
      h("span", { class: "muted" }, obj.createdBy ? ` created by ${obj.createdBy} ${when(obj.createdAt)}` : "")));
}

function need(r, alias) {
  const e = errorAt(r, alias);
  if (e || !r.data[alias]) throw new Error(e ? e.message : `${alias} not found`);
  return r.data[alias];
}

export async function searchPage(_, params) {
  const text = params.get("q") || "";
  const { catalogs } = await gql(QUERIES.catalogs);
  const names = edges(catalogs).map((c) => c.name);
  if (!names.length) return h("p", { class: "muted" }, "You may see no catalog.");
  const r = await call(QUERIES.search(names.slice(0, 50)), { t: text });
  const hits = names.flatMap((_, i) => edges(r.data[`c${i}`]));
  return h("div", {}, h("h1", {}, `Tables matching “${text}”`),
    grid([["Table", (t) => link(href("table", t.fullName), t.fullName)], ["Type", (t) => t.tableType || ""], ["Owner", (t) => t.owner], ["Comment", (t) => t.comment || ""]],
      hits, "No table matches."));
}
