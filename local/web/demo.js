// The demo page's script: plain JavaScript, no build step. It calls our routes the way a
// frontend does (Bearer session JWT), and Unit directly with the customer token.
"use strict";

const $ = (id) => document.getElementById(id);
const session = { jwt: null, token: null, userId: null, email: null };
let emailMethod = null;
let config = null;
let customerToken = null;
let customerId = null;
let polling = null;

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
  status("token-status", "Stepped up: your session now carries a fresh TOTP factor. Get the token again.", "ok");
}

async function getToken() {
  const scope = $("scope").value.trim();
  const reply = await api("POST", "/unit/customer-token", scope ? { scope } : {});
  if (reply.code === "authenticator_unconfirmed") {
    status("token-status", "authenticator_unconfirmed: confirm the e-mail of your bank account (step 3) in this session, then get the token again.", "err");
    return;
  }
  if (reply.code === "step_up_required") {
    status("token-status", "step_up_required: these scopes need a recent TOTP step-up. Enter a code and step up.", "err");
    $("totp-code").focus();
    return;
  }
  if (!reply.ok) {
    status("token-status", explain(reply), "err");
    return;
  }
  customerToken = reply.data.token;
  customerId = reply.data.customer_id;
  status("token-status",
    `Customer token issued for customer ${reply.data.customer_id}: scopes "${reply.data.scope}", expires in ${reply.data.expires_in} s.`,
    "ok");
  $("unit-call").textContent = `GET ${config.unit_api_url}/customers/${customerId}`;
  unlock("step-unit", ["use-token"]);
}

async function useToken() {
  const url = `${config.unit_api_url}/customers/${customerId}`;
  let res;
  try {
    res = await fetch(url, { headers: { authorization: "Bearer " + customerToken, accept: "application/vnd.api+json" } });
  } catch (e) {
    status("unit-status", `Unit did not answer: ${e}`, "err");
    return;
  }
  const body = await res.json().catch(() => null);
  log("GET", url, res.status);
  if (!res.ok) {
    status("unit-status", `Unit answered ${res.status}: ${JSON.stringify(body && body.errors)}`, "err");
    return;
  }
  const c = body.data;
  const name = c.attributes.fullName ? `${c.attributes.fullName.first} ${c.attributes.fullName.last}` : "";
  status("unit-status", `Unit accepted the token: customer ${c.id} (${c.type}) ${name}, status ${c.attributes.status || "Active"}.`, "ok");
  const result = $("unit-result");
  result.textContent = JSON.stringify({ id: c.id, type: c.type, fullName: c.attributes.fullName, email: c.attributes.email, status: c.attributes.status }, null, 2);
  result.hidden = false;
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
  document.body.dataset.ready = "true";
}

main();
