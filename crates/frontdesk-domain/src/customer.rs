//! Customers: the partner's end users, identified by the partner's own id.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};
use time::macros::{date, format_description};
use time::Date;

use crate::error::ValidationError;
use crate::flashback::Flashback;
use crate::limits::{CUSTOMER_ID_MAX_CHARS, EMAIL_MAX_CHARS, NAME_MAX_CHARS};
use crate::partner::{required_text, PartnerId};
use crate::patch::Patch;
use crate::timestamp::Timestamp;

/// The earliest birthdate accepted.
pub const BIRTHDATE_MIN: Date = date!(1900 - 01 - 01);

/// A partner's id for its customer, scoped to that partner.
///
/// 1..=128 characters from `A-Z a-z 0-9 - _ . : @ +`, so it is safe in a URL path and a log
/// line. `bot` and ids starting with `agent-` are reserved: they are our senders' ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CustomerId(String);

impl CustomerId {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let field = "customerId";
        if text.is_empty() || text.chars().count() > CUSTOMER_ID_MAX_CHARS {
            return Err(ValidationError::new(
                field,
                format!("must be 1 to {CUSTOMER_ID_MAX_CHARS} characters"),
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:@+".contains(c);
        if !text.chars().all(allowed) {
            return Err(ValidationError::new(
                field,
                "may contain only letters, digits and - _ . : @ +",
            ));
        }
        if text == "bot" || text.starts_with(crate::ids::AGENT_PREFIX) {
            return Err(ValidationError::new(
                field,
                "`bot` and `agent-…` are reserved for our own senders",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// For values read back from the store, which were validated on the way in.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A customer as partners see it (`PATCH /api/customers/:customerId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: CustomerId,
    #[serde(skip)]
    pub partner_id: PartnerId,
    pub email: Option<String>,
    pub name: Option<String>,
    #[serde(serialize_with = "serialize_birthdate")]
    pub birthdate: Option<Date>,
    /// Shown to agents; partners receive it as the `flashback` event.
    #[serde(skip)]
    pub flashback: Option<Flashback>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub(crate) fn serialize_birthdate<S: Serializer>(
    birthdate: &Option<Date>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match birthdate {
        Some(date) => serializer.serialize_str(&format_birthdate(*date)),
        None => serializer.serialize_none(),
    }
}

/// `YYYY-MM-DD`.
pub fn format_birthdate(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The body of `PATCH /api/customers/:customerId`, as received.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    #[serde(default)]
    pub email: Patch<String>,
    #[serde(default)]
    pub name: Patch<String>,
    #[serde(default)]
    pub birthdate: Patch<String>,
}

/// A checked patch: what the store applies. The Flashback profile follows the birthdate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerChanges {
    pub email: Patch<String>,
    pub name: Patch<String>,
    pub birthdate: Patch<Date>,
    pub flashback: Patch<Flashback>,
}

impl CustomerPatch {
    /// Checks every field; `today` bounds the birthdate and dates the Flashback profile.
    pub fn validate(self, today: Date) -> Result<CustomerChanges, ValidationError> {
        let email = match self.email {
            Patch::Set(email) => Patch::Set(parse_email(&email)?),
            other => other,
        };
        let name = match self.name {
            Patch::Set(name) => Patch::Set(required_text("name", &name, NAME_MAX_CHARS)?),
            other => other,
        };
        let birthdate = match self.birthdate {
            Patch::Set(text) => Patch::Set(parse_birthdate(&text, today)?),
            Patch::Clear => Patch::Clear,
            Patch::Keep => Patch::Keep,
        };
        let flashback = match &birthdate {
            Patch::Set(date) => match Flashback::compute(*date, today) {
                Some(profile) => Patch::Set(profile),
                None => Patch::Clear,
            },
            Patch::Clear => Patch::Clear,
            Patch::Keep => Patch::Keep,
        };
        Ok(CustomerChanges {
            email,
            name,
            birthdate,
            flashback,
        })
    }
}

pub(crate) fn parse_email(text: &str) -> Result<String, ValidationError> {
    let email = text.trim();
    let well_formed = email.chars().count() <= EMAIL_MAX_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if well_formed {
        Ok(email.to_owned())
    } else {
        Err(ValidationError::new(
            "email",
            "must be an email address such as customer@example.com",
        ))
    }
}

/// `YYYY-MM-DD`, a real calendar date, between 1900-01-01 and `today`.
pub fn parse_birthdate(text: &str, today: Date) -> Result<Date, ValidationError> {
    let field = "birthdate";
    let shape_ok = text.len() == 10
        && text.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    let date = shape_ok
        .then(|| Date::parse(text, format_description!("[year]-[month]-[day]")).ok())
        .flatten()
        .ok_or_else(|| ValidationError::new(field, "must be a date written YYYY-MM-DD"))?;
    if date < BIRTHDATE_MIN {
        return Err(ValidationError::new(field, "must not be before 1900-01-01"));
    }
    if date > today {
        return Err(ValidationError::new(field, "must not be in the future"));
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = date!(2026 - 11 - 25);

    #[test]
    fn customer_ids() {
        assert!(CustomerId::parse("customer-12345").is_ok());
        assert!(CustomerId::parse("ann@example.com").is_ok());
        assert!(CustomerId::parse("").is_err());
        assert!(CustomerId::parse("has space").is_err());
        assert!(CustomerId::parse("a/b").is_err());
        assert_eq!(
            CustomerId::parse(&"x".repeat(128)).map(|id| id.to_string()),
            Ok("x".repeat(128)),
            "128 characters is the limit, inclusive"
        );
        assert!(CustomerId::parse(&"x".repeat(129)).is_err());
        assert!(CustomerId::parse("bot").is_err());
        assert!(CustomerId::parse("agent-2").is_err());
    }

    #[test]
    fn birthdates() {
        assert_eq!(
            parse_birthdate("1990-01-15", TODAY).ok(),
            Some(date!(1990 - 01 - 15))
        );
        assert!(parse_birthdate("1900-01-01", TODAY).is_ok());
        assert!(parse_birthdate("2026-11-25", TODAY).is_ok());
        for bad in [
            "1899-12-31",
            "2026-11-26",
            "1990-02-30",
            "1990-13-01",
            "90-01-15",
            "1990/01/15",
            "15-01-1990",
            "+1990-01-1",
            "",
        ] {
            assert!(parse_birthdate(bad, TODAY).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn patch_distinguishes_missing_null_and_value() {
        let patch: CustomerPatch =
            serde_json::from_str(r#"{"email":null,"birthdate":"1990-01-15"}"#).unwrap_or_default();
        let changes = patch.validate(TODAY);
        let changes = changes.as_ref().ok();
        assert_eq!(changes.map(|c| &c.email), Some(&Patch::Clear));
        assert_eq!(changes.map(|c| &c.name), Some(&Patch::Keep));
        assert_eq!(
            changes.map(|c| &c.birthdate),
            Some(&Patch::Set(date!(1990 - 01 - 15)))
        );
        assert!(matches!(changes.map(|c| &c.flashback), Some(Patch::Set(_))));
    }

    #[test]
    fn the_profile_follows_the_birthdate() {
        let changes = |body: &str| {
            let patch: CustomerPatch =
                serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"));
            patch
                .validate(TODAY)
                .map(|c| (c.birthdate, c.flashback))
                .unwrap_or_else(|e| panic!("{body}: {e}"))
        };
        let guide = Flashback::compute(date!(1990 - 01 - 15), TODAY);
        assert!(guide.is_some(), "the guide's customer has a profile");
        assert_eq!(
            changes(r#"{"birthdate":"1990-01-15"}"#),
            (
                Patch::Set(date!(1990 - 01 - 15)),
                guide.map_or(Patch::Keep, Patch::Set)
            )
        );
        // Too young (second event in January 2043): the birthdate is stored, and an older
        // profile is removed rather than kept.
        assert_eq!(
            changes(r#"{"birthdate":"2020-06-01"}"#),
            (Patch::Set(date!(2020 - 06 - 01)), Patch::Clear)
        );
        assert_eq!(
            changes(r#"{"birthdate":null}"#),
            (Patch::Clear, Patch::Clear)
        );
        assert_eq!(changes(r#"{"name":"Ann"}"#), (Patch::Keep, Patch::Keep));
    }

    #[test]
    fn emails() {
        assert!(parse_email("a@b.co").is_ok());
        assert!(parse_email("nope").is_err());
        assert!(parse_email("a@@b").is_err());
        assert!(parse_email("a b@c.d").is_err());
    }

    #[test]
    fn serialises_like_the_guide() {
        let customer = Customer {
            id: CustomerId::from_stored("customer-12345".into()),
            partner_id: PartnerId(1),
            email: Some("customer@example.com".into()),
            name: Some("John Doe".into()),
            birthdate: Some(date!(1990 - 01 - 15)),
            flashback: None,
            created_at: Timestamp::new(time::macros::datetime!(2023-01-01 00:00 UTC)),
            updated_at: Timestamp::new(time::macros::datetime!(2023-01-01 00:00 UTC)),
        };
        let json = serde_json::to_value(&customer).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "customer-12345",
                "email": "customer@example.com",
                "name": "John Doe",
                "birthdate": "1990-01-15",
                "createdAt": "2023-01-01T00:00:00.000Z",
                "updatedAt": "2023-01-01T00:00:00.000Z"
            })
        );
    }
}
