// Shared by the browser tests: Debian's headless Chromium driven by puppeteer-core. Every page
// opened through openPage() records its console errors and uncaught exceptions, so a test can
// assert that none happened; screenshots go to $MOONGATE_SCREENSHOTS (or a temp folder).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

// Exit 77 (ctest's skip) when there is no browser or no driver on this machine.
export async function launch() {
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`skip: no browser at ${CHROMIUM}`);
    process.exit(77);
  }
  let puppeteer;
  try {
    puppeteer = (await import("puppeteer-core")).default;
  } catch {
    console.log("skip: puppeteer-core is not installed (run scripts/setup)");
    process.exit(77);
  }
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  process.on("exit", () => { try { browser.process()?.kill("SIGKILL"); } catch { /* gone */ } });
  return browser;
}

// openPage(browser) -> { page, errors }: errors collects console.error lines, uncaught
// exceptions and failed requests of the page, as strings.
export async function openPage(browser, { width = 1280, height = 900 } = {}) {
  const page = await browser.newPage();
  await page.setViewport({ width, height });
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`exception: ${e.message}`));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  return { page, errors };
}

export function screenshotDir() {
  const dir = process.env.MOONGATE_SCREENSHOTS || fs.mkdtempSync(path.join(os.tmpdir(), "moongate-shots-"));
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// screenshot(page, name) -> path of a PNG that is really there and not blank-sized.
export async function screenshot(page, name, dir = screenshotDir()) {
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  const size = fs.statSync(file).size;
  if (size < 2000) throw new Error(`screenshot ${file} is only ${size} bytes`);
  return file;
}
