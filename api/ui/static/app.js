// The shell: sign-in, navigation, the explorer tree, and a hash router over the pages.
import { gql, onSignedOut, token, SignedOut, VIEWER } from "./api.js";
import { h, failure } from "./dom.js";
import { auditPage } from "./audit.js";
import { catalogPage, functionPage, homePage, schemaPage, searchPage, tablePage, tree } from "./explorer.js";
import { lineagePage } from "./lineage.js";
import { endpointPage, modelPage, modelsPage } from "./models.js";

const $ = (id) => document.getElementById(id);
const pages = {
  "": homePage, catalog: catalogPage, schema: schemaPage, table: tablePage, function: functionPage, search: searchPage,
  lineage: lineagePage, models: modelsPage, model: modelPage, endpoint: endpointPage, audit: auditPage,
};
const tabs = { lineage: "lineage", models: "models", model: "models", endpoint: "models", audit: "audit" };

function showSignIn(message) {
  $("shell").hidden = $("nav").hidden = $("sign-out").hidden = true;
  $("main").replaceChildren();
  $("tree").replaceChildren();
  $("who").textContent = "";
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

async function showShell() {
  const { viewer } = await gql(VIEWER);
  $("sign-in").hidden = true;
  $("shell").hidden = $("nav").hidden = $("sign-out").hidden = false;
  $("who").textContent = `${viewer.name}${viewer.isAdmin ? " (admin)" : ""}`;
  tree($("tree"));
  route();
}

let routing = 0;
async function route() {
  if (!token.get()) return;
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [kind, ...rest] = path.split("/");
  const name = decodeURIComponent(rest.join("/"));
  const page = pages[kind] || homePage;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("on", a.dataset.tab === (tabs[kind] || "explore"));
  const main = $("main");
  const mine = ++routing;
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    const content = await page(name, new URLSearchParams(query));
    if (mine === routing) main.replaceChildren(content);
  } catch (err) {
    if (err instanceof SignedOut) return;
    if (mine === routing) main.replaceChildren(failure(err));
  }
}

onSignedOut(showSignIn);
$("sign-in").addEventListener("submit", async (e) => {
  e.preventDefault();
  token.set($("token").value.trim());
  try { await showShell(); } catch (err) { if (!(err instanceof SignedOut)) showSignIn(String(err.message || err)); }
});
$("sign-out").addEventListener("click", () => { token.clear(); location.hash = "#/"; showSignIn("Signed out."); });
$("search").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && e.target.value.trim()) location.hash = `#/search?q=${encodeURIComponent(e.target.value.trim())}`;
});
window.addEventListener("hashchange", route);
if (token.get()) showShell().catch((err) => { if (!(err instanceof SignedOut)) showSignIn(String(err.message || err)); });
else showSignIn();
