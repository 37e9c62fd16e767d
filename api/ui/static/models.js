// Models: versions, aliases, gate results, the run and training set behind each version, and the
// serving endpoints with their traffic split. Registry and serving fields are selected only when
// the server's schema has them (see api.js `schema`), so the page works on servers without them.
import { call, errorAt, gql, schema, select } from "./api.js";
import { badge, failure, grid, h, href, link, section, when } from "./dom.js";

const GATE = ["kind", "metric", "op", "threshold", "margin", "tag", "group", "description"];
const VERSION = ["version", "status", "source", "runId", "comment", "createdAt", "createdBy", ["tags", ["key", "value"]]];
const ENDPOINT = ["name", ["state", ["ready", "configUpdate"]], "inferenceTable",
  ["servedEntities", ["name", "entityName", "entityVersion", "workloadSize", "scaleToZeroEnabled", ["state", ["deployment", "deploymentStateMessage"]]]],
  ["routes", ["servedModelName", "trafficPercentage"]]];

/** The query for every serving endpoint, or null when the server has no such field. */
function endpointsQuery(types, one) {
  const field = types.get("Query")?.get(one ? "servingEndpoint" : "servingEndpoints");
  if (!field) return null;
  const fields = select(types, "ServingEndpoint", ENDPOINT);
  if (one) return `servingEndpoint(name: $e) { ${fields} }`;
  return field.name.endsWith("Connection") ? `servingEndpoints(first: 100) { edges { node { ${fields} } } }` : `servingEndpoints { ${fields} }`;
}
const endpointList = (d) => (d?.edges ? d.edges.map((e) => e.node) : d || []);
const text = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? Object.values(v).filter((x) => x !== null).join(" · ") : String(v));

/** The queries the pages send, built for the server's schema (exported for the tests). */
export function modelsQuery(types) {
  const eps = endpointsQuery(types, false);
  return `{ catalogs(first: 50) { edges { node { schemas(first: 50) { edges { node { models(first: 50) {
    edges { node { fullName owner comment aliases { alias version } } } } } } } } } } ${eps ? "eps: " + eps : ""} }`;
}

/** Registry fields (gates, gate results, training set) ride in an alias of their own: a field the
 * viewer may not read then blanks only them, not the model. */
export function modelQuery(types) {
  const eps = endpointsQuery(types, false);
  const base = ["fullName", "name", "owner", "comment", "createdAt", "createdBy", ["aliases", ["alias", "version"]]];
  const extraModel = select(types, "RegisteredModel", [["gates", GATE]]);
  const extraVersion = select(types, "ModelVersion", [["trainingSet", ["name"]], ["gateResults", ["passed", "detail", ["gate", GATE]]]]);
  return `query($n: String!) {
    model(name: $n) { ${select(types, "RegisteredModel", base)} versions(first: 100) { edges { node { ${select(types, "ModelVersion", VERSION)} } } } }
    ${extraModel || extraVersion ? `registry: model(name: $n) { ${extraModel} ${extraVersion ? `versions(first: 100) { edges { node { version ${extraVersion} } } }` : ""} }` : ""}
    effective: model(name: $n) { effectivePrivileges { privilege reasons { description } } }
    ${eps ? "eps: " + eps : ""} }`;
}

export function endpointQuery(types) {
  const q = endpointsQuery(types, true);
  return q && `query($e: String!) { ${q} }`;
}

export async function modelsPage() {
  const types = await schema();
  const r = await call(modelsQuery(types));
  const models = r.data.catalogs.edges.flatMap((c) => c.node.schemas.edges.flatMap((s) => s.node.models.edges.map((m) => m.node)));
  return h("div", {}, h("h1", {}, "Models"),
    grid([["Model", (m) => link(href("model", m.fullName), m.fullName)], ["Aliases", (m) => m.aliases.map((a) => badge(`@${a.alias} → v${a.version}`, "alias"))],
      ["Owner", (m) => m.owner], ["Comment", (m) => m.comment || ""]], models, "You may see no model."),
    "eps" in r.data || errorAt(r, "eps") ? section("Serving endpoints", endpointsTable(r, endpointList(r.data.eps))) : h("p", { class: "muted" }, "This server has no serving endpoints."));
}

export async function modelPage(name, params) {
  const types = await schema();
  const r = await call(modelQuery(types), { n: name });
  const m = r.data.model;
  if (!m) throw new Error(errorAt(r, "model")?.message || `model ${name} not found`);
  const registry = r.data.registry || {};
  const extra = new Map((registry.versions?.edges || []).map((e) => [e.node.version, e.node]));
  const focus = Number(params.get("version"));
  const aliasesOf = (v) => m.aliases.filter((a) => a.version === v).map((a) => badge(`@${a.alias}`, "alias"));
  const versions = m.versions.edges.map((e) => ({ ...e.node, ...extra.get(e.node.version) })).sort((a, b) => b.version - a.version);
  const serving = endpointList(r.data.eps).filter((e) => (e.servedEntities || []).some((s) => s.entityName === m.fullName));
  return h("div", {}, h("div", { class: "muted" }, "Model"), h("h1", {}, m.fullName), m.comment ? h("p", {}, m.comment) : "",
    h("p", {}, "Owner: ", h("strong", {}, m.owner), m.createdBy ? h("span", { class: "muted" }, ` · created by ${m.createdBy} ${when(m.createdAt)}`) : ""),
    errorAt(r, "registry") ? failure(errorAt(r, "registry")) : "",
    registry.gates ? section("Promotion gates", grid([["Gate", gateText]], registry.gates, "no gates")) : "",
    section("Versions", grid([
      ["Version", (v) => h("span", { id: `v${v.version}`, class: v.version === focus ? "focus" : "" }, `v${v.version} `, aliasesOf(v.version))],
      ["Status", (v) => v.status || ""],
      ["Run", (v) => (v.runId ? h("code", {}, v.runId) : "")],
      ["Training set", (v) => { const ts = v.trainingSet?.name ?? v.trainingSet; return ts ? link(href("table", ts), ts) : ""; }],
      ["Gates", (v) => (v.gateResults || []).map((g) => h("div", {}, badge(g.passed ? "pass" : "fail", g.passed ? "ok" : "bad"), ` ${gateText(g.gate)}`, g.detail ? h("small", { class: "muted" }, ` ${g.detail}`) : ""))],
      ["Tags", (v) => (v.tags || []).map((t) => badge(t.value ? `${t.key}=${t.value}` : t.key, "tag"))],
      ["", (v) => link(`#/lineage?ref=${encodeURIComponent(`model:${m.fullName}/${v.version}`)}`, "lineage")],
    ], versions, "no versions")),
    "eps" in r.data || errorAt(r, "eps") ? section("Serving endpoints", endpointsTable(r, serving)) : "",
    section("Your privileges", grid([["Privilege", (p) => p.privilege], ["Why", (p) => p.reasons.map((x) => h("div", {}, x.description))]],
      r.data.effective?.effectivePrivileges || [], "You hold no privilege here.")));
}

function gateText(g) {
  if (!g || typeof g !== "object") return g ?? "";
  return g.description || [g.kind, g.metric, g.op, g.threshold, g.tag].filter((x) => x !== null && x !== undefined).join(" ");
}

function endpointsTable(r, endpoints) {
  const err = errorAt(r, "eps");
  if (err) return failure(err);
  return grid([["Endpoint", (e) => link(href("endpoint", e.name), e.name)], ["State", (e) => text(e.state)], ["Traffic", traffic]], endpoints, "no endpoints");
}

/** The split between served versions, as labelled bars. */
function traffic(e) {
  const routes = e.routes || [];
  const entity = (name) => (e.servedEntities || []).find((s) => s.name === name);
  return h("div", { class: "traffic" }, routes.map((rt) => {
    const s = entity(rt.servedModelName), bar = h("span", { class: "bar" });
    bar.style.width = `${rt.trafficPercentage}%`;
    return h("div", {}, bar, ` ${rt.trafficPercentage}% → `, s ? link(href("model", s.entityName, `?version=${s.entityVersion}`), `${s.entityName} v${s.entityVersion}`) : rt.servedModelName);
  }));
}

export async function endpointPage(name) {
  const types = await schema();
  const q = endpointQuery(types);
  if (!q) return failure("This server has no serving endpoints.");
  const { servingEndpoint: e } = await gql(q, { e: name });
  if (!e) throw new Error(`endpoint ${name} not found`);
  return h("div", {}, h("div", { class: "muted" }, "Serving endpoint"), h("h1", {}, e.name,
    h("a", { class: "button", href: `#/lineage?ref=${encodeURIComponent(`endpoint:${e.name}`)}` }, "Lineage")),
  h("p", {}, "State: ", text(e.state)),
  e.inferenceTable ? h("p", {}, "Inference table: ", link(href("table", e.inferenceTable), e.inferenceTable)) : "",
  section("Traffic", traffic(e)),
  section("Served entities", grid([["Name", (s) => s.name], ["Model", (s) => link(href("model", s.entityName, `?version=${s.entityVersion}`), `${s.entityName} v${s.entityVersion}`)],
    ["Size", (s) => s.workloadSize || ""], ["Scale to zero", (s) => (s.scaleToZeroEnabled ? "yes" : "no")], ["State", (s) => text(s.state)]], e.servedEntities || [])));
}
