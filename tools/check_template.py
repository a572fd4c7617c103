"""Checks template.yaml for what the operations and least-privilege rules promise, beyond what
cfn-lint and `sam validate --lint` check: each function's policy is exactly the actions and
keys it uses, every log group has a retention, the access log carries no credential or body,
CORS names its origins (never "*"), the table is protected from deletion and uses the optional KMS
key like the secret, the JWKS output is Stytch's public URL, deployments roll back only on the new version's own health, the secret
is created without a value, and the security alerts have an alarm.

Usage: check_template.py template.yaml (run by `make test` with the pinned cfn-lint's loader).
"""
import re
import sys

from cfnlint.decode import decode

TABLE = {"Fn::GetAtt": ["Table", "Arn"]}
SECRET = {"Ref": "Secrets"}
READ_WRITE = ["dynamodb:GetItem", "dynamodb:PutItem"]
COUNTERS = ["dynamodb:UpdateItem", "dynamodb:DeleteItem"]
# update_user is an UpdateItem of the record's attributes, and customer-token's slot of
# TOKENS_PER_USER is a counter on the record.
UPDATE = ["dynamodb:UpdateItem"]
# The optional customer-managed key (KmsKeyArn), usable only through DynamoDB and Secrets Manager.
KMS = (["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"], {"Ref": "KmsKeyArn"}, None)

# function -> [(actions, resource, leading keys or None)]: the whole policy, nothing more.
EXPECTED = {
    "SignupWebhookFunction": [
        (READ_WRITE, TABLE, ["USER#*", "APP#*", "EVENT#*"]),
        (UPDATE, TABLE, ["USER#*"]),
        (COUNTERS, TABLE, ["ATTEMPTS#applications:*"]),
        (["secretsmanager:GetSecretValue"], SECRET, None),
        KMS,
    ],
    "TotpStepupFunction": [
        (COUNTERS, TABLE, ["ATTEMPTS#totp:*"]),
        (READ_WRITE, TABLE, ["USER#*", "AUDIT#*"]),
        (UPDATE, TABLE, ["USER#*"]),
        (["secretsmanager:GetSecretValue"], SECRET, None),
        KMS,
    ],
    "CustomerTokenFunction": [
        (READ_WRITE, TABLE, ["USER#*", "APP#*", "AUDIT#*"]),
        (UPDATE, TABLE, ["USER#*"]),
        (["secretsmanager:GetSecretValue"], SECRET, None),
        KMS,
    ],
}


def as_list(value):
    return value if isinstance(value, list) else [value]


def check(template):
    problems = []
    resources = template["Resources"]
    for name, expected in EXPECTED.items():
        props = resources[name]["Properties"]
        statements = [s for p in props.get("Policies", []) for s in p["Statement"]]
        got = []
        for s in statements:
            if "Fn::If" in s:
                condition, s, otherwise = s["Fn::If"]
                if condition != "KmsKeyGiven" or otherwise != {"Ref": "AWS::NoValue"}:
                    problems.append(f"{name}: a conditional statement other than the KMS key's: {condition}")
                via = s.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
                if not via or len(as_list(via)) != 2:
                    problems.append(f"{name}: the KMS key is usable outside DynamoDB and Secrets Manager")
            if s.get("Effect") != "Allow":
                problems.append(f"{name}: a statement that is not Allow: {s}")
            keys = s.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
            got.append((sorted(as_list(s["Action"])), s["Resource"], keys))
        want = [(sorted(a), r, k) for a, r, k in expected]
        for w in want:
            if w not in got:
                problems.append(f"{name}: missing {w}")
        for g in got:
            if g not in want:
                problems.append(f"{name}: grants more than it uses: {g}")
            if any("*" == a or a.endswith(":*") for a in g[0]):
                problems.append(f"{name}: wildcard action {g[0]}")
        logging = props.get("LoggingConfig", {})
        if "LogGroup" not in logging:
            problems.append(f"{name}: logs to no log group of the stack (no retention)")
        alarms = props.get("DeploymentPreference", {}).get("Alarms", [])
        prefix = name.replace("Function", "")
        allowed = {f"{prefix}NewVersionErrorsAlarm", f"{prefix}NewVersionDurationAlarm"}
        refs = {a.get("Ref") for a in alarms}
        if refs != allowed:
            problems.append(f"{name}: a deployment rolls back on {refs}, not only on the new version's health {allowed}")
    for name, r in resources.items():
        if r["Type"] == "AWS::Logs::LogGroup" and "RetentionInDays" not in r.get("Properties", {}):
            problems.append(f"{name}: a log group without retention")
    globals_fn = template.get("Globals", {}).get("Function", {})
    if "AutoPublishAlias" not in globals_fn:
        problems.append("functions publish no alias: no safe deployments")
    access = resources["HttpApi"]["Properties"].get("AccessLogSettings", {})
    fmt = str(access.get("Format", "")).lower()
    if not fmt:
        problems.append("the HTTP API has no access log")
    for secret in ("authorization", "$request.header", "body", "$context.authorizer"):
        if secret in fmt:
            problems.append(f"the access log format carries {secret}")
    # No usable secret is ever deployed (SECURITY.md): the template writes no value, so a stack
    # update never replaces the operator's either.
    secret = resources["Secrets"]["Properties"]
    for prop in ("SecretString", "GenerateSecretString"):
        if prop in secret:
            problems.append(f"the secret has a {prop}: the template must ship no value")
    for alarm_name, metric in (("SecurityAlertsAlarm", "SecurityAlerts"), ("CredentialsRefusedAlarm", "CredentialsRefused")):
        alarm = resources.get(alarm_name, {}).get("Properties", {})
        if alarm.get("MetricName") != metric:
            problems.append(f"no alarm on {metric} (the functions' ERROR lines of that kind)")
    cors = template["Parameters"]["CorsAllowedOrigins"]
    if "Default" in cors:
        problems.append(f"CorsAllowedOrigins has a default ({cors['Default']}): a banking API names its origins")
    pattern = re.compile(cors.get("AllowedPattern", ".*"))
    for origin in ("*", "https://*.example.com", "https://app.example.com/path"):
        if pattern.fullmatch(origin):
            problems.append(f"CorsAllowedOrigins accepts {origin!r}")
    if not pattern.fullmatch("https://app.example.com"):
        problems.append("CorsAllowedOrigins refuses https://app.example.com")
    table = resources["Table"]["Properties"]
    if table.get("DeletionProtectionEnabled") is not True:
        problems.append("the table has no deletion protection")
    if table.get("SSESpecification", {}).get("KMSMasterKeyId") != {"Fn::If": ["KmsKeyGiven", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}:
        problems.append("the table does not use KmsKeyArn when one is given")
    if secret.get("KmsKeyId") != {"Fn::If": ["KmsKeyGiven", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}:
        problems.append("the secret does not use KmsKeyArn when one is given")
    output = template["Outputs"]["StytchJwksUrl"]["Value"]
    if "StytchApiUrl" in str(output) or not all(h in str(output) for h in ("'api.stytch.com'", "'test.stytch.com'", "/v1/sessions/jwks/")):
        problems.append("StytchJwksUrl does not name Stytch's public JWKS (Unit fetches it from the internet)")
    # A browser reads only the response headers CORS exposes: a frontend must see when to retry
    # (429/503) and why a bearer token was refused.
    exposed = {h.lower() for h in resources["HttpApi"]["Properties"].get("CorsConfiguration", {}).get("ExposeHeaders", [])}
    for header in ("retry-after", "www-authenticate"):
        if header not in exposed:
            problems.append(f"the HTTP API's CORS configuration does not expose {header} to browsers")
    return problems


def main():
    template, matches = decode(sys.argv[1])
    if matches:
        print("\n".join(str(m) for m in matches))
        sys.exit(1)
    problems = check(template)
    if problems:
        print("template: " + "\n  ".join(["checks failed:"] + problems))
        sys.exit(1)
    print(f"template: {len(EXPECTED)} function policies exact; log retention, access log, CORS and deployment alarms as promised")


if __name__ == "__main__":
    main()
