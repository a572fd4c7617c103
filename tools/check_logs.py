"""Scans every log line the end-to-end suites and the browser test emitted for secrets. The secrets
are the ones that crossed our routes, taken from the local stack's recorded exchanges
(LOCAL_STACK_RECORD): bearer session JWTs (hostile ones included), session tokens, TOTP secrets,
TOTP and recovery codes, customer tokens and SSNs or passport numbers sent in applications; plus
the shapes no log line may hold whatever their origin: JWTs, Svix webhook secrets, Stytch project
secrets and Unit API tokens. Fails on any hit, naming the secret's kind and the line.
Usage: check_logs.py exchanges.jsonl log-file...
"""
import json
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SHAPES = {
    "a JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    "a Svix webhook secret": re.compile(r"whsec_[A-Za-z0-9+/=]{16,}"),
    "a Stytch project secret": re.compile(r"secret-(test|live)-[A-Za-z0-9_=-]{6,}"),
    "a Unit API token": re.compile(r"v2\.public\.[A-Za-z0-9._-]{6,}"),
}


def harvest(exchanges_path):
    """(secret, kind) pairs from every recorded exchange."""
    found = {}

    def add(value, kind, minimum=6):
        if isinstance(value, str) and len(value) >= minimum and value.strip() == value:
            found.setdefault(value, kind)

    with open(exchanges_path) as f:
        for line in f:
            x = json.loads(line)
            auth = x.get("request_authorization") or ""
            if auth.lower().startswith("bearer "):
                add(auth[7:], "a bearer session JWT", 16)
            for side, keys in (
                ("request_body", {"ssn": "an SSN", "passport": "a passport number", "totp_code": "a TOTP code",
                                  "recovery_code": "a recovery code"}),
                ("body", {"session_jwt": "a session JWT", "session_token": "a session token",
                          "secret": "a TOTP secret", "token": "a customer token"}),
            ):
                try:
                    data = json.loads(x.get(side) or "null")
                except (ValueError, RecursionError):  # the hostile suites send such bodies
                    continue
                if not isinstance(data, dict):
                    continue
                for key, kind in keys.items():
                    add(data.get(key), kind)
                if side == "body":
                    for code in data.get("recovery_codes") or []:
                        add(code, "a recovery code")
    return found


# Fields the code logs as integers (a request's duration in microseconds, an HTTP status, a
# delay): in the compact text format they print as `micros=123456`, which is no secret.
NUMERIC_FIELDS = re.compile(r"\b(micros|status|delay_ms|keys|total|leeway)=[0-9]+\b")


def numeric_scope(line):
    """The parts of a log line where a numeric secret (a TOTP code, an SSN) could have leaked.
    Every such secret crosses our routes as a JSON string, so a leak prints it as a string or
    inside one. A JSON record's number values (a request taking 0.2 s logs `"micros":201733`)
    are left out, as are the integer fields of the text format; a six-digit duration once
    collided with one of a run's 46 TOTP codes and failed a green run."""
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return [line]
        parts = []

        def walk(value):
            if isinstance(value, str):
                parts.append(value)
            elif isinstance(value, dict):
                for key, item in value.items():
                    parts.append(key)
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(record)
        return parts
    return [NUMERIC_FIELDS.sub(lambda m: m.group(1) + "=_", line)]


def self_test():
    """The scope keeps what a leak looks like and drops what a duration looks like."""
    assert numeric_scope('{"fields":{"micros":123456,"message":"handled"}}') == ["fields", "micros", "message", "handled"]
    assert "123456" in " ".join(numeric_scope('{"fields":{"code":"123456"}}'))
    assert "123456" in " ".join(numeric_scope('{"fields":{"body":"{\\"totp_code\\":\\"123456\\"}"}}'))
    assert "123456" not in numeric_scope("2026-12-05T00:00:00Z  INFO handled micros=123456 status=200")[0]
    assert "123456" in numeric_scope("2026-12-05T00:00:00Z  INFO sent code=123456")[0]
    assert "123456" in numeric_scope("{not json 123456")[0]


def main(exchanges_path, *log_paths):
    self_test()
    secrets = harvest(exchanges_path)
    numeric = {s: k for s, k in secrets.items() if s.isdigit()}
    textual = {s: k for s, k in secrets.items() if not s.isdigit()}
    # A numeric secret counts as a whole token: digits inside a longer word (a random hex
    # request id such as local-1e2014de8a123456) are not a code.
    digits = re.compile(r"(?<![0-9A-Za-z])(" + "|".join(map(re.escape, sorted(numeric))) + r")(?![0-9A-Za-z])") if numeric else None
    lines = []
    for path in log_paths:
        with open(path, errors="replace") as f:
            for n, raw in enumerate(f, 1):
                line = ANSI.sub("", raw.rstrip("\n"))
                # The local runner's start-up banner prints its generated local credentials on
                # purpose; only log records (JSON, or the compact text format's level) count.
                if line.startswith("{") or re.match(r"^\S+\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s", line):
                    lines.append((path, n, line))
    text = "\n".join(line for _, _, line in lines)
    hits = []
    for secret, kind in textual.items():
        if secret in text:
            where = next(f"{p}:{n}" for p, n, line in lines if secret in line)
            hits.append(f"{kind} ({secret[:12]}...) at {where}")
    if digits:
        for p, n, line in lines:
            for text_part in numeric_scope(line):
                for m in digits.finditer(text_part):
                    hits.append(f"{numeric[m.group(1)]} at {p}:{n}")
    for kind, shape in SHAPES.items():
        for p, n, line in lines:
            m = shape.search(line)
            if m:
                hits.append(f"{kind} ({m.group(0)[:16]}...) at {p}:{n}")
    kinds = {}
    for kind in secrets.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"logs: {len(lines)} log lines from {len(log_paths)} files scanned for {len(secrets)} secrets ("
          + ", ".join(f"{n} x {k}" for k, n in sorted(kinds.items())) + f") and {len(SHAPES)} secret shapes")
    if hits:
        print(f"logs: {len(hits)} secrets found in the logs", file=sys.stderr)
        for h in hits[:40]:
            print("  " + h, file=sys.stderr)
        sys.exit(1)
    if not lines:
        print("logs: no log lines were captured (is E2E_LOG_FILE set?)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(*sys.argv[1:])
