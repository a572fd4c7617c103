"""Checks every exchange the local stack recorded (LOCAL_STACK_RECORD, one JSON line each) against
openapi.yaml with openapi-core: the status is documented for the operation, the headers and the
body validate against its schema, and an error's `code` is one the response lists in
`x-error-codes`. Answers outside the document (unknown paths, other methods) must be our 404/405
errors. Fails unless every operation was seen answering both a success and an error, and prints
what was covered. Usage: check_openapi.py openapi.yaml exchanges.jsonl
"""
import collections
import json
import sys

import yaml
from jsonschema import Draft202012Validator
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse

HOST = "http://127.0.0.1:3000"


def main(spec_path, exchanges_path):
    with open(spec_path) as f:
        raw = yaml.safe_load(f)
    api = OpenAPI.from_dict(raw)
    error_schema = dict(raw["components"]["schemas"]["Error"])
    error_validator = Draft202012Validator(error_schema)

    def response_of(path, method, status):
        r = raw["paths"][path][method]["responses"][str(status)]
        if "$ref" in r:
            r = raw["components"]["responses"][r["$ref"].rsplit("/", 1)[1]]
        return r

    def template_of(path, method):
        for template in raw["paths"]:
            if template == path and method in raw["paths"][template]:
                return template
        return None

    seen = collections.defaultdict(collections.Counter)  # operation -> status counter
    codes_seen = collections.Counter()
    failures = []
    total = outside = 0
    with open(exchanges_path) as f:
        for n, line in enumerate(f, 1):
            x = json.loads(line)
            total += 1
            method = x["method"].lower()
            path = x["path"].rstrip("/") or "/"
            headers = x["headers"]
            body = x["body"]
            where = f"line {n}: {x['method']} {x['path']} -> {x['status']}"
            try:
                data = json.loads(body) if body else None
            except ValueError:
                failures.append(f"{where}: the body is not JSON: {body[:200]!r}")
                continue
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                codes_seen[(x["status"], data["error"].get("code"))] += 1
            template = template_of(path, method)
            if template is None:
                outside += 1
                expected = {404: "not_found", 405: "method_not_allowed"}.get(x["status"])
                errors = list(error_validator.iter_errors(data))
                code = (data or {}).get("error", {}).get("code") if isinstance(data, dict) else None
                if expected is None or code != expected or errors:
                    failures.append(f"{where}: outside the document, yet not our 404/405 error: {body[:200]}")
                if x["status"] == 405 and "allow" not in {k.lower() for k in headers}:
                    failures.append(f"{where}: 405 without an Allow header")
                continue
            request = MockRequest(HOST, method, path, content_type=x.get("request_content_type") or "application/json")
            response = MockResponse(
                body.encode(),
                status_code=x["status"],
                headers=headers,
                content_type=headers.get("content-type", ""),
            )
            try:
                api.validate_response(request, response)
            except (PathNotFound, OperationNotFound) as e:
                failures.append(f"{where}: {e}")
                continue
            except Exception as e:  # the validation error, with the schema errors inside
                detail = "; ".join(str(c) for c in getattr(e, "__cause__", None) and getattr(e.__cause__, "schema_errors", []) or [])
                failures.append(f"{where}: {type(e).__name__}: {str(e)[:600]} {detail[:600]} body={body[:300]}")
                continue
            seen[(method.upper(), template)][x["status"]] += 1
            if x["status"] >= 400:
                documented = response_of(template, method, x["status"])["content"]["application/json"].get("x-error-codes", [])
                code = data["error"]["code"]
                if code not in documented:
                    failures.append(f"{where}: error code {code!r} is not among {documented}")

    print(f"openapi: {total} exchanges checked ({outside} outside the document: unknown paths, other methods)")
    for (method, template), statuses in sorted(seen.items(), key=lambda kv: kv[0][1]):
        print(f"  {method:4} {template:28} " + ", ".join(f"{s}x{c}" for s, c in sorted(statuses.items())))
    for template, ops in raw["paths"].items():
        for method in ops:
            statuses = seen.get((method.upper(), template), {})
            if not any(s < 400 for s in statuses):
                failures.append(f"no success of {method.upper()} {template} was recorded")
            if not any(s >= 400 for s in statuses):
                failures.append(f"no error of {method.upper()} {template} was recorded")
    documented = set()
    for r in raw["components"]["responses"].values():
        for media in r.get("content", {}).values():
            documented.update(media.get("x-error-codes", []))
    observed = {code for (_, code) in codes_seen}
    print(f"  error codes seen: {len(observed & documented)} of {len(documented)} documented: "
          + ", ".join(sorted(f"{c} ({s})" for (s, c) in codes_seen)))
    print("  documented, not produced by the suite: " + (", ".join(sorted(documented - observed)) or "none"))
    if failures:
        print(f"openapi: {len(failures)} problems", file=sys.stderr)
        for f in failures[:50]:
            print("  " + f, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(*sys.argv[1:])
