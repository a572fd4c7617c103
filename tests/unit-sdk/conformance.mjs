// The Unit sandbox driven by Unit's official Node SDK (@unit-finance/unit-node-sdk, pinned in
// package-lock.json): each step calls the SDK as an app would and asserts that the SDK parsed the
// answer and that the values are right. Run by tools/unit_sdk_test.sh against the local stack's
// sandboxes; the environment names them:
//   UNIT_API_URL, UNIT_API_TOKEN, UNIT_WEBHOOK_TOKEN, STYTCH_API_URL, STYTCH_PROJECT_ID, STYTCH_SECRET
// Writes the step count to $REPORT (JSON).
//
// The published SDK (0.41.0, the newest on npm) predates its V2 form support (`apiVersion`), so
// the V2 form is driven the nearest official way: the SDK's own `config.axios` hook with the
// `X-Accept-Version: V2024_06` header that newer SDKs send for `apiVersion: "V2024_06"`.
import assert from "node:assert/strict";
import { randomInt, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import axios from "axios";
import { Unit } from "@unit-finance/unit-node-sdk";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const unitUrl = env("UNIT_API_URL");
const unitToken = env("UNIT_API_TOKEN");
const webhookToken = env("UNIT_WEBHOOK_TOKEN");
const stytchUrl = env("STYTCH_API_URL");
const stytchAuth = "Basic " + Buffer.from(`${env("STYTCH_PROJECT_ID")}:${env("STYTCH_SECRET")}`).toString("base64");
const sdkVersion = JSON.parse(
  readFileSync(new URL("./node_modules/@unit-finance/unit-node-sdk/package.json", import.meta.url)),
).version;

// A timeout on every call (the SDK sets none), and the V2 form header on a client of its own.
const unit = new Unit(unitToken, unitUrl, { axios: axios.create({ timeout: 10000 }) });
const unitV2 = new Unit(unitToken, unitUrl, {
  axios: axios.create({ timeout: 10000, headers: { "X-Accept-Version": "V2024_06" } }),
});

const passed = [];
async function step(name, f) {
  process.stderr.write(`unit sdk step: ${name}\n`);
  try {
    const out = await f();
    passed.push(name);
    return out;
  } catch (e) {
    console.error(`FAILED: ${name}`);
    if (e?.isUnitError) console.error(JSON.stringify({ message: e.message, errors: e.errors }, null, 2));
    throw e;
  }
}

/** The SDK's UnitError for a refused call (it throws one for every non-2xx). */
async function refusal(promise) {
  try {
    const value = await promise;
    assert.fail(`expected a refusal, got ${JSON.stringify(value)}`);
  } catch (e) {
    if (!e?.isUnitError) throw e;
    assert.ok(e.errors.length > 0, `the SDK parsed Unit's errors: ${e.message}`);
    return e;
  }
}

/** A Stytch sandbox user with a password session (the session JWT is what Unit checks). */
async function stytchUser(email) {
  const r = await fetch(`${stytchUrl}/v1/passwords`, {
    method: "POST",
    headers: { authorization: stytchAuth, "content-type": "application/json" },
    body: JSON.stringify({ email, password: `a long passphrase for ${email}`, session_duration_minutes: 60 }),
  });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body;
}

/** Unit's sandbox test data for an individual, with a fresh SSN outside the reserved ones. */
function individual(jwtSubject, key) {
  const ssn = String(randomInt(100000000, 899999999));
  return {
    type: "individualApplication",
    attributes: {
      ssn,
      fullName: { first: "Peter", last: "Parker" },
      dateOfBirth: "2001-08-10",
      address: { street: "20 Ingram St", city: "Forest Hills", state: "NY", postalCode: "11375", country: "US" },
      email: "peter@oscorp.com",
      phone: { countryCode: "1", number: "5555555555" },
      ...(jwtSubject && { jwtSubject }),
      idempotencyKey: key,
      tags: { test: "unit-sdk" },
    },
  };
}

async function approvedApplication(jwtSubject) {
  const created = await unit.applications.create(individual(jwtSubject, randomUUID()));
  let app = created.data;
  for (let i = 0; i < 50 && app.attributes.status !== "Approved"; i++) {
    await new Promise((r) => setTimeout(r, 100));
    app = (await unit.applications.get(app.id)).data;
  }
  assert.equal(app.attributes.status, "Approved");
  return app;
}

const peter = await step("a Stytch sandbox user to be the applicant", () => stytchUser(`peter-${randomUUID()}@example.com`));
const mary = await step("a second Stytch user", () => stytchUser(`mary-${randomUUID()}@example.com`));

const key = randomUUID();
const first = await step("applications.create: an individual application with jwtSubject", async () => {
  const r = await unit.applications.create(individual(peter.user_id, key));
  assert.equal(r.data.type, "individualApplication");
  assert.match(r.data.id, /^\d+$/);
  assert.equal(r.data.attributes.jwtSubject, peter.user_id);
  assert.equal(r.data.attributes.fullName.first, "Peter");
  assert.deepEqual(r.data.attributes.tags, { test: "unit-sdk" });
  const sent = individual(peter.user_id, key).attributes.ssn;
  assert.notEqual(r.data.attributes.ssn, sent, "the SSN is not echoed whole");
  return r.data;
});
await step("applications.create again with the same idempotencyKey: the same application", async () => {
  const r = await unit.applications.create(individual(peter.user_id, key));
  assert.equal(r.data.id, first.id);
});
const customerId = await step("applications.get: approved, with its customer", async () => {
  let app = first;
  for (let i = 0; i < 50 && app.attributes.status !== "Approved"; i++) {
    await new Promise((r) => setTimeout(r, 100));
    app = (await unit.applications.get(first.id)).data;
  }
  assert.equal(app.attributes.status, "Approved");
  const customer = app.relationships.customer.data;
  assert.equal(customer.type, "individualCustomer");
  return customer.id;
});
await step("customers.get: the customer carries the jwtSubject", async () => {
  const r = await unit.customers.get(customerId);
  assert.equal(r.data.type, "individualCustomer");
  assert.equal(r.data.id, customerId);
  assert.equal(r.data.attributes.jwtSubject, peter.user_id);
  assert.equal(r.data.attributes.fullName.last, "Parker");
});

const formKey = `form-${randomUUID()}`;
const form = await step("applicationForms.create (V2): prefill with jwtSubject, a link", async () => {
  const r = await unitV2.applicationForms.create({
    type: "applicationForm",
    attributes: {
      idempotencyKey: formKey,
      jwtSubject: mary.user_id,
      applicantDetails: { jwtSubject: mary.user_id, email: mary.user.emails[0].email },
      tags: { stytchUserId: mary.user_id },
      allowedApplicationTypes: ["Individual"],
    },
  });
  assert.equal(r.data.type, "applicationFormV2");
  assert.match(r.data.links.related.href, /^https?:\/\//);
  assert.equal(r.data.links.related.type, "text/html");
  assert.ok(r.data.attributes.applicationFormToken.token);
  assert.deepEqual(r.data.attributes.tags, { stytchUserId: mary.user_id });
  return r.data;
});
await step("applicationForms.create (V2) again with the same idempotencyKey: the same form", async () => {
  const r = await unitV2.applicationForms.create({
    type: "applicationForm",
    attributes: { idempotencyKey: formKey, applicantDetails: { jwtSubject: mary.user_id } },
  });
  assert.equal(r.data.id, form.id);
});
await step("applicationForms.get (V2): the form and its link", async () => {
  const r = await unitV2.applicationForms.get(form.id);
  assert.equal(r.data.id, form.id);
  assert.match(r.data.links.related.href, /^https?:\/\//);
});
await step("applicationForms.create (V2) without an idempotencyKey: 400 pointing at it", async () => {
  const e = await refusal(
    unitV2.applicationForms.create({ type: "applicationForm", attributes: { applicantDetails: { jwtSubject: mary.user_id } } }),
  );
  assert.equal(e.errors[0].status, "400");
  assert.equal(e.errors[0].source.pointer, "/data/attributes/idempotencyKey");
});

await step("test SSN 000000004: PendingReview, then simulations.approveApplication approves it", async () => {
  const body = individual(undefined, randomUUID());
  body.attributes.ssn = "000000004";
  const created = await unit.applications.create(body);
  assert.equal(created.data.attributes.status, "PendingReview");
  const r = await unit.simulations.approveApplication(created.data.id, {
    type: "applicationApprove",
    attributes: { reason: "sandbox" },
  });
  assert.equal(r.data.id, created.data.id);
  assert.equal(r.data.attributes.status, "Approved");
  assert.equal(r.data.relationships.customer.data.type, "individualCustomer");
  const e = await refusal(
    unit.simulations.approveApplication(created.data.id, { type: "applicationApprove", attributes: { reason: "again" } }),
  );
  assert.equal(e.errors[0].status, "400");
});
await step("test SSN 000000001: Denied at once", async () => {
  const body = individual(undefined, randomUUID());
  body.attributes.ssn = "000000001";
  const created = await unit.applications.create(body);
  assert.equal(created.data.attributes.status, "Denied");
});

const unbound = await step("an application without jwtSubject: its customer has none", async () => {
  const app = await approvedApplication(undefined);
  const id = app.relationships.customer.data.id;
  const c = await unit.customers.get(id);
  assert.ok(!c.data.attributes.jwtSubject, JSON.stringify(c.data.attributes));
  return id;
});
await step("customers.update: PATCH jwtSubject binds the customer", async () => {
  const r = await unit.customers.update({
    customerId: unbound,
    data: { type: "individualCustomer", attributes: { jwtSubject: mary.user_id } },
  });
  assert.equal(r.data.attributes.jwtSubject, mary.user_id);
  const again = await unit.customers.get(unbound);
  assert.equal(again.data.attributes.jwtSubject, mary.user_id);
});

await step("customerToken.createToken with the customer's Stytch JWT", async () => {
  const r = await unit.customerToken.createToken(customerId, {
    type: "customerToken",
    attributes: { scope: "customers accounts", jwtToken: peter.session_jwt, expiresIn: 900 },
  });
  assert.equal(r.data.type, "customerBearerToken");
  assert.ok(r.data.attributes.token.length > 20);
  assert.equal(r.data.attributes.expiresIn, 900);
});
await step("customerToken.createToken with another user's JWT: 401", async () => {
  const e = await refusal(
    unit.customerToken.createToken(customerId, {
      type: "customerToken",
      attributes: { scope: "customers", jwtToken: mary.session_jwt },
    }),
  );
  assert.equal(e.errors[0].status, "401");
  assert.equal(e.errors[0].title, "Unauthorized");
});
await step("customerToken.createToken with an expired JWT: 401", async () => {
  const r = await fetch(`${stytchUrl}/_sandbox/jwt`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ session_token: peter.session_token, issued_seconds_ago: 900 }),
  });
  assert.equal(r.status, 200);
  const { session_jwt: expired } = await r.json();
  const e = await refusal(
    unit.customerToken.createToken(customerId, {
      type: "customerToken",
      attributes: { scope: "customers", jwtToken: expired },
    }),
  );
  assert.equal(e.errors[0].status, "401");
  assert.match(e.errors[0].detail, /expired/i);
});
await step("customerToken.createTokenVerification: a verification token", async () => {
  const r = await unit.customerToken.createTokenVerification(customerId, {
    type: "customerTokenVerification",
    attributes: { channel: "sms" },
  });
  assert.ok(r.data.attributes.verificationToken);
});

// Accounts and cards, and customer tokens on the card routes (docs/unit-api.md §12).
const asCustomer = (token) => new Unit(token, unitUrl, { axios: axios.create({ timeout: 10000 }) });
/** An SDK client holding a customer token of `customer`, minted with `user`'s Stytch JWT. */
async function withToken(customer, user, scope, resources) {
  const r = await unit.customerToken.createToken(customer, {
    type: "customerToken",
    attributes: { scope, jwtToken: user.session_jwt, expiresIn: 600, ...(resources && { resources }) },
  });
  return asCustomer(r.data.attributes.token);
}
const onAccount = (id) => ({ account: { data: { type: "depositAccount", id } } });

const account = await step("accounts.create: a deposit account, and its idempotent repeat", async () => {
  const request = {
    type: "depositAccount",
    attributes: { depositProduct: "checking", tags: { test: "unit-sdk" }, idempotencyKey: `account-${randomUUID()}` },
    relationships: { customer: { data: { type: "customer", id: customerId } } },
  };
  const r = await unit.accounts.create(request);
  assert.equal(r.data.type, "depositAccount");
  assert.match(r.data.id, /^\d+$/);
  const a = r.data.attributes;
  assert.equal(a.status, "Open");
  assert.deepEqual([a.balance, a.hold, a.available, a.currency], [0, 0, 0, "USD"]);
  assert.match(a.routingNumber, /^\d{9}$/);
  assert.match(a.accountNumber, /^\d{10,12}$/);
  assert.equal(a.name, "Peter Parker");
  assert.equal(r.data.relationships.customer.data.id, customerId);
  const again = await unit.accounts.create(request);
  assert.equal(again.data.id, r.data.id);
  return r.data;
});
await step("accounts.get: the account", async () => {
  const r = await unit.accounts.get(account.id);
  assert.equal(r.data.id, account.id);
  assert.equal(r.data.attributes.depositProduct, "checking");
});
const card = await step("cards.create: an individual virtual debit card, Active", async () => {
  const r = await unit.cards.create({
    type: "individualVirtualDebitCard",
    attributes: { tags: { test: "unit-sdk" } },
    relationships: onAccount(account.id),
  });
  assert.equal(r.data.type, "individualVirtualDebitCard");
  assert.equal(r.data.attributes.status, "Active");
  assert.match(r.data.attributes.last4Digits, /^\d{4}$/);
  assert.match(r.data.attributes.expirationDate, /^\d{4}-(0[1-9]|1[0-2])$/);
  assert.equal(r.data.relationships.account.data.id, account.id);
  assert.equal(r.data.relationships.customer.data.id, customerId);
  return r.data;
});
const spare = await step("cards.createDebitCard: a second card on the account", async () => {
  const r = await unit.cards.createDebitCard({ type: "individualVirtualDebitCard", attributes: {}, relationships: onAccount(account.id) });
  assert.notEqual(r.data.id, card.id);
  return r.data;
});
await step("cards.create of a physical card: 400 (the sandbox issues virtual cards)", async () => {
  const e = await refusal(
    unit.cards.create({ type: "individualDebitCard", attributes: {}, relationships: onAccount(account.id) }),
  );
  assert.equal(e.errors[0].status, "400");
  assert.equal(e.errors[0].source.pointer, "/data/type");
});
await step("cards.get and cards.list (filter[accountId]) with the org token", async () => {
  const r = await unit.cards.get(card.id);
  assert.equal(r.data.id, card.id);
  const list = await unit.cards.list({ accountId: account.id });
  assert.deepEqual(list.data.map((c) => c.id), [spare.id, card.id], "newest first (the SDK sends sort=-createdAt)");
});
const reader = await step("customer token (scope cards): cards.list and cards.get", async () => {
  const sdk = await withToken(customerId, peter, "cards");
  const list = await sdk.cards.list();
  assert.deepEqual(list.data.map((c) => c.id).sort(), [card.id, spare.id].sort());
  const r = await sdk.cards.get(card.id);
  assert.equal(r.data.attributes.status, "Active");
  return sdk;
});
await step("cards.freeze with a cards token: 403 naming cards-write", async () => {
  const e = await refusal(reader.cards.freeze(card.id));
  assert.equal(e.errors[0].status, "403");
  assert.match(e.errors[0].detail, /cards-write/);
});
const writer = await step("customer token (scope cards-write): cards.freeze, then cards.unfreeze", async () => {
  const sdk = await withToken(customerId, peter, "cards-write");
  const frozen = await sdk.cards.freeze(card.id);
  assert.equal(frozen.data.attributes.status, "Frozen");
  const active = await sdk.cards.unfreeze(card.id);
  assert.equal(active.data.attributes.status, "Active");
  return sdk;
});
await step("cards.getPinStatus: 403 with cards, NotSet with cards-sensitive", async () => {
  const e = await refusal(reader.cards.getPinStatus(card.id));
  assert.equal(e.errors[0].status, "403");
  const sdk = await withToken(customerId, peter, "cards-sensitive");
  const r = await sdk.cards.getPinStatus(card.id);
  assert.equal(r.data.type, "pinStatus");
  assert.equal(r.data.attributes.status, "NotSet");
});
await step("a token whose resources name the second card: 403 on the first, 200 on the second", async () => {
  const sdk = await withToken(customerId, peter, "cards-write", [{ type: "card", ids: [spare.id] }]);
  const e = await refusal(sdk.cards.freeze(card.id));
  assert.equal(e.errors[0].status, "403");
  const r = await sdk.cards.freeze(spare.id);
  assert.equal(r.data.attributes.status, "Frozen");
  const list = await sdk.cards.list();
  assert.deepEqual(list.data.map((c) => c.id), [spare.id]);
});
await step("another customer's token: 403 on the card", async () => {
  const sdk = await withToken(unbound, mary, "cards-write");
  const e = await refusal(sdk.cards.get(card.id));
  assert.equal(e.errors[0].status, "403");
  assert.deepEqual((await sdk.cards.list()).data, []);
});
await step("cards.reportLost: Lost, after which cards.unfreeze is 400", async () => {
  const r = await writer.cards.reportLost(card.id);
  assert.equal(r.data.attributes.status, "Lost");
  const e = await refusal(writer.cards.unfreeze(card.id));
  assert.equal(e.errors[0].status, "400");
  assert.equal((await unit.cards.get(card.id)).data.attributes.status, "Lost");
});
const opened = await step("the /_sandbox/ control opens an account and a card, the same ids twice", async () => {
  const open = async () => {
    const r = await fetch(`${unitUrl}/_sandbox/customers/${unbound}/card`, { method: "POST" });
    assert.equal(r.status, 201);
    return r.json();
  };
  const first = await open();
  assert.deepEqual(await open(), first);
  const r = await unit.cards.get(first.cardId);
  assert.equal(r.data.relationships.account.data.id, first.accountId);
  return first;
});
await step("cards.reportStolen and cards.closeCard", async () => {
  const stolen = await unit.cards.reportStolen(opened.cardId);
  assert.equal(stolen.data.attributes.status, "Stolen");
  const closed = await writer.cards.closeCard(spare.id);
  assert.equal(closed.data.attributes.status, "ClosedByCustomer");
});

// Business banking (docs/unit-api.md §13): a business application bound by its contact's
// jwtSubject, its business customer, authorized users, and tokens for the business's members.
const businessPhone = { countryCode: "1", number: "5555550100" };
const businessAddress = { street: "5230 Newell Rd", city: "Palo Alto", state: "CA", postalCode: "94303", country: "US" };
const nineDigits = () => String(randomInt(100000000, 899999999));
function businessPerson(first, email, ssn) {
  return {
    fullName: { first, last: "Hendricks" },
    email,
    phone: businessPhone,
    address: businessAddress,
    dateOfBirth: "1990-03-05",
    ssn,
  };
}
/** A business application on Unit's spec: an officer, one beneficial owner, the contact's subject. */
function business(contactSubject, key, officerSsn = nineDigits()) {
  return {
    type: "businessApplication",
    attributes: {
      name: "Pied Piper",
      ein: nineDigits(),
      entityType: "Corporation",
      stateOfIncorporation: "DE",
      phone: businessPhone,
      address: businessAddress,
      contact: {
        fullName: { first: "Richard", last: "Hendricks" },
        email: "richard@piedpiper.com",
        phone: businessPhone,
        ...(contactSubject && { jwtSubject: contactSubject }),
      },
      officer: { ...businessPerson("Richard", "richard@piedpiper.com", officerSsn), title: "CEO", occupation: "ExecutiveOrManager" },
      beneficialOwners: [{ ...businessPerson("Erlich", "erlich@piedpiper.com", nineDigits()), percentage: 40 }],
      idempotencyKey: key,
      tags: { test: "unit-sdk-business" },
    },
  };
}
const memberOf = (user, first) => ({
  fullName: { first, last: "Bachman" },
  email: user.user.emails[0].email,
  phone: { countryCode: "1", number: "5555550102" },
  jwtSubject: user.user_id,
});
const businessToken = (customer, user, relationships) =>
  unit.customerToken.createToken(customer, {
    type: "customerToken",
    attributes: { scope: "customers accounts", jwtToken: user.session_jwt, expiresIn: 600 },
    ...(relationships && { relationships }),
  });

const [contactUser, memberUser] = await step("two more Stytch users: a business's contact and a member", () =>
  Promise.all([stytchUser(`richard-${randomUUID()}@example.com`), stytchUser(`erlich-${randomUUID()}@example.com`)]),
);
const businessKey = randomUUID();
const businessApp = await step("applications.create: a business application, approved, its repeat the same", async () => {
  const r = await unit.applications.create(business(contactUser.user_id, businessKey));
  assert.equal(r.data.type, "businessApplication");
  assert.match(r.data.id, /^\d+$/);
  const a = r.data.attributes;
  assert.equal(a.status, "Approved");
  assert.equal(a.contact.jwtSubject, contactUser.user_id);
  assert.equal(a.jwtSubject, undefined, "a business application has no top-level subject");
  assert.match(a.officer.maskedSSN, /^\*{5}\d{4}$/);
  assert.equal(a.officer.ssn, undefined, "the SSN is not echoed");
  assert.equal(r.data.relationships.customer.data.type, "businessCustomer");
  assert.equal(r.data.relationships.beneficialOwners.data.length, 1);
  const again = await unit.applications.create(business(contactUser.user_id, businessKey));
  assert.equal(again.data.id, r.data.id);
  return r.data;
});
const businessId = businessApp.relationships.customer.data.id;
await step("applications.get: the business application", async () => {
  const r = await unit.applications.get(businessApp.id);
  assert.equal(r.data.type, "businessApplication");
  assert.equal(r.data.attributes.name, "Pied Piper");
  assert.equal(r.data.relationships.customer.data.id, businessId);
});
await step("customers.get: the businessCustomer with its contact's jwtSubject and no authorized users", async () => {
  const r = await unit.customers.get(businessId);
  assert.equal(r.data.type, "businessCustomer");
  const a = r.data.attributes;
  assert.equal(a.status, "Active");
  assert.equal(a.name, "Pied Piper");
  assert.equal(a.entityType, "Corporation");
  assert.equal(a.contact.jwtSubject, contactUser.user_id);
  assert.deepEqual(a.authorizedUsers, []);
  assert.equal(r.data.relationships.application.data.type, "businessApplication");
});
await step("test officer SSN 000000005: AwaitingDocuments, then simulations.approveApplication", async () => {
  const created = await unit.applications.create(business(undefined, randomUUID(), "000000005"));
  assert.equal(created.data.attributes.status, "AwaitingDocuments");
  const r = await unit.simulations.approveApplication(created.data.id, {
    type: "applicationApprove",
    attributes: { reason: "sandbox" },
  });
  assert.equal(r.data.attributes.status, "Approved");
  assert.equal(r.data.relationships.customer.data.type, "businessCustomer");
});
await step("customerToken.createToken for the business with its contact's Stytch JWT", async () => {
  const r = await businessToken(businessId, contactUser);
  assert.equal(r.data.type, "customerBearerToken");
  const me = await asCustomer(r.data.attributes.token).customers.get(businessId);
  assert.equal(me.data.type, "businessCustomer");
});
await step("customerToken.createToken with a member's JWT before they are an authorized user: 401", async () => {
  const e = await refusal(businessToken(businessId, memberUser));
  assert.equal(e.errors[0].status, "401");
});
await step("customers.addAuthorizedUsers: appended, the same e-mail updates; the member's JWT mints", async () => {
  const r = await unit.customers.addAuthorizedUsers({
    customerId: businessId,
    data: { type: "addAuthorizedUsers", attributes: { authorizedUsers: [{ ...memberOf(memberUser, "Erlich"), jwtSubject: "stale" }] } },
  });
  assert.equal(r.data.type, "businessCustomer");
  assert.equal(r.data.attributes.authorizedUsers.length, 1);
  const updated = await unit.customers.addAuthorizedUsers({
    customerId: businessId,
    data: { type: "addAuthorizedUsers", attributes: { authorizedUsers: [memberOf(memberUser, "Erlich")] } },
  });
  assert.deepEqual(updated.data.attributes.authorizedUsers, [memberOf(memberUser, "Erlich")]);
  assert.equal((await businessToken(businessId, memberUser)).data.type, "customerBearerToken");
});
await step("createToken with authorizedUserResource: the named user's JWT 201, the contact's 403", async () => {
  const listed = await fetch(
    `${unitUrl}/customers/${businessId}/authorized-users?filter[jwtSubject]=${encodeURIComponent(memberUser.user_id)}`,
    { headers: { authorization: `Bearer ${unitToken}` } },
  );
  assert.equal(listed.status, 200);
  const [member] = (await listed.json()).data;
  assert.equal(member.type, "authorizedUserResource");
  const naming = { authorizedUserResource: { data: { type: "authorizedUserResource", id: member.id } } };
  assert.equal((await businessToken(businessId, memberUser, naming)).data.type, "customerBearerToken");
  const e = await refusal(businessToken(businessId, contactUser, naming));
  assert.equal(e.errors[0].status, "403");
  assert.equal(e.errors[0].source.pointer, "/data/relationships/authorizedUserResource");
});
await step("customers.removeAuthorizedUsers: removed, the member's JWT is refused again", async () => {
  const r = await unit.customers.removeAuthorizedUsers({
    customerId: businessId,
    data: { type: "removeAuthorizedUsers", attributes: { authorizedUsersEmails: [memberUser.user.emails[0].email] } },
  });
  assert.deepEqual(r.data.attributes.authorizedUsers, []);
  const e = await refusal(businessToken(businessId, memberUser));
  assert.equal(e.errors[0].status, "401");
});

await step("customers.get of an unknown customer: 404 in Unit's error shape", async () => {
  const e = await refusal(unit.customers.get("999999999"));
  assert.equal(e.errors[0].status, "404");
  assert.ok(e.errors[0].title);
  assert.equal(e.message, `404 - ${e.errors[0].title}`);
});
await step("applications.create off the spec (no dateOfBirth): 400 with the pointer", async () => {
  const body = individual(peter.user_id, randomUUID());
  delete body.attributes.dateOfBirth;
  const e = await refusal(unit.applications.create(body));
  assert.equal(e.errors[0].status, "400");
  assert.equal(e.errors[0].source.pointer, "/data/attributes/dateOfBirth");
});
await step("applications.create with a misspelt attribute: 400 with the pointer", async () => {
  const body = individual(undefined, randomUUID());
  body.attributes.jwtSubjet = peter.user_id;
  const e = await refusal(unit.applications.create(body));
  assert.equal(e.errors[0].source.pointer, "/data/attributes/jwtSubjet");
});
await step("a wrong org token: 401", async () => {
  const stranger = new Unit("v2.public.not-the-token", unitUrl, { axios: axios.create({ timeout: 10000 }) });
  const e = await refusal(stranger.customers.get(customerId));
  assert.equal(e.errors[0].status, "401");
});

await step("webhooks.verify accepts the sandbox's signature and refuses a tampered body", async () => {
  const r = await fetch(`${unitUrl}/_sandbox/webhooks`);
  const deliveries = await r.json();
  const delivery = deliveries.find((d) => d.attempts.length > 0 && d.body?.data?.[0]?.type === "application.approved");
  assert.ok(delivery, "an application.approved delivery");
  const signature = delivery.attempts[0].headers["x-unit-signature"];
  assert.ok(signature, "signed");
  assert.equal(unit.webhooks.verify(signature, webhookToken, delivery.body), true);
  const tampered = structuredClone(delivery.body);
  tampered.data[0].id = "1";
  assert.equal(unit.webhooks.verify(signature, webhookToken, tampered), false);
  assert.equal(unit.webhooks.verify(signature, "another-token", delivery.body), false);
});

const report = { sdk: "@unit-finance/unit-node-sdk", version: sdkVersion, steps: passed.length, passed };
if (process.env.REPORT) writeFileSync(process.env.REPORT, JSON.stringify(report));
console.log(`unit-node-sdk ${sdkVersion}: ${passed.length} steps passed`);
