//! A small typed client of the Unit endpoints we use (docs/unit-api.md; there is no official Rust SDK):
//! application forms, applications, customers and customer tokens, over JSON:API.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::domain::{
    AccountId, ApplicationId, ApplicationStatus, CardId, CustomerId, FormId, UserId,
};
use crate::secrets::{SecretError, SecretSource, SecretString};
use crate::stytch::path_segment;
use crate::upstream::{Call, Retry, TransportError, Upstream};

/// JSON:API media type Unit speaks.
pub const JSON_API: &str = "application/vnd.api+json";

/// One element of Unit's `{"errors": [...]}` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct UnitErrorItem {
    /// HTTP status as a string.
    pub status: String,
    /// Short title.
    pub title: String,
    /// snake_case code, when Unit sends one.
    pub code: Option<String>,
    /// Detail text.
    pub detail: Option<String>,
    /// `{"pointer": "/data/attributes/..."}` of a validation error.
    pub source: Option<serde_json::Value>,
}

impl UnitErrorItem {
    /// The JSON pointer of the attribute at fault, if given.
    pub fn source_pointer(&self) -> Option<&str> {
        self.source.as_ref()?.get("pointer")?.as_str()
    }
}

/// A Unit API failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Unit answered with its error body.
    #[error("Unit {status}: {}", errors.first().map(|e| e.title.as_str()).unwrap_or("error"))]
    Api {
        /// HTTP status.
        status: u16,
        /// Unit's errors, in order.
        errors: Vec<UnitErrorItem>,
        /// `Retry-After` seconds, if sent.
        retry_after: Option<u64>,
    },
    /// No usable answer.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The org token could not be read, so nothing was sent.
    #[error(transparent)]
    Secrets(#[from] SecretError),
}

impl UnitError {
    /// Whether Unit surely did not act on the request: its 5xx or 429, or a request never sent.
    /// A refusal was acted on (it was checked), and a timeout or a dropped connection may have
    /// been: their outcome is unknown.
    pub fn surely_not_acted_on(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status >= 500 || *status == 429,
            Self::Secrets(_) => true,
            Self::Transport(_) => false,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<UnitErrorItem>,
}

/// A JSON:API relationship to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Relationship {
    pub data: Option<ResourceId>,
}

/// `{type, id}` of a related resource.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ResourceId {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// A JSON:API resource object whose id is an `Id` (parsed as it is decoded).
#[derive(Debug, Clone, Deserialize)]
pub struct Resource<Id, A> {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Id,
    pub attributes: A,
    #[serde(default)]
    pub relationships: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub links: BTreeMap<String, serde_json::Value>,
}

impl<Id, A> Resource<Id, A> {
    /// The id of a to-one relationship (`relationships.<name>.data.id`).
    pub fn related_id(&self, name: &str) -> Option<&str> {
        self.relationships
            .get(name)?
            .get("data")?
            .get("id")?
            .as_str()
    }

    /// The ids of a relationship, to-one (`data: {id}`) or to-many (`data: [{id}, ...]`).
    pub fn related_ids(&self, name: &str) -> Vec<String> {
        let data = self.relationships.get(name).and_then(|r| r.get("data"));
        let id = |d: &serde_json::Value| d.get("id")?.as_str().map(str::to_owned);
        match data {
            Some(serde_json::Value::Array(list)) => list.iter().filter_map(id).collect(),
            Some(one) => id(one).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The id of a to-one relationship as the domain's identity `T`; `None` when there is none
    /// or it is not one.
    pub fn related<T: TryFrom<String>>(&self, name: &str) -> Option<T> {
        self.related_id(name)
            .and_then(|id| T::try_from(id.to_owned()).ok())
    }
}

#[derive(Deserialize)]
struct Document<T> {
    data: T,
}

/// `{countryCode, number}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phone {
    pub country_code: String,
    pub number: String,
}

/// `{first, last}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FullName {
    pub first: String,
    pub last: String,
}

/// A US address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub street: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub street2: Option<String>,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub country: String,
}

/// Attributes of an application (individual or otherwise; we read only these).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApplicationAttributes {
    pub status: ApplicationStatus,
    pub jwt_subject: Option<String>,
    pub created_at: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// An application resource; `related_id("customer")` is set once approved.
pub type Application = Resource<ApplicationId, ApplicationAttributes>;

/// Prefill of an application form (V1 `applicantDetails`, the shape of Unit's OpenAPI spec).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicantDetails {
    /// The Stytch `user_id`: Unit copies the prefill's `jwtSubject` onto the application and the
    /// customer the form creates, and matches it against the JWT `sub` at the token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<FullName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
}

/// `POST /application-forms` attributes of a white-label (V2) form: the current form API (V1 was
/// sunset on 2025-02-18), and the one that takes an `idempotencyKey`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateApplicationForm {
    /// Unit creates at most one form per key.
    pub idempotency_key: String,
    /// The Stytch `user_id` as the subject of the JWT that may open the embedded form (Unit's
    /// SDK: "JWT subject for embedding via JWT token"); the customer's own subject is the
    /// prefill's `applicantDetails.jwtSubject` (docs/unit-api.md §3).
    pub jwt_subject: String,
    pub applicant_details: ApplicantDetails,
    pub tags: BTreeMap<String, String>,
    pub allowed_application_types: Vec<String>,
}

/// Attributes of a white-label (V2) application form that we read: its tags. The link is in
/// `links.related.href`; V1's `attributes.url` (sunset since 2025-02-18) is not read: every form
/// we create or read goes through the V2 API (`FORM_API_VERSION`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApplicationFormAttributes {
    pub tags: BTreeMap<String, String>,
}

/// An application form; `related_id("application")` once the applicant submitted it.
pub type ApplicationForm = Resource<FormId, ApplicationFormAttributes>;

impl ApplicationForm {
    /// The link to send the applicant to: `links.related.href`.
    pub fn link(&self) -> Option<&str> {
        self.links
            .get("related")
            .and_then(|r| r.get("href"))
            .and_then(|h| h.as_str())
    }
}

/// The header selecting the white-label (V2) application form API.
pub const FORM_API_VERSION: (&str, &str) = ("x-accept-version", "V2024_06");

/// `POST /applications` attributes of an individual application.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateIndividualApplication {
    pub full_name: FullName,
    pub date_of_birth: String,
    pub address: Address,
    pub email: String,
    pub phone: Phone,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssn: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passport: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occupation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annual_income: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_of_income: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub tags: BTreeMap<String, String>,
    /// Always set by us from the verified JWT, never from client input.
    pub jwt_subject: String,
    /// Unit performs the create at most once per key (48 h).
    pub idempotency_key: String,
}

/// Attributes of a customer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomerAttributes {
    /// `Active` or `Archived`.
    pub status: String,
    /// Why Unit archived it (one of the spec's reasons); for the log only.
    pub archive_reason: Option<String>,
    pub jwt_subject: Option<String>,
    pub email: Option<String>,
    pub phone: Option<Phone>,
}

/// A customer resource.
pub type Customer = Resource<CustomerId, CustomerAttributes>;

/// One entry of a customer token's `resources` (`{"type": "card", "ids": [...]}`): narrows the
/// token to some cards, or to some accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenResource {
    /// `type: card`.
    Cards(Vec<CardId>),
    /// `type: account`.
    Accounts(Vec<AccountId>),
}

impl TokenResource {
    /// Unit's `type`: `card` or `account`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Cards(_) => "card",
            Self::Accounts(_) => "account",
        }
    }

    /// The ids, as Unit writes them.
    pub fn ids(&self) -> Vec<&str> {
        match self {
            Self::Cards(ids) => ids.iter().map(|i| i.as_str()).collect(),
            Self::Accounts(ids) => ids.iter().map(|i| i.as_str()).collect(),
        }
    }
}

impl Serialize for TokenResource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({"type": self.kind(), "ids": self.ids()}).serialize(s)
    }
}

/// The attributes of a card the bridge reads (Unit's card resources carry many more).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardAttributes {
    /// `Active`, `Inactive`, `Stolen`, `Lost`, `Frozen`, `ClosedByCustomer`, `SuspectedFraud`.
    #[serde(default)]
    pub status: Option<String>,
}

/// A card resource (any of Unit's card types); `relationships.customer` names its customer.
pub type Card = Resource<CardId, CardAttributes>;

/// An account resource (its attributes are not read); `relationships.customer`, or
/// `relationships.customers` for a joint account, names its owners.
pub type Account = Resource<AccountId, serde::de::IgnoredAny>;

/// `POST /customers/{id}/token` attributes (the JWT route).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCustomerToken {
    /// Space-separated scopes.
    pub scope: String,
    /// The caller's Stytch session JWT.
    pub jwt_token: SecretString,
    /// Seconds, 1..=86400.
    pub expires_in: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<TokenResource>>,
    /// Scopes Unit's components may upgrade the token to with Unit's own SMS code (the
    /// `scope` must then hold `customer-token-write`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgradable_scope: Option<String>,
}

/// A customer bearer token.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerTokenAttributes {
    pub token: SecretString,
    #[serde(default)]
    pub expires_in: Option<u32>,
}

#[derive(Deserialize)]
struct CustomerTokenData {
    attributes: CustomerTokenAttributes,
}

/// The Unit client: Bearer with the current org token (read from the secrets source on each
/// call, so a rotation needs no restart), on one shared connection pool.
#[derive(Clone)]
pub struct UnitClient {
    upstream: Upstream,
    secrets: Arc<dyn SecretSource>,
}

impl UnitClient {
    /// A client over `upstream`, its org token from `secrets`.
    pub fn new(upstream: Upstream, secrets: Arc<dyn SecretSource>) -> Self {
        Self { upstream, secrets }
    }

    fn headers(token: &SecretString) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_API));
        headers.insert(header::ACCEPT, HeaderValue::from_static(JSON_API));
        if let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.expose())) {
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        headers
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        retry: Retry,
        deadline: Instant,
    ) -> Result<T, UnitError> {
        let secrets = self.secrets.current().await?;
        let mut headers = Self::headers(&secrets.unit_api_token);
        if path.starts_with("/application-forms") {
            headers.insert(
                FORM_API_VERSION.0,
                HeaderValue::from_static(FORM_API_VERSION.1),
            );
        }
        let response = self
            .upstream
            .send(Call {
                method,
                path,
                headers,
                body,
                retry,
                deadline,
            })
            .await?;
        let status = response.status.as_u16();
        let decode_error = |message: String| TransportError::Decode {
            service: "unit",
            status,
            message,
        };
        if response.status.is_success() {
            let doc: Document<T> =
                serde_json::from_slice(&response.body).map_err(|e| decode_error(e.to_string()))?;
            return Ok(doc.data);
        }
        // A refusal keeps its status whatever its body: a proxy's HTML page or an empty 429
        // is still that status, with no error items to read.
        let errors = serde_json::from_slice::<ErrorBody>(&response.body)
            .map(|b| b.errors)
            .unwrap_or_default();
        Err(UnitError::Api {
            status,
            errors,
            retry_after: response.retry_after(),
        })
    }

    /// A JSON:API request document, serialised straight from `attributes`.
    fn document(kind: &str, attributes: impl Serialize) -> Bytes {
        #[derive(Serialize)]
        struct Data<'a, A> {
            #[serde(rename = "type")]
            kind: &'a str,
            attributes: A,
        }
        #[derive(Serialize)]
        struct Outgoing<'a, A> {
            data: Data<'a, A>,
        }
        let document = Outgoing {
            data: Data { kind, attributes },
        };
        // Our request types have string keys only, so this cannot fail (as `json!` could not).
        Bytes::from(serde_json::to_vec(&document).expect("a request document serialises"))
    }

    /// `POST /application-forms` (white-label V2, `X-Accept-Version: V2024_06`). Its
    /// idempotency key makes retries safe: a replay returns the same form.
    pub async fn create_application_form(
        &self,
        form: &CreateApplicationForm,
        deadline: Instant,
    ) -> Result<ApplicationForm, UnitError> {
        let body = Self::document("applicationForm", form);
        self.call(
            Method::POST,
            "/application-forms",
            Some(body),
            Retry::Safe,
            deadline,
        )
        .await
    }

    /// `GET /application-forms/{id}` (answers a fresh link).
    pub async fn get_application_form(
        &self,
        id: &FormId,
        deadline: Instant,
    ) -> Result<ApplicationForm, UnitError> {
        let path = format!("/application-forms/{}", path_segment(id));
        self.call(Method::GET, &path, None, Retry::Safe, deadline)
            .await
    }

    /// `POST /applications` for an individual. Unit documents up to 120 s for it (the KYC runs inside), so each
    /// attempt may take `attempt_timeout`; a timed-out attempt is never retried: it may still
    /// be running at Unit, and its outcome arrives by webhook or by tag
    /// ([`Self::applications_tagged`]).
    pub async fn create_individual_application(
        &self,
        application: &CreateIndividualApplication,
        attempt_timeout: std::time::Duration,
        deadline: Instant,
    ) -> Result<Application, UnitError> {
        let body = Self::document("individualApplication", application);
        let retry = if application.idempotency_key.is_empty() {
            Retry::OnlyUnsent
        } else {
            Retry::Slow(attempt_timeout)
        };
        self.call(Method::POST, "/applications", Some(body), retry, deadline)
            .await
    }

    /// `GET /applications?filter[tags]=...`: the applications carrying every one of `tags`,
    /// newest first (at most 100). The filter is written as the official Node SDK writes it
    /// (`{"key":"value", ...}`).
    pub async fn applications_tagged(
        &self,
        tags: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<Vec<Application>, UnitError> {
        let filter = serde_json::to_string(
            &tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        )
        .expect("a map of strings serialises");
        let path = format!(
            "/applications?filter[tags]={}&sort=-createdAt&page[limit]=100",
            percent_encoding::utf8_percent_encode(&filter, percent_encoding::NON_ALPHANUMERIC)
        );
        self.call(Method::GET, &path, None, Retry::Safe, deadline)
            .await
    }

    /// `GET /applications/{id}`.
    pub async fn get_application(
        &self,
        id: &ApplicationId,
        deadline: Instant,
    ) -> Result<Application, UnitError> {
        let path = format!("/applications/{}", path_segment(id));
        self.call(Method::GET, &path, None, Retry::Safe, deadline)
            .await
    }

    /// `GET /customers/{id}`.
    pub async fn get_customer(
        &self,
        id: &CustomerId,
        deadline: Instant,
    ) -> Result<Customer, UnitError> {
        let path = format!("/customers/{}", path_segment(id));
        self.call(Method::GET, &path, None, Retry::Safe, deadline)
            .await
    }

    /// `GET /cards/{id}` with the org token.
    pub async fn get_card(&self, id: &CardId, deadline: Instant) -> Result<Card, UnitError> {
        let path = format!("/cards/{}", path_segment(id));
        self.call(Method::GET, &path, None, Retry::Safe, deadline)
            .await
    }

    /// `GET /accounts/{id}` with the org token.
    pub async fn get_account(
        &self,
        id: &AccountId,
        deadline: Instant,
    ) -> Result<Account, UnitError> {
        let path = format!("/accounts/{}", path_segment(id));
        self.call(Method::GET, &path, None, Retry::Safe, deadline)
            .await
    }

    /// `PATCH /customers/{id}` setting `jwtSubject` (binds an existing customer; idempotent).
    pub async fn set_customer_jwt_subject(
        &self,
        id: &CustomerId,
        jwt_subject: &UserId,
        deadline: Instant,
    ) -> Result<Customer, UnitError> {
        let path = format!("/customers/{}", path_segment(id));
        let body = Self::document(
            "individualCustomer",
            serde_json::json!({ "jwtSubject": jwt_subject }),
        );
        self.call(Method::PATCH, &path, Some(body), Retry::Safe, deadline)
            .await
    }

    /// `POST /customers/{id}/token` with the caller's JWT. Minting a second token on a retry is
    /// harmless (both expire), so 429/5xx/timeouts are retried.
    pub async fn create_customer_token(
        &self,
        customer_id: &CustomerId,
        request: &CreateCustomerToken,
        deadline: Instant,
    ) -> Result<CustomerTokenAttributes, UnitError> {
        let path = format!("/customers/{}/token", path_segment(customer_id));
        let body = Self::document("customerToken", request);
        let data: CustomerTokenData = self
            .call(Method::POST, &path, Some(body), Retry::Safe, deadline)
            .await?;
        Ok(data.attributes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{RetryPolicy, http_client};
    use std::time::Duration;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn client(server: &MockServer) -> UnitClient {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::new(3, Duration::from_secs(2))
        };
        UnitClient::new(
            Upstream::new(
                "unit",
                http_client(Duration::from_secs(1)),
                &server.uri(),
                policy,
            ),
            crate::secrets::test_source("secret-test-1", "v2.public.org"),
        )
    }

    fn soon() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(30)
    }

    #[tokio::test]
    async fn a_customer_token_is_requested_in_json_api_with_the_jwt() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/customers/10000/token"))
            .and(header("authorization", "Bearer v2.public.org"))
            .and(header("content-type", JSON_API))
            .and(body_json(serde_json::json!({"data": {"type": "customerToken", "attributes": {
                "scope": "customers accounts", "jwtToken": "eyJ.x.y", "expiresIn": 3600}}})))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
                "data": {"type": "customerBearerToken", "attributes": {"token": "v2.public.cust", "expiresIn": 3600}}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let request = CreateCustomerToken {
            scope: "customers accounts".into(),
            jwt_token: SecretString::new("eyJ.x.y"),
            expires_in: 3600,
            resources: None,
            upgradable_scope: None,
        };
        let t = client(&server)
            .create_customer_token(&"10000".parse().unwrap(), &request, soon())
            .await
            .unwrap();
        assert_eq!(
            (t.token.expose(), t.expires_in),
            ("v2.public.cust", Some(3600))
        );
    }

    #[tokio::test]
    async fn unit_errors_are_typed_and_4xx_are_not_retried() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/applications/53"))
            .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
                "errors": [{"status": "404", "title": "Not Found", "code": "not_found", "detail": "Application 53 not found"}]
            })))
            .expect(1)
            .mount(&server)
            .await;
        match client(&server)
            .get_application(&"53".parse().unwrap(), soon())
            .await
            .unwrap_err()
        {
            UnitError::Api { status, errors, .. } => {
                assert_eq!(status, 404);
                assert_eq!(errors[0].code.as_deref(), Some("not_found"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_application_reads_its_customer_and_a_keyed_create_is_retried() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/applications"))
            .respond_with(ResponseTemplate::new(503).set_body_json(
                serde_json::json!({"errors": [{"status": "503", "title": "Unavailable"}]}),
            ))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST")).and(path("/applications"))
            .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({"data": {
                "type": "individualApplication", "id": "53",
                "attributes": {"status": "Approved", "jwtSubject": "user-test-1", "createdAt": "2020-01-14T14:05:04.718Z"},
                "relationships": {"customer": {"data": {"type": "individualCustomer", "id": "10000"}}}}})))
            .mount(&server).await;
        let application = CreateIndividualApplication {
            jwt_subject: "user-test-1".into(),
            idempotency_key: "stytch-user-test-1".into(),
            ssn: Some(SecretString::new("721074426")),
            ..Default::default()
        };
        let a = client(&server)
            .create_individual_application(&application, Duration::from_secs(2), soon())
            .await
            .unwrap();
        assert_eq!(
            (a.id.as_str(), a.attributes.status.as_str()),
            ("53", "Approved")
        );
        assert_eq!(a.related_id("customer"), Some("10000"));
        assert_eq!(server.received_requests().await.unwrap().len(), 2);
        let sent: serde_json::Value = server.received_requests().await.unwrap()[0]
            .body_json()
            .unwrap();
        assert_eq!(
            sent["data"]["attributes"]["idempotencyKey"],
            "stytch-user-test-1"
        );
        assert_eq!(sent["data"]["attributes"]["jwtSubject"], "user-test-1");
    }
}
