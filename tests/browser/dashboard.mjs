// The dashboard in a real browser: Debian's chromium driven by playwright-core against
// `aegis run --listen --store ...`. Loads the page with the printed URL's token, checks it
// lists the fleet, moves the map's markers, shows an alert when one is raised, that an
// operator's ack in the page reaches the centre (the alert comes back acknowledged), that the
// alerted vehicle's history comes from the store, that a command sent from the page is obeyed
// (the vehicle stops, the command succeeds) and that events are listed, then saves a
// screenshot. Usage: node dashboard.mjs URL SCREENSHOT.png
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.AEGIS_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const step = (what) => console.log(`dashboard: ${what}`);
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("conn").textContent === "live", null, { timeout: 30000 });
  step("connected");
  if (new URL(page.url()).searchParams.has("token")) throw new Error("the token stayed in the address bar");
  await page.waitForFunction(() => document.querySelectorAll("#vehicles tr").length >= 4, null, { timeout: 30000 });
  step(`lists ${await page.locator("#vehicles tr").count()} vehicles`);
  const positions = () => page.evaluate(() => JSON.stringify(Object.values(state.vehicles).map((v) => v.position)));
  const before = await positions();
  await page.waitForFunction((b) => JSON.stringify(Object.values(state.vehicles).map((v) => v.position)) !== b && Object.values(state.vehicles).some((v) => v.position), before, { timeout: 30000 });
  step("markers move");
  await page.locator("#vehicles tr").first().click();
  await page.waitForFunction(() => Object.keys(state.charts).length > 0, null, { timeout: 30000 });
  step("vehicle detail charts live telemetry");
  const card = page.locator("#alerts .alert").first();
  await card.waitFor({ timeout: 120000 });
  const id = await card.getAttribute("data-alert");
  step(`shows alert ${id}`);
  await page.locator(`[data-alert="${id}"] button[data-op="ack"]`).click();
  await page.waitForFunction((id) => state.alerts[id] && state.alerts[id].acknowledged, id, { timeout: 30000 });
  step(`ack of ${id} reached the centre`);
  const vehicle = await page.evaluate((id) => state.alerts[id].key.vehicle, id);
  await page.locator(`#vehicles tr[data-id="${vehicle}"]`).click();
  await page.waitForFunction((id) => document.getElementById("history").textContent.includes(id) && document.getElementById("history").textContent.includes(" at "), id, { timeout: 30000 });
  step(`${vehicle}'s alert history comes from the store`);
  await page.locator("button[data-send]", { hasText: "Stop" }).click();
  await page.waitForFunction((v) => Object.values(state.commands).some((c) => c.vehicle === v && c.issued_by && c.action.action === "stop" && c.state === "succeeded"), vehicle, { timeout: 60000 });
  await page.waitForFunction(() => document.querySelector("#commands .state-succeeded") !== null, null, { timeout: 10000 });
  step(`a stop sent from the page was obeyed by ${vehicle}`);
  await page.waitForFunction(() => document.querySelectorAll("#events .event").length > 0, null, { timeout: 30000 });
  step(`lists ${await page.locator("#events .event").count()} events`);
  await page.waitForTimeout(1500); // let a few more fleet deltas land, for the picture
  await page.evaluate(() => { document.getElementById("detailbox").scrollTop = 0; });
  await page.screenshot({ path: screenshot });
  if (problems.length) throw new Error("page errors: " + problems.join("; "));
  step("ok");
} finally {
  await browser.close();
}
