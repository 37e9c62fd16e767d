// The lineage graph: upstream to the left, downstream to the right of the node asked about, so
// raw → features → training set → model version → endpoint → predictions reads left to right.
// Hidden nodes come from the server without names and are drawn as placeholders.
import { gql } from "./api.js";
import { h, href } from "./dom.js";

const W = 190, H = 34, COL = 250, ROW = 44, SVG = "http://www.w3.org/2000/svg";
const FAR = 0.4;  // below this zoom labels could not be read: boxes only
const BIG = 500, FAN = 25;  // a graph over BIG nodes opens with nodes of over FAN children folded
const FIELDS = "truncated root { id kind name restricted } nodes { id kind name restricted depth path }";

export async function lineagePage(_, params) {
  const p = { ref: params.get("ref") || "", level: params.get("level") || "TABLE", depth: Number(params.get("depth") || 5),
    asOf: params.get("asOf") || "", dir: params.get("dir") || "both" };
  const page = h("div", { class: "lineage" }, h("h1", {}, "Lineage"), controls(p));
  if (!p.ref) {
    page.append(h("p", { class: "muted" }, "Name a table (main.sales.orders), a column (with level Column), a model version (model:main.ml.churn/3) or an endpoint (endpoint:churn)."));
    return page;
  }
  const started = performance.now();
  const data = await gql(lineageQuery(p.dir),
    { n: p.ref, d: p.depth, l: p.level, t: p.asOf ? new Date(p.asOf).toISOString() : null });
  const fetched = performance.now();
  const graph = build(data.up, data.down);
  const view = new GraphView(graph);
  const built = performance.now();
  const shown = graph.nodes.size, hidden = [...graph.nodes.values()].filter((n) => n.restricted).length;
  page.append(
    h("p", { class: "muted", id: "lineage-stats" }, `${shown} nodes`, hidden ? `, ${hidden} hidden from you` : "",
      data.up?.truncated || data.down?.truncated ? " · truncated: ask for less depth" : "",
      view.collapsed.size ? ` · ${view.collapsed.size} wide fan-outs folded (+ to unfold)` : "",
      " · drag to pan, wheel to zoom, click a node to open it, ± to collapse"),
    view.toolbar, view.svg);
  view.onPainted = () => {
    window.cairnLineage = { nodes: shown, hidden, fetchMs: fetched - started, buildMs: built - fetched, renderMs: performance.now() - fetched };
  };
  return page;
}

/** Upstream, downstream or both, in one request. */
export function lineageQuery(dir) {
  const args = "name: $n, depth: $d, level: $l, asOf: $t";
  const parts = [dir !== "downstream" ? `up: lineage(${args}, upstream: true) { ${FIELDS} }` : "",
    dir !== "upstream" ? `down: lineage(${args}, upstream: false) { ${FIELDS} }` : ""];
  return `query($n: String!, $d: Int!, $l: String!, $t: DateTime) { ${parts.join(" ")} }`;
}

function controls(p) {
  const field = (label, input) => h("label", {}, label, input);
  const form = h("form", { class: "controls", id: "lineage-form" },
    field("Of ", h("input", { name: "ref", value: p.ref, size: 36, placeholder: "catalog.schema.table", required: true })),
    field("Level ", select("level", p.level, [["TABLE", "Table"], ["COLUMN", "Column"]])),
    field("Direction ", select("dir", p.dir, [["both", "Both"], ["upstream", "Upstream"], ["downstream", "Downstream"]])),
    field("Depth ", h("input", { name: "depth", type: "number", min: 1, max: 100, value: p.depth })),
    field("As of ", h("input", { name: "asOf", type: "datetime-local", value: p.asOf })),
    h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams([...new FormData(form)].filter(([, v]) => v !== ""));
    location.hash = `#/lineage?${q}`;
  });
  return form;
}

const select = (name, value, options) =>
  h("select", { name }, options.map(([v, t]) => h("option", { value: v, selected: v === value }, t)));

/** Nodes keyed by side and id ("r" the root, "u12" upstream, "d12" downstream), each with its parent
 * on the way back to the root (the last step of its path) and its children. */
export function build(up, down) {
  const root = (down || up).root;
  const nodes = new Map([["r", { ...root, key: "r", side: 0, depth: 0, kids: [] }]]);
  for (const [side, res] of [[-1, up], [1, down]]) {
    for (const n of res?.nodes || []) {  // by depth: parents first
      const prefix = side < 0 ? "u" : "d", via = n.path[n.path.length - 2];
      const parent = nodes.get(via === root.id ? "r" : prefix + via) || nodes.get("r");
      const node = { ...n, key: prefix + n.id, side, parent: parent.key, kids: [] };
      nodes.set(node.key, node);
      parent.kids.push(node);
    }
  }
  for (const n of nodes.values()) n.kids.sort((a, b) => a.restricted - b.restricted || (a.name || "").localeCompare(b.name || "", undefined, { numeric: true }));
  return { nodes, root: nodes.get("r") };
}

/** Rows for each side's tree: leaves take the next row, a parent sits midway between its children. */
function layout(graph, collapsed) {
  const at = new Map([["r", { x: 0, y: 0 }]]);
  for (const side of [-1, 1]) {
    let row = 0;
    const place = (n) => {
      const kids = collapsed.has(n.key) ? [] : n.kids;
      let y;
      if (!kids.length) y = row++;
      else { const ys = kids.map(place); y = (ys[0] + ys[ys.length - 1]) / 2; }
      at.set(n.key, { x: side * n.depth * COL, y });
      return y;
    };
    const tops = graph.root.kids.filter((k) => k.side === side);
    if (!tops.length) continue;
    const ys = tops.map(place), mid = (ys[0] + ys[ys.length - 1]) / 2;
    for (const k of at.keys()) if (k[0] === (side < 0 ? "u" : "d")) at.get(k).y = (at.get(k).y - mid) * ROW;
  }
  return at;
}

const KINDS = { MODEL_VERSION: "model version", DATASET: "dataset" };
function label(n) {
  if (n.restricted) return "hidden";
  const name = n.kind === "TABLE" || n.kind === "COLUMN" ? n.name.split(".").slice(1).join(".") : n.name;
  return name.length > 26 ? "…" + name.slice(-25) : name;
}

/** Where a node's page is (null for datasets outside the catalog and hidden nodes). */
export function pageOf(n) {
  if (n.restricted || !n.name) return null;
  switch (n.kind) {
    case "TABLE": return href("table", n.name);
    case "COLUMN": return href("table", n.name.split(".").slice(0, 3).join("."));
    case "MODEL": return href("model", n.name);
    case "MODEL_VERSION": { const [m, v] = n.name.split("/"); return href("model", m, `?version=${v}`); }
    case "ENDPOINT": return href("endpoint", n.name);
    case "FUNCTION": return href("function", n.name);
    default: return null;
  }
}

const svgEl = (tag, attrs = {}) => {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
};

/** The graph on screen. Up close, each node in view is an SVG group with its labels (and only those
 * in view: panning redraws them); from afar, when labels could not be read anyway, all boxes of a
 * kind are one path, so thousands of nodes draw in a few elements. Clicks find their node by position. */
class GraphView {
  constructor(graph) {
    this.graph = graph;
    this.collapsed = new Set(graph.nodes.size > BIG ? [...graph.nodes.values()].filter((n) => n.kids.length > FAN && n.key !== "r").map((n) => n.key) : []);
    this.t = { x: 0, y: 0, k: 1 };
    this.svg = svgEl("svg", { class: "graph", id: "lineage-graph" });
    this.viewport = svgEl("g");
    this.edges = svgEl("path", { class: "edges" });
    this.boxes = svgEl("g");
    this.viewport.append(this.edges, this.boxes);
    this.svg.append(this.viewport);
    const button = (text, fn, title) => h("button", { type: "button", title, onclick: fn }, text);
    this.status = h("span", { class: "muted status" });
    this.toolbar = h("div", { class: "toolbar" }, button("Fit", () => this.fit(), "fit the graph in view"),
      button("+", () => this.zoom(1.25), "zoom in"), button("−", () => this.zoom(0.8), "zoom out"),
      button("Collapse all", () => { this.collapsed = new Set(graph.root.kids.filter((k) => k.kids.length).map((k) => k.key)); this.draw(); this.fit(); }),
      button("Expand all", () => { this.collapsed.clear(); this.draw(); this.fit(); }), this.status);
    this.draw();
    this.listen();
    // Fit once the page is on screen, then report the graph as painted.
    const settle = () => (this.svg.isConnected ? (this.fit(), requestAnimationFrame(() => requestAnimationFrame(() => this.onPainted?.()))) : requestAnimationFrame(settle));
    requestAnimationFrame(settle);
  }

  /** Lay out what is expanded; then paint. */
  draw() {
    this.at = layout(this.graph, this.collapsed);
    this.shown = [];
    const visit = (n) => { this.shown.push(n); if (!this.collapsed.has(n.key)) n.kids.forEach(visit); };
    visit(this.graph.root);
    const b = { x0: Infinity, x1: -Infinity, y0: Infinity, y1: -Infinity };
    for (const n of this.shown) {
      const p = this.at.get(n.key);
      b.x0 = Math.min(b.x0, p.x - W / 2); b.x1 = Math.max(b.x1, p.x + W / 2); b.y0 = Math.min(b.y0, p.y - H / 2); b.y1 = Math.max(b.y1, p.y + H / 2);
    }
    this.bounds = b;
    this.svg.dataset.nodes = this.shown.length;
    this.mode = null;
    this.paint();
  }

  paint() {
    const far = this.t.k < FAR, at = this.at;
    if (far && this.mode === "far") return;
    let d = "";
    for (const n of this.shown) {
      if (n.key === "r") continue;
      const a = at.get(n.key), b = at.get(n.parent);
      const [from, to] = n.side < 0 ? [a, b] : [b, a];  // edges run left to right, as data flows
      const x1 = from.x + W / 2, x2 = to.x - W / 2, mx = (x1 + x2) / 2;
      d += far ? `M${x1},${from.y}L${x2},${to.y}` : `M${x1},${from.y}C${mx},${from.y} ${mx},${to.y} ${x2},${to.y}`;
    }
    this.edges.setAttribute("d", d);
    if (far) {
      const byKind = new Map();
      for (const n of this.shown) {
        const cls = `box k-${n.kind}${n.restricted ? " hidden" : ""}${n.key === "r" ? " root" : ""}`, p = at.get(n.key);
        byKind.set(cls, (byKind.get(cls) || "") + `M${p.x - W / 2},${p.y - H / 2}h${W}v${H}h${-W}z`);
      }
      this.boxes.replaceChildren(...[...byKind].map(([cls, path]) => svgEl("path", { class: cls, d: path })));
    } else {
      const r = this.svg.getBoundingClientRect(), { x, y, k } = this.t, m = 200;
      const inView = (p) => p.x * k + x > -m - W * k && p.x * k + x < r.width + m && p.y * k + y > -m - H * k && p.y * k + y < r.height + m;
      this.boxes.replaceChildren(...this.shown.filter((n) => inView(at.get(n.key))).map((n) => this.node(n, at.get(n.key))));
    }
    this.mode = far ? "far" : "near";
  }

  node(n, p) {
    const g = svgEl("g", { class: `node k-${n.kind}${n.restricted ? " hidden" : ""}${n.key === "r" ? " root" : ""}`,
      transform: `translate(${p.x - W / 2},${p.y - H / 2})`, "data-key": n.key, "data-kind": n.kind });
    if (n.name) g.setAttribute("data-name", n.name);
    const kind = svgEl("text", { x: 8, y: 12, class: "kind" });
    kind.textContent = KINDS[n.kind] || n.kind.toLowerCase();
    const name = svgEl("text", { x: 8, y: 27, class: "name" });
    name.textContent = label(n);
    g.append(svgEl("rect", { width: W, height: H, rx: 5 }), kind, name);
    if (n.kids.length && n.key !== "r") {
      const folded = this.collapsed.has(n.key), x = n.side < 0 ? -9 : W + 9;
      const t = svgEl("g", { class: "toggle", transform: `translate(${x},${H / 2})` });
      const sign = svgEl("text", { y: 4 }), w = folded ? 10 + 6 * String(count(n)).length : 16;
      sign.textContent = folded ? `+${count(n)}` : "−";
      t.append(svgEl("rect", { x: -w / 2, y: -8, width: w, height: 16, rx: 8 }), sign);
      g.append(t);
    }
    return g;
  }

  /** The node under a pointer event: its group up close, its position from afar. */
  hit(e) {
    const g = e.target.closest?.(".node");
    if (g) return this.graph.nodes.get(g.dataset.key);
    if (this.mode !== "far") return null;
    const r = this.svg.getBoundingClientRect(), gx = (e.clientX - r.left - this.t.x) / this.t.k, gy = (e.clientY - r.top - this.t.y) / this.t.k;
    return this.shown.find((n) => { const p = this.at.get(n.key); return Math.abs(gx - p.x) <= W / 2 && Math.abs(gy - p.y) <= H / 2; }) || null;
  }

  listen() {
    const svg = this.svg;
    svg.addEventListener("click", (e) => {
      if (this.dragged) return;
      const n = this.hit(e);
      if (!n) return;
      if (e.target.closest(".toggle")) {
        this.collapsed.has(n.key) ? this.collapsed.delete(n.key) : this.collapsed.add(n.key);
        this.draw();
        return;
      }
      const to = pageOf(n);
      if (to) location.hash = to;
    });
    svg.addEventListener("pointermove", (e) => {
      if (this.hovering) return;
      this.hovering = requestAnimationFrame(() => {
        this.hovering = 0;
        const n = this.hit(e);
        this.status.textContent = !n ? "" : n.restricted ? `a ${n.kind.toLowerCase()} you may not see` : `${n.kind.toLowerCase()} ${n.name}`;
      });
    });
    svg.addEventListener("wheel", (e) => { e.preventDefault(); this.zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e); }, { passive: false });
    svg.addEventListener("pointerdown", (e) => {
      const start = { x: e.clientX, y: e.clientY, tx: this.t.x, ty: this.t.y };
      this.dragged = false;
      const move = (m) => {
        const dx = m.clientX - start.x, dy = m.clientY - start.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) this.dragged = true;
        this.t.x = start.tx + dx; this.t.y = start.ty + dy; this.apply();
      };
      const up = () => { svg.removeEventListener("pointermove", move); setTimeout(() => { this.dragged = false; }); };
      svg.addEventListener("pointermove", move);
      svg.addEventListener("pointerup", up, { once: true });
    });
  }

  zoom(f, at) {
    const r = this.svg.getBoundingClientRect();
    const cx = at ? at.clientX - r.left : r.width / 2, cy = at ? at.clientY - r.top : r.height / 2;
    const k = Math.min(3, Math.max(0.002, this.t.k * f));
    this.t.x = cx - ((cx - this.t.x) * k) / this.t.k;
    this.t.y = cy - ((cy - this.t.y) * k) / this.t.k;
    this.t.k = k;
    this.apply();
  }

  /** The whole graph in view; a graph of a few hundred nodes stays readable instead (around the root). */
  fit() {
    const r = this.svg.getBoundingClientRect(), b = this.bounds, pad = 30;
    let k = Math.max(0.002, Math.min(1.2, (r.width - 2 * pad) / (b.x1 - b.x0), (r.height - 2 * pad) / (b.y1 - b.y0)));
    const readable = k < FAR && this.shown.length <= 200;
    if (readable) k = FAR + 0.05;
    this.t = { k, x: r.width / 2 - ((b.x0 + b.x1) / 2) * k, y: r.height / 2 - (readable ? 0 : (b.y0 + b.y1) / 2) * k };
    this.apply();
  }

  /** Move the view now; repaint what is in it at the next frame. */
  apply() {
    this.viewport.setAttribute("transform", `translate(${this.t.x},${this.t.y}) scale(${this.t.k})`);
    if (!this.painting) this.painting = requestAnimationFrame(() => { this.painting = 0; this.paint(); });
  }
}

const count = (n) => n.kids.reduce((s, k) => s + 1 + count(k), 0);
