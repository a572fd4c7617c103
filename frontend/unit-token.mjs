// Unit customer tokens from stytch-unit-bridge, for a browser (or any JavaScript runtime with
// `fetch`). Dependency-free; import it as an ES module:
//
//   import { UnitTokens } from "./unit-token.mjs";
//   const tokens = new UnitTokens({
//     bridgeUrl: "https://api.example.com",
//     sessionJwt: () => stytch.session.getTokens()?.session_jwt,
//     stepUp: async (challenge) => { /* ask for a TOTP code, POST /mfa/totp/authenticate */ },
//   });
//   const { token } = await tokens.get({ scope: "cards cards-write", card: "12345" });
//   ...
//   tokens.logout(); // on logout: forget every token, and the keys Unit's components keep
//
// The algorithm (the README gives it for native apps):
// 1. A token is asked for by scope (and optionally one card). One for the same scope and card
//    is reused from memory until `refreshMargin` seconds before it expires; never stored.
// 2. On 401 with `WWW-Authenticate: Bearer error="insufficient_user_authentication"` (RFC 9470;
//    the body's code is `step_up_required`) the app's own `stepUp(challenge)` runs, and the
//    request is retried once with the session JWT as it is then. A second challenge fails.
// 3. On `error="invalid_token"` (the session is over) nothing is retried: `BridgeError` with
//    `loginRequired` set, so the app logs in again.
// 4. Any other refusal is a `BridgeError` with the status, code, message and `Retry-After`.

/// The keys Unit's white-label components keep their tokens under.
export const UNIT_COMPONENT_KEYS = ["unitCustomerToken", "unitVerifiedCustomerToken"];

/// A refusal by the bridge.
export class BridgeError extends Error {
  constructor(status, code, message, { loginRequired = false, retryAfter = null, stepUp = null } = {}) {
    super(`${status} ${code}: ${message}`);
    this.name = "BridgeError";
    this.status = status;
    this.code = code;
    this.loginRequired = loginRequired;
    this.retryAfter = retryAfter;
    this.stepUp = stepUp;
  }
}

/// The `error` of a `WWW-Authenticate: Bearer ...` challenge, or null.
export function challengeError(header) {
  const m = /^\s*Bearer\b.*?\berror="([^"]*)"/i.exec(header || "");
  return m ? m[1] : null;
}

/// The body codes that mean the session itself is over (they carry `error="invalid_token"`);
/// read when the header is not exposed to the page.
const SESSION_CODES = new Set([
  "missing_token", "invalid_token", "token_expired", "session_jwt_expiring", "session_ending",
  "session_rejected_by_unit", "session_revoked",
]);

export class UnitTokens {
  /**
   * @param {object} options
   * @param {string} options.bridgeUrl the bridge's base URL (no trailing slash needed)
   * @param {() => (string|null|Promise<string|null>)} options.sessionJwt the current Stytch session JWT
   * @param {(challenge: {factors: string[], maxAge: number, description: string}) => Promise<void>} options.stepUp
   *   the app's step-up: resolves once the session carries a fresh factor, rejects if the user gives up
   * @param {number} [options.refreshMargin=30] seconds before expiry a cached token is no longer handed out
   * @param {typeof fetch} [options.fetch] for tests and other runtimes
   * @param {() => number} [options.now] milliseconds, for tests
   * @param {Storage[]} [options.storages] where Unit's components keep tokens (localStorage, sessionStorage)
   */
  constructor({ bridgeUrl, sessionJwt, stepUp, refreshMargin = 30, fetch: fetchFn, now, storages }) {
    if (typeof sessionJwt !== "function" || typeof stepUp !== "function") {
      throw new TypeError("sessionJwt and stepUp must be functions");
    }
    this.url = `${String(bridgeUrl || "").replace(/\/+$/, "")}/unit/customer-token`;
    this.sessionJwt = sessionJwt;
    this.stepUp = stepUp;
    this.margin = refreshMargin * 1000;
    this.fetch = fetchFn || globalThis.fetch.bind(globalThis);
    this.now = now || Date.now;
    this.storages = storages || [globalThis.localStorage, globalThis.sessionStorage].filter(Boolean);
    this.cache = new Map();
    this.pending = new Map();
    this.generation = 0;
  }

  /**
   * A token for `scope` (space-separated Unit scopes), optionally limited to one card.
   * @returns {Promise<{token: string, scope: string, customerId: string, expiresAt: number}>}
   */
  async get({ scope, card = null, expiresIn = null } = {}) {
    const scopes = [...new Set(String(scope || "").split(/\s+/).filter(Boolean))].sort();
    const key = `${scopes.join(" ")}|${card ?? ""}`;
    const cached = this.cache.get(key);
    if (cached && cached.expiresAt - this.margin > this.now()) return cached;
    if (!this.pending.has(key)) {
      const generation = this.generation;
      const request = this.mint(scopes, card, expiresIn)
        .then((minted) => {
          if (generation !== this.generation) {
            throw new BridgeError(0, "logged_out", "logged out while the token was minted", { loginRequired: true });
          }
          this.cache.set(key, minted);
          return minted;
        })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, request);
    }
    return this.pending.get(key);
  }

  /// Forgets every token (in memory and Unit's components' storage keys). Call it on logout.
  logout() {
    this.generation += 1;
    this.cache.clear();
    this.pending.clear();
    for (const storage of this.storages) {
      for (const name of UNIT_COMPONENT_KEYS) {
        try { storage.removeItem(name); } catch { /* a storage the page may not use */ }
      }
    }
  }

  async mint(scopes, card, expiresIn) {
    const body = {};
    if (scopes.length) body.scope = scopes.join(" ");
    if (card != null) body.resources = [{ type: "card", ids: [String(card)] }];
    if (expiresIn != null) body.expires_in = expiresIn;
    for (let attempt = 0; ; attempt += 1) {
      const asked = this.now();
      const res = await this.fetch(this.url, {
        method: "POST",
        headers: { authorization: `Bearer ${await this.sessionJwt()}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const reply = await res.json().catch(() => null);
      if (res.ok && reply && typeof reply.token === "string") {
        return { token: reply.token, scope: reply.scope, customerId: reply.customer_id, expiresAt: asked + reply.expires_in * 1000 };
      }
      const refusal = refusalOf(res, reply);
      if (!refusal.stepUp || attempt > 0) throw refusal;
      await this.stepUp(refusal.stepUp);
    }
  }
}

/// The `BridgeError` for a refused (or unreadable) answer.
function refusalOf(res, reply) {
  const error = (reply && reply.error) || {};
  const code = error.code || "unexpected_answer";
  const message = error.message || `the bridge answered ${res.status}`;
  const header = challengeError(res.headers.get("www-authenticate"));
  const retry = Number.parseInt(res.headers.get("retry-after") || "", 10);
  const options = { retryAfter: Number.isFinite(retry) ? retry : null };
  if (res.status === 401 && (header === "insufficient_user_authentication" || (!header && code === "step_up_required"))) {
    const step = error.step_up || {};
    options.stepUp = { factors: step.factors || [], maxAge: step.max_age ?? null, description: message };
  } else if (res.status === 401 && (header === "invalid_token" || SESSION_CODES.has(code))) {
    options.loginRequired = true;
  }
  return new BridgeError(res.status, code, message, options);
}
