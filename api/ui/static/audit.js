// The audit log, newest first, filtered by principal, action, result and time; pages load on demand.
import { gql } from "./api.js";
import { badge, grid, h, when } from "./dom.js";

export const AUDIT = `query($p: String, $a: String, $r: String, $s: DateTime, $u: DateTime, $after: String) {
  auditEvents(principal: $p, action: $a, result: $r, since: $s, until: $u, first: 100, after: $after) {
    edges { node { id eventTime principal action securableKind securableName result errorCode source parameters } }
    pageInfo { hasNextPage endCursor } } }`;
const FILTERS = ["principal", "action", "result", "since", "until"];

export async function auditPage(_, params) {
  const f = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || ""]));
  const iso = (v) => (v ? new Date(v).toISOString() : null);
  const vars = { p: f.principal || null, a: f.action || null, r: f.result || null, s: iso(f.since), u: iso(f.until) };
  const body = h("tbody");
  const more = h("button", { type: "button" }, "Older events");
  let after = null;
  const load = async () => {
    const { auditEvents: c } = await gql(AUDIT, { ...vars, after });
    body.append(...c.edges.map(({ node: e }) => row(e)));
    after = c.pageInfo.endCursor;
    more.hidden = !c.pageInfo.hasNextPage;
  };
  more.addEventListener("click", load);
  await load();
  return h("div", {}, h("h1", {}, "Audit log"), form(f),
    h("table", { class: "grid", id: "audit" },
      h("thead", {}, h("tr", {}, ["When", "Principal", "Action", "Object", "Result", "Source"].map((t) => h("th", {}, t)))), body),
    body.children.length ? "" : h("p", { class: "muted" }, "No event matches."), more);
}

function row(e) {
  const ok = e.result === "ALLOWED";
  return h("tr", { title: e.parameters || "" },
    h("td", {}, when(e.eventTime)), h("td", {}, e.principal), h("td", {}, e.action),
    h("td", {}, e.securableName ? `${(e.securableKind || "").toLowerCase()} ${e.securableName}` : ""),
    h("td", {}, badge(e.result, ok ? "ok" : "bad"), e.errorCode ? ` ${e.errorCode}` : ""), h("td", {}, e.source));
}

function form(f) {
  const input = (name, attrs = {}) => h("label", {}, `${name[0].toUpperCase()}${name.slice(1)} `, h("input", { name, value: f[name], ...attrs }));
  const el = h("form", { class: "controls", id: "audit-form" },
    input("principal", { size: 12 }), input("action", { size: 16 }),
    h("label", {}, "Result ", h("select", { name: "result" }, ["", "ALLOWED", "DENIED", "FAILED"].map((v) => h("option", { value: v, selected: v === f.result }, v || "any")))),
    input("since", { type: "datetime-local" }), input("until", { type: "datetime-local" }), h("button", { type: "submit" }, "Filter"));
  el.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#/audit?${new URLSearchParams([...new FormData(el)].filter(([, v]) => v !== ""))}`;
  });
  return el;
}
