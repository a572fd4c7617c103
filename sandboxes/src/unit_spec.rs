//! Unit's official OpenAPI spec as the Unit sandbox's request gate (docs/unit-api.md, "The spec
//! gate"). Every JSON body the sandbox's API receives is validated against the schema of its
//! operation in the vendored spec (`unit-openapi/`, unmodified) with our overlays
//! (`unit-openapi-overlay/`: corrections and the V2 application form); an off-spec body gets
//! the 400 Unit answers, `{"errors": [{..., "source": {"pointer": ...}}]}`.
//!
//! The spec is OpenAPI 3.0, so each operation's schema is converted when loading: every `$ref`
//! (across files) becomes an entry of one document's `$defs`, `nullable: true` becomes a `null`
//! alternative, OpenAPI-only keywords are dropped, an `allOf` closed by a member or by its own
//! schema is closed as a whole (`unevaluatedProperties`), and `oneOf` is read as `anyOf` (the spec's
//! individual and sole-proprietor applications match the same documents, so a `oneOf` would
//! refuse every individual application).

use std::collections::HashMap;

use http::{HeaderMap, Method};
use serde_json::{Map, Value, json};

mod files {
    include!(concat!(env!("OUT_DIR"), "/unit_openapi_files.rs"));
}

/// One way a body is off the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON pointer to the field (`/data/attributes/ssn`).
    pub pointer: String,
    /// What is wrong, without the value.
    pub detail: String,
}

pub struct Operation {
    method: Method,
    /// Path segments, `None` for a parameter.
    segments: Vec<Option<String>>,
    /// A header (lower-case name, value) this schema is selected by.
    header: Option<(String, String)>,
    /// Where the schema came from, for the error detail.
    source: String,
    validator: jsonschema::Validator,
}

/// The compiled request schemas of the operations the sandbox serves.
pub struct Gate {
    operations: Vec<Operation>,
}

fn segments(path: &str) -> Vec<Option<String>> {
    path.trim_matches('/')
        .split('/')
        .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
        .collect()
}

/// `dir/./a/../b.json` -> `dir/b.json`.
fn normalise(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    out.join("/")
}

fn dir_of(file: &str) -> &str {
    file.rsplit_once('/').map_or("", |(d, _)| d)
}

/// Applies one RFC 6902 operation (add, remove, replace, move).
fn apply_patch(doc: &mut Value, op: &Value) -> Result<(), String> {
    let pointer = |k: &str| {
        op[k]
            .as_str()
            .ok_or_else(|| format!("patch without {k}: {op}"))
    };
    let take = |doc: &mut Value, at: &str| -> Result<Value, String> {
        let (parent, key) = at.rsplit_once('/').ok_or("bad pointer")?;
        doc.pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .and_then(|o| o.remove(key))
            .ok_or_else(|| format!("nothing at {at}"))
    };
    let put = |doc: &mut Value, at: &str, v: Value| -> Result<(), String> {
        let (parent, key) = at.rsplit_once('/').ok_or("bad pointer")?;
        let object = doc
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("no object at {parent}"))?;
        object.insert(key.to_owned(), v);
        Ok(())
    };
    match op["op"].as_str() {
        Some("add" | "replace") => put(doc, pointer("path")?, op["value"].clone()),
        Some("remove") => take(doc, pointer("path")?).map(drop),
        Some("move") => {
            let v = take(doc, pointer("from")?)?;
            put(doc, pointer("path")?, v)
        }
        _ => Err(format!("unsupported patch {op}")),
    }
}

/// A converted schema that also takes `null` (OpenAPI's `nullable: true`): `type: [T, "null"]`
/// (and `null` added to an `enum`), or an `anyOf` with `null` when there is no single type.
fn or_null(mut out: Map<String, Value>) -> Value {
    match out.get_mut("type") {
        Some(Value::String(t)) => {
            let t = t.clone();
            out.insert("type".into(), json!([t, "null"]));
            if let Some(Value::Array(values)) = out.get_mut("enum") {
                values.push(Value::Null);
            }
            Value::Object(out)
        }
        _ => json!({ "anyOf": [Value::Object(out), { "type": "null" }] }),
    }
}

/// A schema closed by its own `additionalProperties: false` beside its `allOf`, without
/// properties of its own (`BusinessCustomer`), is closed across the composition, as OpenAPI reads
/// it (per JSON Schema it would refuse every property, none being its own): the keyword is taken
/// off, and true is answered so that the caller closes the composition instead.
fn opened_beside_all_of(out: &mut Map<String, Value>) -> bool {
    let closed_beside = out.contains_key("allOf")
        && !out.contains_key("properties")
        && out.get("additionalProperties") == Some(&Value::Bool(false));
    if closed_beside {
        out.remove("additionalProperties");
    }
    closed_beside
}

/// Turns OpenAPI 3.0 schemas reachable from one root into one JSON Schema document.
struct Bundler<'a> {
    files: &'a HashMap<String, Value>,
    names: HashMap<String, String>,
    defs: Map<String, Value>,
    pending: Vec<(String, String, String)>,
}

impl<'a> Bundler<'a> {
    fn new(files: &'a HashMap<String, Value>) -> Self {
        Self {
            files,
            names: HashMap::new(),
            defs: Map::new(),
            pending: Vec::new(),
        }
    }

    /// Resolves a reference made in `file` to (file, pointer).
    fn locate(file: &str, reference: &str) -> (String, String) {
        let (target, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let target = if target.is_empty() {
            file.to_owned()
        } else {
            normalise(&format!("{}/{target}", dir_of(file)))
        };
        (target, pointer.to_owned())
    }

    fn lookup(&self, file: &str, pointer: &str) -> Result<&'a Value, String> {
        self.files
            .get(file)
            .and_then(|doc| doc.pointer(pointer))
            .ok_or_else(|| format!("unresolved reference {file}#{pointer}"))
    }

    /// The `$defs` name of a reference, queued for conversion on first sight.
    fn def_for(&mut self, file: &str, reference: &str) -> String {
        let (target, pointer) = Self::locate(file, reference);
        let key = format!("{target}#{pointer}");
        if let Some(name) = self.names.get(&key) {
            return name.clone();
        }
        let tail: String = pointer
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let name = format!("{tail}_{}", self.names.len());
        self.names.insert(key, name.clone());
        self.pending.push((target, pointer, name.clone()));
        name
    }

    fn convert(&mut self, schema: &Value, file: &str) -> Value {
        let Some(object) = schema.as_object() else {
            return schema.clone();
        };
        let nullable = object.get("nullable") == Some(&Value::Bool(true));
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            // OpenAPI 3.0 ignores a reference's siblings, except that we honour `nullable`.
            let target = json!({ "$ref": format!("#/$defs/{}", self.def_for(file, reference)) });
            return if nullable {
                json!({ "anyOf": [target, { "type": "null" }] })
            } else {
                target
            };
        }
        let mut out = Map::new();
        let mut closed_composition = false;
        for (key, value) in object {
            let converted = match key.as_str() {
                "nullable" | "discriminator" | "example" | "xml" | "externalDocs"
                | "deprecated" | "readOnly" | "writeOnly" => continue,
                "properties" => Value::Object(
                    value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), self.convert(v, file)))
                        .collect(),
                ),
                "items" | "additionalProperties" | "not" => self.convert(value, file),
                "allOf" => {
                    let (members, closed) = self.composed(value, file);
                    closed_composition |= closed;
                    Value::Array(members)
                }
                "anyOf" | "oneOf" => Value::Array(
                    value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| self.convert(v, file))
                        .collect(),
                ),
                _ => value.clone(),
            };
            let key = if key == "oneOf" {
                "anyOf"
            } else {
                key.as_str()
            };
            out.insert(key.to_owned(), converted);
        }
        let closed_beside = opened_beside_all_of(&mut out);
        if closed_composition || closed_beside {
            out.insert("unevaluatedProperties".into(), Value::Bool(false));
        }
        if nullable {
            or_null(out)
        } else {
            Value::Object(out)
        }
    }

    /// An `allOf`'s members, converted. OpenAPI reads a member's `additionalProperties: false`
    /// across the whole composition (Unit's resources are an `allOf` of the id-and-type schema
    /// and a closed schema of the rest); JSON Schema reads it per member, which refuses every
    /// property a sibling adds. So such a member, inline or the schema a `$ref` names, is taken
    /// without it, and the composition is closed instead (`unevaluatedProperties: false`, which
    /// the second value says).
    fn composed(&mut self, members: &Value, file: &str) -> (Vec<Value>, bool) {
        let mut closed = false;
        let mut out = Vec::new();
        for member in members.as_array().into_iter().flatten() {
            let target = match member.get("$ref").and_then(Value::as_str) {
                None => Some((member.clone(), file.to_owned())),
                Some(r) => {
                    let (f, p) = Self::locate(file, r);
                    self.lookup(&f, &p).ok().map(|t| (t.clone(), f))
                }
            };
            match target {
                Some((Value::Object(mut open), target_file))
                    if open.get("additionalProperties") == Some(&Value::Bool(false)) =>
                {
                    open.remove("additionalProperties");
                    closed = true;
                    out.push(self.convert(&Value::Object(open), &target_file));
                }
                _ => out.push(self.convert(member, file)),
            }
        }
        (out, closed)
    }

    /// The whole document for the schema at `file#pointer`.
    fn bundle(mut self, file: &str, reference: &str) -> Result<Value, String> {
        let root = self.def_for(file, reference);
        while let Some((file, pointer, name)) = self.pending.pop() {
            let schema = self.lookup(&file, &pointer)?;
            let converted = self.convert(schema, &file);
            self.defs.insert(name, converted);
        }
        Ok(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/$defs/{root}"),
            "$defs": self.defs,
        }))
    }
}

fn parse_files() -> Result<(HashMap<String, Value>, Value), String> {
    let mut files = HashMap::new();
    for (name, text) in files::SPEC {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        files.insert((*name).to_owned(), doc);
    }
    let mut overlay = Value::Null;
    for (name, text) in files::OVERLAY {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("overlay {name}: {e}"))?;
        if *name == "patches.json" {
            overlay = doc;
        } else {
            files.insert(format!("overlay/{name}"), doc);
        }
    }
    for (file, ops) in overlay["files"].as_object().into_iter().flatten() {
        let doc = files
            .get_mut(file)
            .ok_or_else(|| format!("overlay patches {file}, which the spec lacks"))?;
        for op in ops.as_array().into_iter().flatten() {
            apply_patch(doc, op).map_err(|e| format!("overlay patch of {file}: {e}"))?;
        }
    }
    Ok((files, overlay))
}

fn compile(document: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(document)
        .map_err(|e| e.to_string())
}

/// Whether `served` (method, path template) has this operation of the spec.
fn serves(served: &[(Method, &str)], method: &Method, path: &str) -> bool {
    served
        .iter()
        .any(|(m, p)| m == method && segments(p) == segments(path))
}

/// Where the spec's path item for `path` lives: its own file and pointer when it is a
/// reference, and the item itself.
fn locate_path_item<'f>(
    files: &'f HashMap<String, Value>,
    path: &str,
    item: &'f Value,
) -> Result<(String, String, &'f Value), String> {
    match item.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let (file, pointer) = Bundler::locate("openapi.json", r);
            let item = files
                .get(&file)
                .and_then(|d| d.pointer(&pointer))
                .ok_or_else(|| format!("unresolved path item {r}"))?;
            Ok((file, pointer, item))
        }
        None => Ok((
            "openapi.json".to_owned(),
            format!("/paths/{}", path.replace('~', "~0").replace('/', "~1")),
            item,
        )),
    }
}

/// The served operations of the spec's `paths` that take a JSON body, compiled.
fn spec_operations(
    files: &HashMap<String, Value>,
    served: &[(Method, &str)],
) -> Result<Vec<Operation>, String> {
    let mut operations = Vec::new();
    for (path, item) in files["openapi.json"]["paths"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let (item_file, item_pointer, item) = locate_path_item(files, path, item)?;
        for (method, op) in item.as_object().into_iter().flatten() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !serves(served, &method, path) {
                continue;
            }
            let content = &op["requestBody"]["content"];
            let Some((media, schema)) = ["application/vnd.api+json", "application/json"]
                .into_iter()
                .find_map(|m| Some((m, content.get(m)?.get("schema")?)))
            else {
                continue;
            };
            let reference = match schema.get("$ref").and_then(Value::as_str) {
                Some(r) => r.to_owned(),
                // An inline schema is bundled through a reference to itself.
                None => format!(
                    "#{item_pointer}/{}/requestBody/content/{}/schema",
                    method.as_str().to_lowercase(),
                    media.replace('/', "~1")
                ),
            };
            let document = Bundler::new(files).bundle(&item_file, &reference)?;
            operations.push(Operation {
                method: method.clone(),
                segments: segments(path),
                header: None,
                source: format!("{method} {path}"),
                validator: compile(&document).map_err(|e| format!("{method} {path}: {e}"))?,
            });
        }
    }
    Ok(operations)
}

/// The served operations the overlay adds (`operations` of `patches.json`), compiled.
fn overlay_operations(
    files: &HashMap<String, Value>,
    overlay: &Value,
    served: &[(Method, &str)],
) -> Result<Vec<Operation>, String> {
    let mut operations = Vec::new();
    for extra in overlay["operations"].as_array().into_iter().flatten() {
        let method: Method = extra["method"]
            .as_str()
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| format!("overlay operation without a method: {extra}"))?;
        let path = extra["path"].as_str().unwrap_or_default();
        if !serves(served, &method, path) {
            continue;
        }
        let header = extra["header"].as_array().and_then(|h| {
            Some((
                h.first()?.as_str()?.to_ascii_lowercase(),
                h.get(1)?.as_str()?.to_owned(),
            ))
        });
        let reference = extra["schema"].as_str().unwrap_or_default();
        let document = Bundler::new(files).bundle("", reference)?;
        operations.push(Operation {
            method: method.clone(),
            segments: segments(path),
            header,
            source: format!("{method} {path} (overlay)"),
            validator: compile(&document).map_err(|e| format!("{method} {path}: {e}"))?,
        });
    }
    Ok(operations)
}

impl Gate {
    /// Compiles the request schema of every operation in `served` (method, path template with
    /// `{param}` segments) that the spec or the overlay describes with a JSON body.
    pub fn load(served: &[(Method, &str)]) -> Result<Self, String> {
        let (files, overlay) = parse_files()?;
        let mut operations = spec_operations(&files, served)?;
        operations.extend(overlay_operations(&files, &overlay, served)?);
        // Header-selected schemas first: they win over the plain operation.
        operations.sort_by_key(|o| o.header.is_none());
        Ok(Self { operations })
    }

    /// The operations gated, as `METHOD /path` (and the header that selects an overlay).
    pub fn operations(&self) -> Vec<String> {
        self.operations.iter().map(|o| o.source.clone()).collect()
    }

    /// The operation whose request schema judges this call (`path` concrete), if the spec
    /// describes a body for it.
    pub fn operation(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<&Operation> {
        let path = segments(path);
        self.operations.iter().find(|o| {
            o.method == method
                && o.segments.len() == path.len()
                && o.segments.iter().zip(&path).all(|(want, got)| match want {
                    None => true,
                    Some(w) => got.as_deref() == Some(w.as_str()),
                })
                && o.header.as_ref().is_none_or(|(name, value)| {
                    headers.get(name).and_then(|v| v.to_str().ok()) == Some(value.as_str())
                })
        })
    }

    /// Checks `body` of a call to `path` (concrete); calls the spec has no body schema for pass.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &Value,
    ) -> Result<(), Vec<Problem>> {
        self.operation(method, path, headers)
            .map_or(Ok(()), |op| op.check(body))
    }
}

impl Operation {
    /// Checks a request body against this operation's schema.
    pub fn check(&self, body: &Value) -> Result<(), Vec<Problem>> {
        problems(&self.validator, &self.source, body)
    }
}

/// Every way `value` is off `validator`'s schema, each detail naming `source`.
fn problems(
    validator: &jsonschema::Validator,
    source: &str,
    value: &Value,
) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    for error in validator.iter_errors(value) {
        collect(&error, &mut problems);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        for p in &mut problems {
            p.detail = format!("{} (Unit's OpenAPI spec, {source})", p.detail);
        }
        Err(problems)
    }
}

/// One schema of the spec (overlay applied), converted as the gate converts request schemas:
/// the contract tests hold the sandbox's answers to the spec's resource schemas with it.
pub struct Schema {
    source: String,
    validator: jsonschema::Validator,
}

impl Schema {
    /// The schema at `reference`: a spec file and a pointer into it, e.g.
    /// `schemas/card/card.json#/components/schemas/IndividualVirtualDebitCard`.
    pub fn load(reference: &str) -> Result<Self, String> {
        let (files, _) = parse_files()?;
        let document = Bundler::new(&files).bundle("", reference)?;
        Ok(Self {
            source: reference.to_owned(),
            validator: compile(&document).map_err(|e| format!("{reference}: {e}"))?,
        })
    }

    /// Checks a value (an answer's resource) against the schema.
    pub fn check(&self, value: &Value) -> Result<(), Vec<Problem>> {
        problems(&self.validator, &self.source, value)
    }
}

/// A failed `anyOf` reports the branch that came nearest: one whose `type` matched, with the
/// fewest problems, so the pointer names the field instead of the whole union.
fn collect(error: &jsonschema::ValidationError<'_>, out: &mut Vec<Problem>) {
    use jsonschema::error::ValidationErrorKind as Kind;
    let at = error.instance_path().to_string();
    match error.kind() {
        Kind::AnyOf { context } if !context.is_empty() => {
            let type_mismatch = |branch: &Vec<jsonschema::ValidationError<'static>>| {
                branch.iter().any(|e| {
                    e.instance_path().to_string() == format!("{at}/type")
                        && matches!(e.kind(), Kind::Enum { .. } | Kind::Constant { .. })
                })
            };
            let best = context
                .iter()
                .min_by_key(|b| (type_mismatch(b), b.len()))
                .expect("not empty");
            for e in best {
                collect(e, out);
            }
        }
        Kind::Required { property } => out.push(Problem {
            pointer: format!("{at}/{}", property.as_str().unwrap_or_default()),
            detail: "is required".into(),
        }),
        Kind::AdditionalProperties { unexpected } | Kind::UnevaluatedProperties { unexpected } => {
            for name in unexpected {
                out.push(Problem {
                    pointer: format!("{at}/{name}"),
                    detail: "is not a known attribute".into(),
                });
            }
        }
        _ => out.push(Problem {
            pointer: at,
            detail: error.masked().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate::load(crate::unit::GATED).expect("the vendored spec loads")
    }

    fn v2() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-accept-version", "V2024_06".parse().unwrap());
        h
    }

    fn application() -> Value {
        json!({"data": {"type": "individualApplication", "attributes": {
            "fullName": {"first": "Ada", "last": "Lovelace"},
            "dateOfBirth": "1990-01-31",
            "address": {"street": "20 Ingram St", "city": "Forest Hills", "state": "NY",
                        "postalCode": "11375", "country": "US"},
            "email": "ada@example.com",
            "phone": {"countryCode": "1", "number": "5555555555"},
            "ssn": "000000003",
            "jwtSubject": "user-test-1",
            "idempotencyKey": "k1",
            "evaluationParams": {"requireIdVerification": false},
            "tags": {"stytchUserId": "user-test-1"}
        }}})
    }

    #[test]
    fn the_gated_operations_are_those_served() {
        let ops = gate().operations();
        assert_eq!(ops.len(), crate::unit::GATED.len() + 1, "{ops:?}");
        assert!(ops.contains(&"POST /application-forms (overlay)".to_owned()));
        assert!(ops.contains(&"PATCH /customers/{customerId}".to_owned()));
    }

    #[test]
    fn an_individual_application_passes_and_its_faults_are_pointed_at() {
        let g = gate();
        let h = HeaderMap::new();
        g.check(&Method::POST, "/applications", &h, &application())
            .expect("on spec (the oneOf overlap read as anyOf, evaluationParams corrected)");

        let mut typo = application();
        let a = typo["data"]["attributes"].as_object_mut().unwrap();
        let subject = a.remove("jwtSubject").unwrap();
        a.insert("jwtSubjet".into(), subject);
        let problems = g
            .check(&Method::POST, "/applications", &h, &typo)
            .unwrap_err();
        assert_eq!(
            problems[0].pointer, "/data/attributes/jwtSubjet",
            "{problems:?}"
        );

        let mut missing = application();
        missing["data"]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("dateOfBirth");
        let problems = g
            .check(&Method::POST, "/applications", &h, &missing)
            .unwrap_err();
        assert_eq!(problems[0].pointer, "/data/attributes/dateOfBirth");

        let mut bad = application();
        bad["data"]["attributes"]["address"]["postalCode"] = json!("1137");
        let problems = g
            .check(&Method::POST, "/applications", &h, &bad)
            .unwrap_err();
        assert_eq!(problems[0].pointer, "/data/attributes/address/postalCode");
        assert!(!problems[0].detail.contains("1137"), "values are masked");
    }

    #[test]
    fn the_v2_form_is_the_overlay_and_needs_its_idempotency_key() {
        let g = gate();
        let form = json!({"data": {"type": "applicationForm", "attributes": {
            "idempotencyKey": "form-user-1", "jwtSubject": "user-1",
            "applicantDetails": {"jwtSubject": "user-1", "email": "a@example.com"},
            "tags": {"stytchUserId": "user-1"}, "allowedApplicationTypes": ["Individual"]}}});
        g.check(&Method::POST, "/application-forms", &v2(), &form)
            .expect("V2 on spec");
        // The V1 schema knows neither the key nor the top-level subject.
        let v1 = g
            .check(
                &Method::POST,
                "/application-forms",
                &HeaderMap::new(),
                &form,
            )
            .unwrap_err();
        assert!(
            v1.iter()
                .any(|p| p.pointer == "/data/attributes/idempotencyKey")
        );
        let mut keyless = form.clone();
        keyless["data"]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("idempotencyKey");
        let problems = g
            .check(&Method::POST, "/application-forms", &v2(), &keyless)
            .unwrap_err();
        assert_eq!(problems[0].pointer, "/data/attributes/idempotencyKey");
    }

    #[test]
    fn an_all_of_is_closed_as_a_whole_not_member_by_member() {
        let g = gate();
        let h = HeaderMap::new();
        // Each has an `allOf` whose member says `additionalProperties: false` (the card's
        // relationships inline, the account's through a `$ref`): read member by member, no
        // relationship at all would pass.
        let card = json!({"data": {"type": "individualVirtualDebitCard", "attributes": {},
            "relationships": {"account": {"data": {"type": "depositAccount", "id": "10002"}}}}});
        g.check(&Method::POST, "/cards", &h, &card)
            .expect("on spec");
        let account = json!({"data": {"type": "depositAccount",
            "attributes": {"depositProduct": "checking"},
            "relationships": {"customer": {"data": {"type": "customer", "id": "10001"}}}}});
        g.check(&Method::POST, "/accounts", &h, &account)
            .expect("on spec");
        let mut stray = card.clone();
        stray["data"]["relationships"]["acount"] = json!({"data": {"type": "account", "id": "1"}});
        let problems = g.check(&Method::POST, "/cards", &h, &stray).unwrap_err();
        assert_eq!(
            problems[0].pointer, "/data/relationships/acount",
            "{problems:?}"
        );

        let schema =
            Schema::load("schemas/card/card.json#/components/schemas/IndividualVirtualDebitCard")
                .unwrap();
        let mut answer = json!({"type": "individualVirtualDebitCard", "id": "10003",
            "attributes": {"createdAt": "2026-01-02T03:04:05.678Z", "last4Digits": "0003",
                "expirationDate": "2030-01", "status": "Active"},
            "relationships": {"account": {"data": {"type": "depositAccount", "id": "10002"}}}});
        schema
            .check(&answer)
            .expect("type and id come from the other member");
        answer["attributes"]["status"] = json!("Paused");
        answer["attributes"]["colour"] = json!("blue");
        answer["extra"] = json!(1);
        let pointers: Vec<String> = schema
            .check(&answer)
            .unwrap_err()
            .into_iter()
            .map(|p| p.pointer)
            .collect();
        for p in ["/attributes/status", "/attributes/colour", "/extra"] {
            assert!(pointers.contains(&p.to_owned()), "{p} in {pointers:?}");
        }
    }

    #[test]
    fn customer_patches_and_tokens_follow_the_spec() {
        let g = gate();
        let h = HeaderMap::new();
        let patch =
            json!({"data": {"type": "individualCustomer", "attributes": {"jwtSubject": "user-1"}}});
        g.check(&Method::PATCH, "/customers/10001", &h, &patch)
            .unwrap();
        let nulled =
            json!({"data": {"type": "individualCustomer", "attributes": {"jwtSubject": null}}});
        g.check(&Method::PATCH, "/customers/10001", &h, &nulled)
            .expect("nullable read as a null alternative");
        let wrong = json!({"data": {"type": "individualCustomer", "attributes": {"jwt_subject": "user-1"}}});
        let problems = g
            .check(&Method::PATCH, "/customers/10001", &h, &wrong)
            .unwrap_err();
        assert_eq!(problems[0].pointer, "/data/attributes/jwt_subject");

        let token = json!({"data": {"type": "customerToken", "attributes": {
            "scope": "customers accounts", "jwtToken": "eyJ", "expiresIn": 900}}});
        g.check(&Method::POST, "/customers/10001/token", &h, &token)
            .unwrap();
        let mut stringly = token.clone();
        stringly["data"]["attributes"]["expiresIn"] = json!("900");
        let problems = g
            .check(&Method::POST, "/customers/10001/token", &h, &stringly)
            .unwrap_err();
        assert_eq!(problems[0].pointer, "/data/attributes/expiresIn");
        // Calls the spec gives no body schema pass untouched.
        g.check(&Method::GET, "/customers/10001", &h, &json!({}))
            .unwrap();
    }
}
