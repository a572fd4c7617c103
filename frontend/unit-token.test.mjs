// Tests of unit-token.mjs with Node's test runner (`node --test frontend/`, part of `make test`):
// a scripted bridge answers each request; the clock is ours.
import { test } from "node:test";
import assert from "node:assert/strict";
import { UnitTokens, BridgeError, challengeError, UNIT_COMPONENT_KEYS } from "./unit-token.mjs";

const STEP_UP = {
  status: 401,
  headers: { "www-authenticate": 'Bearer error="insufficient_user_authentication", error_description="cards-write need a TOTP step-up", max_age="300"' },
  body: { error: { code: "step_up_required", message: "cards-write need a TOTP step-up", step_up: { factors: ["totp"], max_age: 300 } } },
};
const REVOKED = {
  status: 401,
  headers: { "www-authenticate": 'Bearer error="invalid_token", error_description="the session was revoked"' },
  body: { error: { code: "session_revoked", message: "the session was revoked" } },
};
const issued = (token, expiresIn = 300) => ({
  status: 200, headers: {}, body: { token, scope: "cards cards-write", customer_id: "10001", expires_in: expiresIn },
});

/// A bridge that answers `replies` in order and records each request.
function bridge(replies, { exposeHeaders = true } = {}) {
  const requests = [];
  const fetch = async (url, init) => {
    requests.push({ url, authorization: init.headers.authorization, body: JSON.parse(init.body) });
    const r = replies.shift();
    assert.ok(r, "an unexpected request");
    const headers = new Map(Object.entries(exposeHeaders ? r.headers : {}));
    return { ok: r.status < 300, status: r.status, headers: { get: (k) => headers.get(k.toLowerCase()) ?? null }, json: async () => r.body };
  };
  return { fetch, requests };
}

function client(b, overrides = {}) {
  let clock = 1_000_000;
  const state = { jwt: "jwt-1", stepUps: [] };
  const tokens = new UnitTokens({
    bridgeUrl: "https://bridge.example/",
    sessionJwt: () => state.jwt,
    stepUp: async (challenge) => { state.stepUps.push(challenge); state.jwt = "jwt-stepped-up"; },
    fetch: b.fetch,
    now: () => clock,
    storages: [],
    ...overrides,
  });
  return { tokens, state, advance: (s) => { clock += s * 1000; } };
}

test("a token is kept in memory until shortly before it expires", async () => {
  const b = bridge([issued("t1"), issued("t2")]);
  const { tokens, advance } = client(b);
  assert.equal((await tokens.get({ scope: "cards-write cards" })).token, "t1");
  advance(269);
  assert.equal((await tokens.get({ scope: "cards cards-write" })).token, "t1", "same scopes, any order");
  advance(2);
  assert.equal((await tokens.get({ scope: "cards cards-write" })).token, "t2", "30 s before expiry: a new one");
  assert.equal(b.requests.length, 2);
  assert.equal(b.requests[0].url, "https://bridge.example/unit/customer-token");
  assert.deepEqual(b.requests[0].body, { scope: "cards cards-write" });
});

test("concurrent asks for the same token share one request", async () => {
  const b = bridge([issued("t1")]);
  const { tokens } = client(b);
  const [a, c] = await Promise.all([tokens.get({ scope: "cards" }), tokens.get({ scope: "cards" })]);
  assert.equal(a.token, c.token);
  assert.equal(b.requests.length, 1);
});

test("a card-limited token is asked for with resources and cached apart", async () => {
  const b = bridge([issued("card"), issued("any")]);
  const { tokens } = client(b);
  assert.equal((await tokens.get({ scope: "cards-write", card: 42 })).token, "card");
  assert.equal((await tokens.get({ scope: "cards-write" })).token, "any");
  assert.deepEqual(b.requests[0].body, { scope: "cards-write", resources: [{ type: "card", ids: ["42"] }] });
  assert.deepEqual(b.requests[1].body, { scope: "cards-write" });
});

test("the step-up challenge runs the app's step-up and retries once with the new JWT", async () => {
  const b = bridge([STEP_UP, issued("t1")]);
  const { tokens, state } = client(b);
  assert.equal((await tokens.get({ scope: "cards-write" })).token, "t1");
  assert.deepEqual(state.stepUps, [{ factors: ["totp"], maxAge: 300, description: "cards-write need a TOTP step-up" }]);
  assert.deepEqual(b.requests.map((r) => r.authorization), ["Bearer jwt-1", "Bearer jwt-stepped-up"]);
});

test("the challenge is read from the body when the header is not exposed", async () => {
  const b = bridge([STEP_UP, issued("t1")], { exposeHeaders: false });
  const { tokens, state } = client(b);
  assert.equal((await tokens.get({ scope: "cards-write" })).token, "t1");
  assert.equal(state.stepUps.length, 1);
});

test("a second challenge after the step-up fails instead of looping", async () => {
  const b = bridge([STEP_UP, STEP_UP]);
  const { tokens, state } = client(b);
  await assert.rejects(tokens.get({ scope: "cards-write" }), (e) => e instanceof BridgeError && e.code === "step_up_required" && e.stepUp.maxAge === 300);
  assert.equal(state.stepUps.length, 1);
  assert.equal(b.requests.length, 2);
});

test("invalid_token is never retried: the app logs in again", async () => {
  const b = bridge([REVOKED]);
  const { tokens, state } = client(b);
  await assert.rejects(tokens.get({ scope: "cards" }), (e) => e.loginRequired && e.code === "session_revoked" && !e.stepUp);
  assert.equal(state.stepUps.length, 0);
  assert.equal(b.requests.length, 1);
});

test("a refused step-up rejects the ask, and a failure is not cached", async () => {
  const b = bridge([STEP_UP, issued("t1")]);
  const { tokens } = client(b, { stepUp: async () => { throw new Error("the user gave up"); } });
  await assert.rejects(tokens.get({ scope: "cards-write" }), /gave up/);
  assert.equal((await tokens.get({ scope: "cards-write" })).token, "t1");
});

test("other refusals carry their status, code and Retry-After", async () => {
  const b = bridge([{ status: 429, headers: { "retry-after": "17" }, body: { error: { code: "too_many_tokens", message: "slow down" } } }]);
  const { tokens } = client(b);
  await assert.rejects(tokens.get({ scope: "cards" }), (e) => e.status === 429 && e.code === "too_many_tokens" && e.retryAfter === 17 && !e.loginRequired);
});

test("logout forgets tokens, Unit's component keys, and a token still being minted", async () => {
  const storage = new Map(UNIT_COMPONENT_KEYS.map((k) => [k, "v2.public.x"]).concat([["theme", "dark"]]));
  const store = { removeItem: (k) => storage.delete(k) };
  const b = bridge([issued("t1"), issued("t2"), issued("t3")]);
  const { tokens } = client(b, { storages: [store] });
  await tokens.get({ scope: "cards" });
  const inFlight = tokens.get({ scope: "accounts" });
  tokens.logout();
  await assert.rejects(inFlight, (e) => e.code === "logged_out");
  assert.deepEqual([...storage.keys()], ["theme"]);
  assert.equal((await tokens.get({ scope: "cards" })).token, "t3", "asked again after logout");
});

test("challengeError reads RFC 6750 challenges", () => {
  assert.equal(challengeError('Bearer error="insufficient_user_authentication", max_age="300"'), "insufficient_user_authentication");
  assert.equal(challengeError('Bearer realm="x", error="invalid_token"'), "invalid_token");
  assert.equal(challengeError("Bearer"), null);
  assert.equal(challengeError(null), null);
});
