#!/usr/bin/env python3
"""Writes events/*.json (API Gateway HTTP API payload v2.0) and events/manifest.json.

Placeholders (__SESSION_JWT__, __SVIX_*__, __UNIT_SIGNATURE__, __USER_ID__, __TOTP_CODE__) stand
for values that expire or depend on your secrets; the test command fills them in and runs every
event through its function (tests/e2e/events.rs). Run this script after changing the list below.
"""
import json
import pathlib

OUT = pathlib.Path(__file__).resolve().parents[1] / "events"


def event(method, path, headers, body, note):
    return {
        "_comment": note,
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "user-agent": "sample-event", **headers},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abcdef1234",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.10",
                     "userAgent": "sample-event"},
            "requestId": "sample-request-id", "routeKey": f"{method} {path}", "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 1795600800000,
        },
        **({"body": body} if body is not None else {}),
        "isBase64Encoded": False,
    }


JWT = {"authorization": "Bearer __SESSION_JWT__"}
SVIX = {"svix-id": "__SVIX_ID__", "svix-timestamp": "__SVIX_TIMESTAMP__", "svix-signature": "__SVIX_SIGNATURE__"}
compact = dict(separators=(",", ":"))
USER_CREATE = json.dumps({
    "action": "CREATE", "event_id": "webhook-event-test-sample", "id": "__USER_ID__", "object_type": "user",
    "project_id": "project-test-sample", "source": "DIRECT", "timestamp": "2026-11-25T10:00:00.000000000Z",
    "vertical": "CONSUMER",
    "user": {"user_id": "__USER_ID__", "status": "active",
             "emails": [{"email_id": "email-test-sample", "email": "sample@example.com", "verified": True}],
             "phone_numbers": [], "name": {"first_name": "Sam", "middle_name": "", "last_name": "Ple"},
             "totps": [], "roles": [], "is_locked": False}}, **compact)
UNIT_APPROVED = json.dumps({"data": [{
    "id": "900001", "type": "application.approved", "attributes": {"createdAt": "2026-11-25T10:00:00.000Z", "tags": {}},
    "relationships": {"application": {"data": {"id": "900002", "type": "individualApplication"}},
                      "customer": {"data": {"id": "900003", "type": "individualCustomer"}}}}]}, **compact)
KYC = json.dumps({
    "full_name": {"first": "Peter", "last": "Parker"}, "date_of_birth": "2001-08-10",
    "address": {"street": "20 Ingram St", "city": "Forest Hills", "state": "NY", "postal_code": "11375"},
    "phone": {"country_code": "1", "number": "5555555555"}, "ssn": "721074426",
    "email": "peter.parker@example.com"})

EVENTS = [
    ("stytch-webhook-user-create", "signup-webhook", 200, event(
        "POST", "/webhooks/stytch", SVIX, USER_CREATE,
        "A Svix-signed direct.user.create; the __SVIX_*__ headers must be a fresh signature with your endpoint secret (5-minute tolerance).")),
    ("stytch-webhook-bad-signature", "signup-webhook", 401, event(
        "POST", "/webhooks/stytch",
        {"svix-id": "msg_sample", "svix-timestamp": "1795600800", "svix-signature": "v1,c2lnbmF0dXJlIHRoYXQgZG9lcyBub3QgbWF0Y2g="},
        USER_CREATE, "A forged delivery: 401 invalid_signature, nothing stored.")),
    ("unit-webhook-application-approved", "signup-webhook", 200, event(
        "POST", "/webhooks/unit", {"x-unit-signature": "__UNIT_SIGNATURE__"}, UNIT_APPROVED,
        "Unit's application.approved; __UNIT_SIGNATURE__ = base64(HMAC-SHA1(unit_webhook_token, body)). Acknowledged and ignored: an event older than UNIT_EVENT_MAX_AGE_SECONDS (7 days; this one is) is never applied, nor is one for an application Unit does not know.")),
    ("unit-webhook-bad-signature", "signup-webhook", 401, event(
        "POST", "/webhooks/unit", {"x-unit-signature": "bm90IHRoZSBzaWduYXR1cmU="}, UNIT_APPROVED,
        "A forged Unit delivery: 401 invalid_signature.")),
    ("onboarding-get", "signup-webhook", 200, event(
        "GET", "/onboarding", JWT, None, "The caller's onboarding state; __SESSION_JWT__ is a Stytch session JWT (they live 5 minutes).")),
    ("onboarding-get-no-auth", "signup-webhook", 401, event(
        "GET", "/onboarding", {}, None, "No Authorization header: 401 missing_token.")),
    ("onboarding-application", "signup-webhook", 201, event(
        "POST", "/onboarding/application", JWT, KYC, "A direct individual application from KYC fields; the e-mail is typed, since the bridge defaults only to one Stytch marks verified.")),
    ("onboarding-application-invalid", "signup-webhook", 400, event(
        "POST", "/onboarding/application", JWT, json.dumps({"full_name": {"first": "Peter"}, "ssn": "12"}),
        "Invalid fields: 400 invalid_request listing each field.")),
    ("mfa-totp-enrol", "totp-stepup", 201, event(
        "POST", "/mfa/totp", JWT, "{}", "Enrol an authenticator app: secret, QR code, recovery codes.")),
    ("mfa-totp-authenticate", "totp-stepup", 200, event(
        "POST", "/mfa/totp/authenticate", JWT, json.dumps({"totp_code": "__TOTP_CODE__"}),
        "Step up with the current code (__TOTP_CODE__) of the caller's enrolled authenticator.")),
    ("mfa-totp-authenticate-malformed", "totp-stepup", 400, event(
        "POST", "/mfa/totp/authenticate", JWT, json.dumps({"totp_code": "12345"}), "Not 6 digits: 400 invalid_request.")),
    ("mfa-totp-recover-no-auth", "totp-stepup", 401, event(
        "POST", "/mfa/totp/recover", {}, json.dumps({"recovery_code": "abcd-efgh-ijkl"}), "No session JWT: 401 missing_token.")),
    ("customer-token-step-up-required", "customer-token", 401, event(
        "POST", "/unit/customer-token", JWT, json.dumps({"scope": "customers cards-write"}),
        "A sensitive scope from a session without a recent TOTP step-up: 401 step_up_required, an RFC 9470 challenge (WWW-Authenticate error=insufficient_user_authentication).")),
    ("customer-token-card", "customer-token", 401, event(
        "POST", "/unit/customer-token", JWT,
        json.dumps({"scope": "cards cards-write", "resources": [{"type": "card", "ids": ["10001"]}]}),
        "A token limited to one card, for a freeze: from a session without a recent step-up, 401 step_up_required; after one, for a card of the caller's customer, 200 with expires_in at most CARD_TOKEN_MAX_EXPIRES_IN (300); another customer's card, 404 resource_not_found.")),
    ("customer-token-onboarding-incomplete", "customer-token", 409, event(
        "POST", "/unit/customer-token", JWT, json.dumps({"scope": "customers accounts"}),
        "A read-only scope for a user without an approved Unit customer: 409 onboarding_incomplete.")),
    ("customer-token-no-auth", "customer-token", 401, event(
        "POST", "/unit/customer-token", {}, "{}", "No session JWT: 401 missing_token.")),
]

OUT.mkdir(exist_ok=True)
manifest = []
for name, function, status, body in EVENTS:
    (OUT / f"{name}.json").write_text(json.dumps(body, indent=2) + "\n")
    manifest.append({"event": f"{name}.json", "function": function, "status": status})
(OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
print(f"wrote {len(EVENTS)} events and manifest.json to {OUT}")
