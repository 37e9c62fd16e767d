// Loads the GraphiQL page of a running `cairn serve` in headless Chromium (Debian's, never a
// downloaded one), enters a token, runs a query and prints what happened as JSON on stdout.
// Usage: node check_page.mjs URL TOKEN SCREENSHOT_PATH
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, token, screenshot] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), "cairn-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CAIRN_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const out = { consoleErrors: [], pageErrors: [], requests: [], offsite: [] };
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => { if (m.type() === "error") out.consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => out.pageErrors.push(String(e)));
  page.on("request", (r) => {
    out.requests.push(r.method() + " " + r.url());
    if (!r.url().startsWith(new URL(url).origin) && !r.url().startsWith("data:")) out.offsite.push(r.url());
  });
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector(".graphiql-container", { timeout: 20000 });
  out.title = await page.title();
  out.tokenField = await page.locator("#cairn-token").count();
  await page.fill("#cairn-token", token);
  await page.click("#cairn-save");
  out.stored = await page.evaluate(() => window.localStorage.getItem("cairnToken") === document.getElementById("cairn-token").value);
  const answer = page.waitForResponse((r) => r.url().endsWith("/graphql") && r.request().method() === "POST"
    && (r.request().postData() || "").includes("catalogs"), { timeout: 20000 });
  await page.click(".graphiql-execute-button");
  const res = await answer;
  out.status = res.status();
  out.body = await res.json();
  await page.waitForFunction(() => document.querySelector(".graphiql-response")?.textContent.includes("catalogs"), null, { timeout: 20000 });
  out.shown = await page.locator(".graphiql-response").innerText();
  await page.click("#cairn-forget");
  out.forgotten = await page.evaluate(() => window.localStorage.getItem("cairnToken"));
  await page.screenshot({ path: screenshot, fullPage: true });
} catch (e) {
  out.failure = String(e);
} finally {
  await context.close();
}
console.log(JSON.stringify(out));
