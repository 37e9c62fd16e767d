// Times the web UI's lineage graph in headless Chromium: for each graph, the first paint (wide
// fan-outs folded) and unfolding every node, each to the painted frame, `reps` times.
// Usage: node bench_ui.mjs '{"url":..., "token":..., "refs": [...], "reps": 5}'  → JSON on stdout
import { chromium } from "playwright-core";

const plan = JSON.parse(process.argv[2]);
const browser = await chromium.launch({ executablePath: process.env.CAIRN_CHROMIUM || "/usr/bin/chromium", headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
await page.goto(plan.url + "/");
await page.fill("#token", plan.token);
await page.click("#sign-in button");
await page.waitForSelector("#shell:not([hidden])");
const out = {};
for (const ref of plan.refs) {
  const runs = [];
  for (let i = 0; i < plan.reps; i++) {
    await page.evaluate((r) => { window.cairnLineage = null; location.hash = `#/lineage?ref=${encodeURIComponent(r)}&dir=downstream&depth=3&n=${Math.random()}`; }, ref);
    await page.waitForFunction(() => window.cairnLineage, null, { timeout: 60000 });
    const first = await page.evaluate(() => window.cairnLineage);
    const expandMs = await page.evaluate(() => new Promise((done) => {
      const t0 = performance.now();
      [...document.querySelectorAll(".toolbar button")].find((b) => b.textContent === "Expand all").click();
      requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
    }));
    runs.push({ ...first, expandMs, laidOut: Number(await page.locator("#lineage-graph").getAttribute("data-nodes")) });
  }
  out[ref] = runs;
}
await browser.close();
console.log(JSON.stringify({ runs: out, errors }));
