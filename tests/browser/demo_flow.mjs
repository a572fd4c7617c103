// The demo page walked end to end in headless Chromium (Debian's /usr/bin/chromium) with
// playwright-core: sign up through the Stytch sandbox, fill in the Unit sandbox's application form,
// wait for the approval, enrol TOTP by scanning the QR code the page shows, see Unit refuse a
// freeze to a read-only token, meet the step-up challenge (401 step_up_required) on the
// card-limited token, step up with a code computed here, freeze and unfreeze the card at the Unit
// sandbox, get a customer token and use it, then replace the authenticator.
// A screenshot of each step goes to the artifacts folder.
// Usage: node demo_flow.mjs <base url of the local stack> <artifacts folder>
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import jsQR from "jsqr";
import { chromium } from "playwright-core";

const [base, artifacts] = process.argv.slice(2);
if (!base || !artifacts) {
  console.error("usage: node demo_flow.mjs <base url> <artifacts folder>");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 secret. */
function totp(secret, at = Date.now()) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "").toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return n.toString().padStart(6, "0");
}

// The RFC 6238 test vector (SHA-1, T = 59 s: 94287082, the last 6 digits).
if (totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59_000) !== "287082") throw new Error("TOTP self-check failed");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
let shot = 0;
let page;
async function step(name, run) {
  const started = Date.now();
  try {
    await run();
  } catch (e) {
    if (page) await page.screenshot({ path: join(artifacts, `failed-${name}.png`), fullPage: true }).catch(() => {});
    throw new Error(`step "${name}" failed: ${e.message}`);
  }
  shot += 1;
  await page.screenshot({ path: join(artifacts, `${String(shot).padStart(2, "0")}-${name}.png`), fullPage: true });
  console.log(`ok  ${name} (${Date.now() - started} ms)`);
}
const text = (sel) => page.locator(sel).innerText();

try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // HTTP errors the flow expects (401 step_up_required, Unit's 403) are logged as failed loads; they are
  // checked by the steps themselves. Any other console error, or an exception, fails the test.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console error: ${m.text()}`);
  });
  const email = `browser-${Date.now()}@example.com`;

  await step("page", async () => {
    await page.goto(`${base}/demo`);
    await page.waitForSelector("body[data-ready=true]");
  });

  await step("signed-up", async () => {
    await page.fill("#email", email);
    await page.fill("#password", "correct horse battery staple");
    await page.click("#signup");
    await page.waitForSelector("#login-status.ok");
    const userId = await page.getAttribute("#login-status", "data-user-id");
    if (!/^user-test-/.test(userId || "")) throw new Error(`no Stytch user id: ${userId}`);
  });

  let form;
  await step("unit-form", async () => {
    await page.waitForSelector("#form-link:not([hidden])");
    [form] = await Promise.all([context.waitForEvent("page"), page.click("#form-link")]);
    await form.waitForSelector("#submit");
    // A password's e-mail is unverified at Stytch, so the form has no prefill of it: the
    // applicant types it, as on Unit's form.
    await form.fill("#email", email);
    await form.screenshot({ path: join(artifacts, "03b-unit-form-page.png"), fullPage: true });
    await form.click("#submit");
    await form.waitForSelector("#done");
    await form.screenshot({ path: join(artifacts, "03c-unit-form-submitted.png"), fullPage: true });
    await form.close();
  });

  await step("approved", async () => {
    await page.waitForFunction(() => document.getElementById("onboarding-state").textContent === "approved", null, { timeout: 30_000 });
    if (!/Unit customer \d+/.test(await text("#customer"))) throw new Error("no customer id shown");
  });

  // The bank account's e-mail proven in the session (a Stytch e-mail passcode, read from the
  // Stytch sandbox's inbox as the user would read their mail): what binds the authenticator.
  await step("email-proven", async () => {
    const config = await (await fetch(`${base}/demo/config.json`)).json();
    await page.click("#send-email-code");
    await page.waitForFunction(() => document.getElementById("email-code-status").textContent.includes("A code was sent"));
    const inbox = await (await fetch(`${config.stytch_api_url}/_sandbox/otps`)).json();
    const sent = inbox.otps.find((o) => o.address === email && !o.used);
    if (!sent) throw new Error(`no passcode for ${email} in the sandbox's inbox`);
    await page.fill("#email-code", sent.code);
    await page.click("#verify-email-code");
    await page.waitForSelector("#email-code-status.ok");
  });

  let secret;
  let recoveryCode;
  await step("enrolled", async () => {
    await page.click("#enrol");
    await page.waitForSelector("#enrolment:not([hidden])");
    await page.waitForFunction(() => document.getElementById("qr").naturalWidth > 0);
    // Scan the QR code as an authenticator app would: the pixels the browser rendered.
    const image = await page.evaluate(() => {
      const img = document.getElementById("qr");
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
      return { width: data.width, height: data.height, pixels: Array.from(data.data) };
    });
    const code = jsQR(Uint8ClampedArray.from(image.pixels), image.width, image.height);
    if (!code) throw new Error("the QR code does not scan");
    const uri = new URL(code.data);
    if (uri.protocol !== "otpauth:" || uri.host !== "totp") throw new Error(`not an otpauth TOTP URI: ${code.data}`);
    secret = uri.searchParams.get("secret");
    const shown = (await text("#secret")).trim();
    if (secret !== shown) throw new Error(`the QR code's secret ${secret} is not the one shown (${shown})`);
    const codes = await page.locator("#recovery-codes li").count();
    if (codes < 1) throw new Error("no recovery codes shown");
    recoveryCode = (await page.locator("#recovery-codes li").first().innerText()).trim();
  });

  const cardStatus = () => page.getAttribute("#cards", "data-status");
  await step("card-listed", async () => {
    await page.waitForFunction(() => document.getElementById("cards").dataset.status === "Active");
    if (!/card \d+ •••• \d{4}: Active/.test(await text("#cards"))) throw new Error(await text("#cards"));
  });

  await step("freeze-refused-to-a-read-only-token", async () => {
    await page.evaluate(() => { document.getElementById("card-status").textContent = ""; });
    await page.click("#freeze-read-only");
    await page.waitForFunction(() => document.getElementById("card-status").textContent !== "");
    const result = await text("#card-status");
    if (!result.startsWith("Unit refused the freeze: 403")) throw new Error(result);
    if ((await cardStatus()) !== "Active") throw new Error("the card changed");
  });

  await step("step-up-required", async () => {
    await page.click("#freeze");
    await page.waitForFunction(() => document.getElementById("token-status").textContent.includes("step_up_required"));
    if (!(await text("#token-status")).includes("factors: totp")) throw new Error(await text("#token-status"));
  });

  await step("stepped-up-and-frozen", async () => {
    await page.fill("#totp-code", totp(secret));
    await page.click("#step-up");
    await page.waitForSelector("#token-status.ok");
    if (!(await text("#token-status")).includes("Stepped up")) throw new Error(await text("#token-status"));
    await page.waitForFunction(() => document.getElementById("cards").dataset.status === "Frozen");
    const result = await text("#card-status");
    if (!result.includes("freeze done") || !result.includes("limited to card")) throw new Error(result);
  });

  await step("unfrozen", async () => {
    await page.click("#unfreeze");
    await page.waitForFunction(() => document.getElementById("cards").dataset.status === "Active");
    if (!(await text("#card-status")).includes("unfreeze done")) throw new Error(await text("#card-status"));
  });

  await step("customer-token", async () => {
    await page.click("#get-token");
    await page.waitForFunction(() => document.getElementById("token-status").textContent.includes("Customer token issued"));
    if (!(await text("#token-status")).includes("cards-write")) throw new Error("the token lacks the sensitive scope");
  });

  await step("unit-call", async () => {
    await page.click("#use-token");
    await page.waitForSelector("#unit-status.ok, #unit-status.err");
    const result = await text("#unit-status");
    if (!result.includes("Unit accepted the token")) throw new Error(result);
  });

  // The phone is lost: a recovery code logs in, a new authenticator replaces the old one, and
  // the new one's first code steps the session up again.
  await step("authenticator-replaced", async () => {
    await page.click("#lost summary");
    await page.fill("#recovery-code", recoveryCode);
    await page.evaluate(() => { document.getElementById("enrol-status").textContent = ""; });
    await page.click("#replace");
    await page.waitForFunction(() => document.getElementById("enrol-status").textContent !== "");
    const result = await text("#enrol-status");
    if (!result.startsWith("Replaced")) throw new Error(result);
    const replaced = (await text("#secret")).trim();
    if (!replaced || replaced === secret) throw new Error(`the secret was not replaced: ${replaced}`);
    secret = replaced;
  });

  await step("stepped-up-with-the-new-authenticator", async () => {
    await page.evaluate(() => { document.getElementById("token-status").textContent = ""; });
    await page.fill("#totp-code", totp(secret));
    await page.click("#step-up");
    await page.waitForFunction(() => document.getElementById("token-status").textContent !== "");
    const result = await text("#token-status");
    if (!result.includes("Stepped up")) throw new Error(result);
  });

  if (problems.length) throw new Error(problems.join("\n"));
  console.log(`browser test: ${shot} steps passed; screenshots in ${artifacts}`);
} finally {
  await browser.close();
}
