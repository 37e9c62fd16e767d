// Drives the web UI of a running `cairn serve` in headless Chromium (Debian's, never a downloaded
// one) and prints what it saw as JSON on stdout; screenshots go to plan.artifacts/ui-*.png.
// Usage: node check_ui.mjs '{"url":..., "admin": token, "analyst": token, "table":..., "big":..., "model":..., "hidden": [...], "artifacts": dir}'
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const plan = JSON.parse(process.argv[2]);
const profile = mkdtempSync(join(tmpdir(), "cairn-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CAIRN_CHROMIUM || "/usr/bin/chromium",
  headless: true, viewport: { width: 1400, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const out = { consoleErrors: [], pageErrors: [], posts: [], offsite: [] };
const shot = (page, name) => page.screenshot({ path: join(plan.artifacts, `ui-${name}.png`) });
const texts = (page, sel) => page.locator(sel).allInnerTexts();
const nodes = (page) => page.evaluate(() => [...document.querySelectorAll("#lineage-graph .node")].map((g) => {
  const m = /translate\(([-\d.e]+),([-\d.e]+)\)/.exec(g.getAttribute("transform"));
  return { name: g.dataset.name || null, kind: g.dataset.kind, x: Number(m[1]), root: g.classList.contains("root"), label: g.querySelector(".name").textContent };
}));
const graphDrawn = (page) => page.waitForFunction(() => window.cairnLineage && document.querySelector("#lineage-graph"), null, { timeout: 30000 });

async function signIn(page, token) {
  await page.waitForSelector("#sign-in:not([hidden])");
  await page.fill("#token", token);
  await page.click("#sign-in button");
  await page.waitForSelector("#shell:not([hidden])");
  await page.waitForFunction(() => document.getElementById("who").textContent);
  return page.locator("#who").innerText();
}

try {
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => { if (m.type() === "error") out.consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => out.pageErrors.push(String(e)));
  page.on("request", (r) => {
    if (r.method() === "POST") out.posts.push(r.url());
    if (!r.url().startsWith(new URL(plan.url).origin) && !r.url().startsWith("data:")) out.offsite.push(r.url());
  });

  // A refused token brings the sign-in back with a message.
  await page.goto(plan.url + "/", { waitUntil: "load" });
  out.signInShown = await page.locator("#sign-in:not([hidden])").count() === 1;
  await shot(page, "signin");
  await page.fill("#token", "cairn_not-a-token");
  await page.click("#sign-in button");
  await page.waitForFunction(() => document.getElementById("sign-in-error").textContent);
  out.badToken = { form: await page.locator("#sign-in:not([hidden])").count() === 1, message: await page.locator("#sign-in-error").innerText(),
                   consoleErrors: out.consoleErrors.splice(0) };  // Chromium logs the 401 itself; from here on, none is expected

  // Sign in, then browse the tree to the table.
  out.who = await signIn(page, plan.admin);
  const [catalog, schema, table] = plan.table.split(".");
  await page.locator("#tree details > summary", { hasText: catalog }).first().click();
  await page.locator("#tree details details > summary", { hasText: schema }).first().click();
  await page.locator("#tree .leaf a", { hasText: table }).first().click();
  await page.waitForFunction((n) => document.querySelector("main h1")?.textContent.startsWith(n), plan.table);
  await page.waitForSelector("#preview table");
  out.table = await page.evaluate(() => {
    const sec = (title) => [...document.querySelectorAll("main section")].find((s) => s.querySelector("h2").textContent === title);
    const rows = (el) => [...el.querySelectorAll("tr")].map((tr) => [...tr.children].map((td) => td.textContent));
    const cols = rows(sec("Columns").querySelector("table")).slice(1);
    return {
      title: document.querySelector("main h1").firstChild.textContent,
      comment: document.querySelector("main .head > p").textContent,
      pwned: window.pwned ?? null, images: document.querySelectorAll("main img").length,
      columns: cols.map((r) => r[0].split(/key|timestamp key/)[0]),
      masked: cols.filter((r) => r[5].startsWith("masked")).map((r) => r[0]),
      tags: [...document.querySelectorAll("main .badge.tag")].map((b) => b.textContent),
      owner: sec("Access").querySelector("strong").textContent,
      privileges: rows(sec("Access").querySelector("table")).slice(1).map((r) => r.join(": ")),
      preview: rows(document.querySelector("#preview table")),
      history: sec("History").querySelectorAll("tbody tr").length,
    };
  });
  await shot(page, "table");

  // Its lineage: the whole chain, left to right.
  await page.click("main h1 a.button");
  await graphDrawn(page);
  const drawn = await nodes(page);
  out.lineage = { nodes: drawn, hidden: drawn.filter((n) => !n.name).length };
  await shot(page, "lineage");
  // Collapse the first downstream node's subtree, expand again, then open a node's page.
  const expanded = drawn.length;
  await page.locator("#lineage-graph .node[data-name='main.feat.user_features'] .toggle").click();
  out.collapsed = (await nodes(page)).length;
  out.expanded = expanded;
  await page.locator("#lineage-graph .node[data-name='main.feat.user_features'] .toggle").click();
  await page.locator("#lineage-graph .node[data-name='main.feat.user_features'] > rect").click();
  await page.waitForFunction(() => location.hash.startsWith("#/table/"));
  out.opened = await page.evaluate(() => decodeURIComponent(location.hash));
  await page.waitForSelector("main section h2");
  out.featureTable = await page.evaluate(() => [...document.querySelectorAll("main section")].find((x) => x.querySelector("h2").textContent === "Feature table")?.innerText || null);

  // Column level, as of a time, and around a model version.
  const lineageOf = async (query) => {
    await page.evaluate((q) => { window.cairnLineage = null; location.hash = `#/lineage?${q}`; }, query);
    await graphDrawn(page);
    return nodes(page);
  };
  out.column = (await lineageOf("ref=main.raw.events.user_id&level=COLUMN&dir=downstream")).map((n) => [n.kind, n.name]).sort();
  out.asOfBefore = (await lineageOf("ref=main.raw.events&asOf=2000-01-01T00%3A00")).map((n) => n.name);
  out.modelVersion = await lineageOf(`ref=${encodeURIComponent("model:main.ml.churn/1")}`);
  await shot(page, "model-lineage");

  // 2,001 nodes: time from asking to a painted graph, and the drawing alone.
  const asked = Date.now();
  await page.evaluate((ref) => { window.cairnLineage = null; location.hash = `#/lineage?ref=${encodeURIComponent(ref)}&dir=downstream&depth=3`; }, plan.big);
  await graphDrawn(page);
  const totalMs = Date.now() - asked;
  const big = await page.evaluate(() => window.cairnLineage);
  const dataNodes = async () => Number(await page.locator("#lineage-graph").getAttribute("data-nodes"));
  out.big = { ...big, totalMs, folded: await dataNodes(), labelled: await page.locator("#lineage-graph .node").count() };
  await shot(page, "big");
  // Every node: unfold all and time it to the painted frame.
  out.big.expandMs = await page.evaluate(() => new Promise((done) => {
    const t0 = performance.now();
    [...document.querySelectorAll(".toolbar button")].find((b) => b.textContent === "Expand all").click();
    requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
  }));
  out.big.expanded = await dataNodes();
  await shot(page, "big-expanded");
  // Up close, only the nodes in view are drawn, with their labels.
  for (let i = 0; i < 20; i++) await page.click("button[title='zoom in']");
  await page.waitForFunction(() => document.querySelectorAll("#lineage-graph .node").length > 0);
  out.big.closeUp = await page.locator("#lineage-graph .node").count();
  await shot(page, "big-close");

  // Search, the models list and the model page, the audit log.
  await page.fill("#search", "pii");
  await page.press("#search", "Enter");
  await page.waitForFunction(() => document.querySelector("main h1")?.textContent.startsWith("Tables matching"));
  out.search = await texts(page, "main table.grid tbody tr td:first-child");
  await page.click("#nav a[data-tab=models]");
  await page.waitForFunction(() => document.querySelector("main h1")?.textContent === "Models");
  out.models = { listed: await texts(page, "main table.grid tbody tr td:first-child"), text: await page.locator("main").innerText() };
  await page.evaluate((m) => { location.hash = `#/model/${encodeURIComponent(m)}`; }, plan.model);
  await page.waitForSelector("main section table");
  out.model = { versions: await page.locator("main section").filter({ hasText: "Versions" }).innerText() };
  await shot(page, "model");
  await page.evaluate(() => { location.hash = "#/audit?principal=admin&result=ALLOWED"; });
  await page.waitForSelector("#audit tbody tr");
  const audit = await page.evaluate(() => [...document.querySelectorAll("#audit tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent)));
  out.audit = { rows: audit.length, principals: [...new Set(audit.map((r) => r[1]))], results: [...new Set(audit.map((r) => r[4].trim()))] };
  await shot(page, "audit");

  // Sign out: the form is back, the token gone, nothing of the session left on the page.
  await page.click("#sign-out");
  await page.waitForSelector("#sign-in:not([hidden])");
  out.signedOut = { form: true, stored: await page.evaluate(() => sessionStorage.getItem("cairnToken")), tree: await page.locator("#tree details").count() };

  // The analyst: placeholders without names.
  out.analyst = { who: await signIn(page, plan.analyst) };
  await page.waitForSelector("#tree details");  // the tree loads after the name shows
  out.analyst.catalogTree = await texts(page, "#tree > details > summary");
  await page.locator("#tree details > summary", { hasText: catalog }).first().click();
  await page.waitForSelector("#tree details details");
  out.analyst.schemas = await texts(page, "#tree details details > summary");
  await page.evaluate((ref) => { window.cairnLineage = null; location.hash = `#/lineage?ref=${encodeURIComponent(ref)}`; }, plan.table);
  await graphDrawn(page);
  const seen = await nodes(page);
  out.analyst.visible = seen.filter((n) => n.name).map((n) => n.name).sort();
  out.analyst.hidden = seen.filter((n) => !n.name).length;
  out.analyst.hiddenLabels = [...new Set(seen.filter((n) => !n.name).map((n) => n.label))];
  const html = await page.content();
  out.analyst.leaked = plan.hidden.filter((n) => html.includes(n));
  await shot(page, "analyst");

  // A token refused mid-session (revoked, expired): the next call brings the sign-in back.
  await page.evaluate(() => { sessionStorage.setItem("cairnToken", "cairn_revoked"); location.hash = "#/audit"; });
  await page.waitForSelector("#sign-in:not([hidden])");
  out.refusedMidSession = { message: await page.locator("#sign-in-error").innerText(), stored: await page.evaluate(() => sessionStorage.getItem("cairnToken")),
                            main: await page.locator("main").innerText(), consoleErrors: out.consoleErrors.splice(0) };
} catch (e) {
  out.failure = String(e.stack || e);
} finally {
  await context.close();
}
console.log(JSON.stringify(out));
