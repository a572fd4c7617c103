//! The domain's named values.

use std::fmt;

use serde::{Deserialize, Serialize};

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
