//! The domain's named values: identities and Unit scopes are parsed once, where they enter (a
//! JWT, a request body, a Unit answer, a store item, a setting), and carried as these types; an
//! invalid one cannot be built. On the wire and in the store they keep their plain strings.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// A value that does not parse: what it should have been.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not {0}")]
pub struct Invalid(pub &'static str);

/// A string identity with a format: parsed by [`$name::parse`], read as `&str` (`Deref`),
/// (de)serialised as its string.
macro_rules! identity {
    ($(#[$doc:meta])* $name:ident, $what:literal, $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// What a valid one is, for error messages.
            pub const WHAT: &'static str = $what;

            /// Parses `text`.
            pub fn parse(text: impl Into<String>) -> Result<Self, Invalid> {
                let text = text.into();
                let valid: fn(&str) -> bool = $valid;
                if valid(&text) {
                    Ok(Self(text))
                } else {
                    Err(Invalid($what))
                }
            }

            /// The string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = Invalid;
            fn from_str(text: &str) -> Result<Self, Invalid> {
                Self::parse(text)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Invalid;
            fn try_from(text: String) -> Result<Self, Invalid> {
                Self::parse(text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

/// A Stytch user id: `user-` and then letters, digits and `-` (Stytch's are
/// `user-test-<uuid>` and `user-live-<uuid>`), at most 128 bytes.
fn is_user_id(text: &str) -> bool {
    text.len() <= 128
        && text.strip_prefix("user-").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A Unit resource id: a positive decimal number without leading zeros (Unit's ids are
/// numeric strings), at most 20 digits.
fn is_unit_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 20
        && !text.starts_with('0')
        && text.bytes().all(|b| b.is_ascii_digit())
}

identity!(
    /// A Stytch user id: the session JWT's `sub`, and the `jwtSubject` Unit binds a customer to.
    UserId,
    "a Stytch user id (user-test-... or user-live-...)",
    is_user_id
);
identity!(
    /// A Unit customer id.
    CustomerId,
    "a Unit customer id (a decimal number)",
    is_unit_id
);
identity!(
    /// A Unit application id.
    ApplicationId,
    "a Unit application id (a decimal number)",
    is_unit_id
);
identity!(
    /// A Unit application form id.
    FormId,
    "a Unit application form id (a decimal number)",
    is_unit_id
);
identity!(
    /// A Unit card id (a customer token may be limited to some).
    CardId,
    "a Unit card id (a decimal number)",
    is_unit_id
);

identity!(
    /// A Unit deposit account id (a customer token may be limited to some).
    AccountId,
    "a Unit account id (a decimal number)",
    is_unit_id
);

identity!(
    /// A Unit scope name: lower-case words joined by `-` (`cards-write`), at most 64 bytes.
    Scope,
    "a Unit scope name (lower-case words joined by -)",
    |text| {
        text.len() <= 64
            && text.split('-').all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
    }
);

/// A set of Unit scopes, written as Unit writes them: space-separated, each once. Held as a
/// sorted list without repeats (a set of a few names: a B-tree would allocate a node for 11 of
/// them, and every audit entry holds one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Parses space-separated scope names (runs of spaces, leading and trailing ones allowed).
    /// The error names the first invalid name.
    pub fn parse(text: &str) -> Result<Self, (String, Invalid)> {
        text.split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| Scope::parse(s).map_err(|e| (s.to_owned(), e)))
            .collect::<Result<_, _>>()
    }

    /// Whether the set has `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.binary_search_by(|s| s.as_str().cmp(scope)).is_ok()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// The scopes that are not in `other`, in order.
    pub fn outside<'a>(&'a self, other: &'a Scopes) -> impl Iterator<Item = &'a Scope> {
        self.0.iter().filter(|s| !other.contains(s))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut scopes: Vec<Scope> = iter.into_iter().collect();
        scopes.sort_unstable();
        scopes.dedup();
        scopes.shrink_to_fit();
        Self(scopes)
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl TryFrom<String> for Scopes {
    type Error = Invalid;
    fn try_from(text: String) -> Result<Self, Invalid> {
        Self::parse(&text).map_err(|(_, e)| e)
    }
}

impl From<Scopes> for String {
    fn from(scopes: Scopes) -> String {
        scopes.to_string()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
        }
        Ok(())
    }
}

/// A Unit application's status: `data.attributes.status` of an application, and what the
/// `application.*` webhook events report. Stored as Unit spells it (`PendingReview`, ...), so the
/// items in DynamoDB carry Unit's own strings; a status Unit adds later is kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ApplicationStatus {
    /// Created, being evaluated.
    Pending,
    /// Held for a manual review at Unit.
    PendingReview,
    /// Unit needs documents from the applicant.
    AwaitingDocuments,
    /// Approved: a customer exists.
    Approved,
    /// Denied.
    Denied,
    /// Canceled.
    Canceled,
    /// A status this code does not know, as Unit sent it.
    Other(String),
}

impl ApplicationStatus {
    /// The status of Unit's string.
    pub fn parse(text: &str) -> Self {
        match text {
            "Pending" => Self::Pending,
            "PendingReview" => Self::PendingReview,
            "AwaitingDocuments" => Self::AwaitingDocuments,
            "Approved" => Self::Approved,
            "Denied" => Self::Denied,
            "Canceled" => Self::Canceled,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The status a Unit webhook event reports (its type is in camelCase:
    /// `application.pendingReview`); `customer.created` means approved. `None` for events that
    /// say nothing of an application's status.
    pub fn of_event(event_type: &str) -> Option<Self> {
        Some(match event_type {
            "application.created" => Self::Pending,
            "application.pendingReview" => Self::PendingReview,
            "application.awaitingDocuments" => Self::AwaitingDocuments,
            "application.approved" | "customer.created" => Self::Approved,
            "application.denied" => Self::Denied,
            "application.canceled" => Self::Canceled,
            _ => return None,
        })
    }

    /// Unit's string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "Pending",
            Self::PendingReview => "PendingReview",
            Self::AwaitingDocuments => "AwaitingDocuments",
            Self::Approved => "Approved",
            Self::Denied => "Denied",
            Self::Canceled => "Canceled",
            Self::Other(text) => text,
        }
    }

    /// Unit's decision is made: no later status of the same application replaces it.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Approved | Self::Denied | Self::Canceled)
    }

    /// Final without a customer: the user may apply again, and a new application replaces it.
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Denied | Self::Canceled)
    }
}

impl Default for ApplicationStatus {
    fn default() -> Self {
        Self::Other(String::new())
    }
}

impl From<String> for ApplicationStatus {
    fn from(text: String) -> Self {
        Self::parse(&text)
    }
}

impl From<ApplicationStatus> for String {
    fn from(status: ApplicationStatus) -> Self {
        match status {
            ApplicationStatus::Other(text) => text,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for ApplicationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_once_and_keep_their_strings() {
        assert!(UserId::parse("user-test-16d9ba61-97a1-4ba4-9720-b03761dc50c6").is_ok());
        for bad in [
            "",
            "user-",
            "member-test-1",
            "user-test-1 ",
            "user-test-ü",
            "USER-test-1",
        ] {
            assert_eq!(UserId::parse(bad), Err(Invalid(UserId::WHAT)), "{bad:?}");
        }
        assert!(UserId::parse(format!("user-{}", "a".repeat(124))).is_err());
        for bad in ["", "0", "012", "12a", "-1", "1.5", "123456789012345678901"] {
            assert!(CustomerId::parse(bad).is_err(), "{bad:?}");
        }
        let id = CustomerId::parse("4711").unwrap();
        assert_eq!(
            (id.as_str(), &*id, id.to_string()),
            ("4711", "4711", "4711".into())
        );
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"4711\"");
        assert!(serde_json::from_str::<CustomerId>("\"x\"").is_err());
        assert_eq!(serde_json::from_str::<CustomerId>("\"4711\"").unwrap(), id);
    }

    #[test]
    fn scopes_are_a_set_written_as_unit_writes_it() {
        let scopes = Scopes::parse("  cards-write customers  cards-write ").unwrap();
        assert_eq!(scopes.to_string(), "cards-write customers");
        assert_eq!(scopes.len(), 2);
        assert_eq!(
            scopes,
            Scopes::parse("customers cards-write").unwrap(),
            "a set"
        );
        assert!(scopes.contains("customers") && !scopes.contains("accounts"));
        assert!(scopes.contains("cards-write") && !scopes.contains("cards"));
        let (name, _) = Scopes::parse("customers Cards").unwrap_err();
        assert_eq!(name, "Cards");
        for bad in ["-write", "cards--write", "cards_write", "cards-"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
        let allowed = Scopes::parse("customers accounts").unwrap();
        let outside: Vec<&str> = scopes.outside(&allowed).map(|s| s.as_str()).collect();
        assert_eq!(outside, ["cards-write"]);
        assert_eq!(
            serde_json::to_string(&scopes).unwrap(),
            "\"cards-write customers\""
        );
        assert!(Scopes::parse("").unwrap().is_empty());
    }

    #[test]
    fn statuses_round_trip_unit_strings_and_read_event_types() {
        for text in [
            "Pending",
            "PendingReview",
            "AwaitingDocuments",
            "Approved",
            "Denied",
            "Canceled",
            "Archived",
        ] {
            assert_eq!(ApplicationStatus::parse(text).as_str(), text);
        }
        assert_eq!(
            ApplicationStatus::of_event("application.pendingReview"),
            Some(ApplicationStatus::PendingReview)
        );
        assert_eq!(
            ApplicationStatus::of_event("customer.created"),
            Some(ApplicationStatus::Approved)
        );
        assert_eq!(ApplicationStatus::of_event("account.created"), None);
        let json = serde_json::to_string(&ApplicationStatus::AwaitingDocuments).unwrap();
        assert_eq!(json, "\"AwaitingDocuments\"");
        assert!(ApplicationStatus::Denied.is_final() && ApplicationStatus::Denied.is_closed());
        assert!(ApplicationStatus::Approved.is_final() && !ApplicationStatus::Approved.is_closed());
        assert!(!ApplicationStatus::PendingReview.is_final());
    }
}
