// Building the page from data: text always goes in as text (never parsed as HTML).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** A table of `rows` with `columns` [[heading, row => cell]]. */
export function grid(columns, rows, empty = "none") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, columns.map(([t]) => h("th", {}, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, columns.map(([, f]) => h("td", {}, f(r)))))));
}

export const link = (href, text) => h("a", { href }, text);
export const badge = (text, kind = "") => h("span", { class: `badge ${kind}` }, text);
export const section = (title, ...body) => h("section", {}, h("h2", {}, title), ...body);
export const when = (iso) => (iso ? new Date(typeof iso === "number" ? iso : iso).toLocaleString() : "");
/** Where a page goes: `#/kind/name`, the name URL-encoded. */
export const href = (kind, name, query = "") => `#/${kind}/${encodeURIComponent(name)}${query}`;
export const failure = (err) => h("p", { class: "error" }, String(err.message || err));
