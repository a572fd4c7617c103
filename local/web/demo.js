// The demo page's script: plain JavaScript, no build step (an ES module). It calls our routes
// the way a frontend does (Bearer session JWT), gets Unit customer tokens through the frontend
// helper (frontend/unit-token.mjs: cache, RFC 9470 step-up challenge, one retry), and calls Unit
// directly with them: the card actions Stytch's guide exists for.
import { UnitTokens } from "/demo/unit-token.mjs";

const $ = (id) => document.getElementById(id);
const session = { jwt: null, token: null, userId: null, email: null };
let emailMethod = null;
let config = null;
let customerToken = null;
let customerId = null;
let cardId = null;
let polling = null;
/** The step-up the helper is waiting for (its challenge answered by the Step up button). */
let pendingStepUp = null;

/** Our routes' fetch, logged on the page like every other call. */
async function loggedFetch(url, init) {
  const res = await fetch(url, init);
  const path = new URL(url, location.href).pathname;
  const copy = res.clone();
  const body = await copy.json().catch(() => null);
  log(init.method || "GET", path, res.status, body && body.error ? body.error.code : null);
  return res;
}

const tokens = new UnitTokens({
  bridgeUrl: "",
  sessionJwt: () => session.jwt,
  fetch: loggedFetch,
  // The RFC 9470 challenge: ask for the authenticator's code, resolve once stepped up.
  stepUp: (challenge) => new Promise((resolve, reject) => {
    pendingStepUp = { resolve, reject };
    status("token-status",
      `step_up_required: ${challenge.description} Enter your authenticator's code and step up (factors: ${challenge.factors.join(", ")}; within ${challenge.maxAge} s).`,
      "err");
    $("totp-code").focus();
  }),
});

function status(id, text, kind) {
  const el = $(id);
  el.textContent = text;
  el.className = "status " + (kind || "");
}

function log(method, path, code, errorCode) {
  const box = $("log");
  if (box.classList.contains("muted")) {
    box.textContent = "";
    box.classList.remove("muted");
  }
  const line = document.createElement("div");
  line.textContent = `${new Date().toLocaleTimeString()}  ${method} ${path} → ${code}` + (errorCode ? ` ${errorCode}` : "");
  line.className = code < 400 ? "ok" : "err";
  box.prepend(line);
}

function unlock(sectionId, buttons) {
  $(sectionId).classList.remove("locked");
  for (const b of buttons) $(b).disabled = false;
}

function explain(reply) {
  const e = reply.data && reply.data.error;
  if (!e) return `HTTP ${reply.status}`;
  const fields = (e.fields || []).map((f) => `${f.field}: ${f.problem}`).join("; ");
  return `${e.code}: ${e.message}` + (fields ? ` (${fields})` : "");
}

/** Calls one of our routes; refreshes the Stytch session once when the JWT has (nearly) expired. */
async function api(method, path, body, retried) {
  const headers = {};
  if (session.jwt) headers.authorization = "Bearer " + session.jwt;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch (_) { /* not JSON */ }
  const code = data && data.error ? data.error.code : null;
  log(method, path, res.status, code);
  if (!retried && res.status === 401 && (code === "token_expired" || code === "session_jwt_expiring") && session.token) {
    if (await refreshSession()) return api(method, path, body, true);
  }
  return { status: res.status, ok: res.ok, data, code };
}

async function refreshSession() {
  const saved = session.jwt;
  session.jwt = null;
  const reply = await api("POST", "/demo/api/refresh", { session_token: session.token }, true);
  session.jwt = reply.ok ? reply.data.session_jwt : saved;
  return reply.ok;
}

async function signIn(kind) {
  const email = $("email").value.trim();
  const password = $("password").value;
  if (!email || password.length < 8) {
    status("login-status", "Enter an e-mail and a password of at least 8 characters.", "err");
    return;
  }
  status("login-status", kind === "signup" ? "Signing up…" : "Logging in…");
  // Another login: no token of the previous user's may be handed out (nor left for Unit's components).
  tokens.logout();
  session.jwt = null;
  const reply = await api("POST", `/demo/api/${kind}`, { email, password });
  if (!reply.ok) {
    status("login-status", explain(reply), "err");
    return;
  }
  session.jwt = reply.data.session_jwt;
  session.token = reply.data.session_token;
  session.userId = reply.data.user_id;
  session.email = email;
  status("login-status", `Logged in as ${email} (Stytch user ${session.userId}).`, "ok");
  $("login-status").dataset.userId = session.userId;
  unlock("step-onboarding", ["refresh-onboarding"]);
  await refreshOnboarding();
  if (!polling) polling = setInterval(refreshOnboarding, 2000);
}

async function refreshOnboarding() {
  const reply = await api("GET", "/onboarding");
  if (!reply.ok) {
    status("onboarding-status", explain(reply), "err");
    return;
  }
  const o = reply.data;
  const badge = $("onboarding-state");
  badge.textContent = o.state;
  badge.className = "state " + o.state;
  const link = $("form-link");
  if (o.form_url && o.state === "form_pending") {
    link.href = o.form_url;
    link.hidden = false;
  } else {
    link.hidden = true;
  }
  if (o.state === "approved" && o.customer_id) {
    customerId = o.customer_id;
    $("customer").textContent = `Unit customer ${o.customer_id}`;
    status("onboarding-status", "Your Unit account application was approved.", "ok");
    clearInterval(polling);
    polling = null;
    unlock("step-totp", ["send-email-code", "verify-email-code", "enrol", "replace"]);
    unlock("step-token", ["get-token", "step-up"]);
    await openCard();
  } else if (o.state === "form_pending") {
    status("onboarding-status", "Fill in the application form at Unit; this page follows its progress.", "muted");
  } else {
    status("onboarding-status", `Application ${o.application_id || ""}: ${o.application_status || o.state}.`, "muted");
  }
}

async function enrol() {
  const reply = await api("POST", "/mfa/totp", {});
  if (reply.status === 409) {
    status("enrol-status", "An authenticator is already enrolled: enter its code below.", "muted");
    return;
  }
  if (!reply.ok) {
    status("enrol-status", explain(reply), "err");
    return;
  }
  showEnrolment(reply.data);
  status("enrol-status", "Enrolled. Your first code below completes the enrolment.", "ok");
}

/** Shows an enrolment's QR code, secret and recovery codes. */
function showEnrolment(data) {
  $("qr").src = data.qr_code;
  $("secret").textContent = data.secret;
  const list = $("recovery-codes");
  list.textContent = "";
  for (const code of data.recovery_codes) {
    const item = document.createElement("li");
    item.textContent = code;
    list.append(item);
  }
  $("enrolment").hidden = false;
}

/** A lost authenticator: a recovery-code login, then a replacement enrolment. */
async function replaceAuthenticator() {
  const code = $("recovery-code").value.trim().toLowerCase();
  if (!/^[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$/.test(code)) {
    status("enrol-status", "Enter one of your recovery codes (xxxx-xxxx-xxxx).", "err");
    return;
  }
  const recovered = await api("POST", "/mfa/totp/recover", { recovery_code: code });
  if (!recovered.ok) {
    status("enrol-status", explain(recovered), "err");
    return;
  }
  session.jwt = recovered.data.session_jwt;
  session.token = recovered.data.session_token;
  const replaced = await api("POST", "/mfa/totp", { replace: true });
  if (!replaced.ok) {
    status("enrol-status", explain(replaced), "err");
    return;
  }
  $("recovery-code").value = "";
  showEnrolment(replaced.data);
  status("enrol-status", "Replaced: scan the new QR code; your first code below completes it. Your other sessions were ended.", "ok");
}

async function sendEmailCode() {
  const reply = await api("POST", "/demo/api/email-code", { email: session.email, session_jwt: session.jwt });
  if (!reply.ok) {
    status("email-code-status", explain(reply), "err");
    return;
  }
  emailMethod = reply.data.method_id;
  status("email-code-status", `A code was sent to ${session.email}: enter it to confirm.`, "muted");
  $("email-code").focus();
}

async function verifyEmailCode() {
  const code = $("email-code").value.trim();
  if (!emailMethod || !/^[0-9]{6}$/.test(code)) {
    status("email-code-status", "Send a code first, then enter its 6 digits.", "err");
    return;
  }
  const reply = await api("POST", "/demo/api/email-code/verify", { method_id: emailMethod, code, session_jwt: session.jwt });
  if (!reply.ok) {
    status("email-code-status", explain(reply), "err");
    return;
  }
  session.jwt = reply.data.session_jwt;
  $("email-code").value = "";
  status("email-code-status", "E-mail confirmed in this session: enrol your authenticator now.", "ok");
}

async function stepUp() {
  const code = $("totp-code").value.trim();
  if (!/^[0-9]{6}$/.test(code)) {
    status("token-status", "Enter the 6-digit code of your authenticator app.", "err");
    return;
  }
  const reply = await api("POST", "/mfa/totp/authenticate", { totp_code: code });
  if (!reply.ok) {
    status("token-status", explain(reply), "err");
    return;
  }
  session.jwt = reply.data.session_jwt;
  $("totp-code").value = "";
  status("token-status", "Stepped up: your session now carries a fresh TOTP factor.", "ok");
  if (pendingStepUp) {
    const { resolve } = pendingStepUp;
    pendingStepUp = null;
    resolve();
  }
}

/** A token from the helper, its refusal shown in `statusId`; null when refused. */
async function token(ask, statusId) {
  try {
    return await tokens.get(ask);
  } catch (e) {
    const advice = e.loginRequired ? " Log in again." : "";
    status(statusId, `${e.code || "error"}: ${e.message}${advice}`, "err");
    return null;
  }
}

async function getToken() {
  const scope = $("scope").value.trim();
  const issued = await token({ scope }, "token-status");
  if (!issued) return;
  customerToken = issued.token;
  status("token-status",
    `Customer token issued for customer ${issued.customerId}: scopes "${issued.scope}", expires in ${Math.round((issued.expiresAt - Date.now()) / 1000)} s.`,
    "ok");
  $("unit-call").textContent = `GET ${config.unit_api_url}/customers/${customerId}`;
  unlock("step-unit", ["use-token"]);
}

/** Calls Unit with a customer token: `{status, body}`. */
async function unit(method, path, bearer) {
  const url = `${config.unit_api_url}${path}`;
  const res = await fetch(url, { method, headers: { authorization: "Bearer " + bearer, accept: "application/vnd.api+json" } });
  const body = await res.json().catch(() => null);
  log(method, url, res.status);
  return { status: res.status, body };
}

async function useToken() {
  let reply;
  try {
    reply = await unit("GET", `/customers/${customerId}`, customerToken);
  } catch (e) {
    status("unit-status", `Unit did not answer: ${e}`, "err");
    return;
  }
  if (reply.status !== 200) {
    status("unit-status", `Unit answered ${reply.status}: ${JSON.stringify(reply.body && reply.body.errors)}`, "err");
    return;
  }
  const c = reply.body.data;
  const name = c.attributes.fullName ? `${c.attributes.fullName.first} ${c.attributes.fullName.last}` : "";
  status("unit-status", `Unit accepted the token: customer ${c.id} (${c.type}) ${name}, status ${c.attributes.status || "Active"}.`, "ok");
  const result = $("unit-result");
  result.textContent = JSON.stringify({ id: c.id, type: c.type, fullName: c.attributes.fullName, email: c.attributes.email, status: c.attributes.status }, null, 2);
  result.hidden = false;
}

/** The sandbox opens a deposit account and a virtual debit card for the new customer, as a
 *  bank program does after approval (a sandbox control: Unit's own is an org-token call). */
async function openCard() {
  const res = await fetch(`${config.unit_api_url}/_sandbox/customers/${customerId}/card`, { method: "POST" });
  const opened = await res.json().catch(() => ({}));
  cardId = opened.cardId || null;
  if (!cardId) {
    status("card-status", `The sandbox opened no card (HTTP ${res.status}).`, "err");
    return;
  }
  unlock("step-card", ["list-cards", "freeze-read-only", "freeze", "unfreeze"]);
  await listCards();
}

/** Lists the customer's cards with a read-only token (`cards`: no step-up needed). */
async function listCards() {
  const read = await token({ scope: "cards" }, "card-status");
  if (!read) return;
  const reply = await unit("GET", "/cards", read.token);
  if (reply.status !== 200) {
    status("card-status", `Unit answered ${reply.status}`, "err");
    return;
  }
  const cards = reply.body.data.map((c) => `card ${c.id} •••• ${c.attributes.last4Digits}: ${c.attributes.status}`);
  $("cards").textContent = cards.join("\n");
  $("cards").dataset.status = (reply.body.data.find((c) => c.id === cardId) || { attributes: {} }).attributes.status || "";
}

/** A card action with `ask`'s token; Unit's answer shown. */
async function cardAction(action, ask) {
  const issued = await token(ask, "card-status");
  if (!issued) return;
  const reply = await unit("POST", `/cards/${cardId}/${action}`, issued.token);
  if (reply.status === 200) {
    status("card-status", `Unit: ${action} done, the card is ${reply.body.data.attributes.status} (token scopes "${issued.scope}", limited to card ${cardId}).`, "ok");
  } else {
    const e = (reply.body && reply.body.errors && reply.body.errors[0]) || {};
    status("card-status", `Unit refused the ${action}: ${reply.status} ${e.title || ""} ${e.detail || ""} (token scopes "${issued.scope}").`, "err");
  }
  await listCards();
}

async function main() {
  config = await (await fetch("/demo/config.json")).json();
  $("signup").addEventListener("click", () => signIn("signup"));
  $("login").addEventListener("click", () => signIn("login"));
  $("refresh-onboarding").addEventListener("click", refreshOnboarding);
  $("send-email-code").addEventListener("click", sendEmailCode);
  $("verify-email-code").addEventListener("click", verifyEmailCode);
  $("enrol").addEventListener("click", enrol);
  $("replace").addEventListener("click", replaceAuthenticator);
  $("step-up").addEventListener("click", stepUp);
  $("get-token").addEventListener("click", getToken);
  $("use-token").addEventListener("click", useToken);
  $("list-cards").addEventListener("click", listCards);
  $("freeze-read-only").addEventListener("click", () => cardAction("freeze", { scope: "cards" }));
  $("freeze").addEventListener("click", () => cardAction("freeze", { scope: "cards cards-write", card: cardId }));
  $("unfreeze").addEventListener("click", () => cardAction("unfreeze", { scope: "cards cards-write", card: cardId }));
  document.body.dataset.ready = "true";
}

main();
