//! Partners: the companies whose chat front ends talk to our agents.

use std::fmt;

use serde::Deserialize;

use crate::error::ValidationError;
use crate::limits::{DOMAIN_MAX_CHARS, NAME_MAX_CHARS};
use crate::timestamp::Timestamp;

/// Stored as an integer, shown as `partner-<n>` (the guide's `partnerId` is a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartnerId(pub i64);

impl PartnerId {
    /// Reads `partner-<n>` as shown by `Display` (leading zeros optional).
    pub fn parse(text: &str) -> Option<Self> {
        text.strip_prefix("partner-")
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<i64>().ok())
            .map(Self)
    }
}

impl fmt::Display for PartnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "partner-{:08}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: PartnerId,
    pub name: String,
    pub domain: String,
    pub created_at: Timestamp,
}

/// `POST /api/partner/register` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerRegistration {
    pub name: String,
    pub domain: String,
}

impl PartnerRegistration {
    /// Trims both fields and checks them.
    pub fn validate(self) -> Result<Self, ValidationError> {
        let name = required_text("name", &self.name, NAME_MAX_CHARS)?;
        let domain = self.domain.trim().to_ascii_lowercase();
        if !is_domain(&domain) {
            return Err(ValidationError::new(
                "domain",
                "must be a DNS name such as example.com",
            ));
        }
        Ok(Self { name, domain })
    }
}

/// A trimmed, non-empty text of at most `max` characters, without control characters.
pub(crate) fn required_text(
    field: &'static str,
    text: &str,
    max: usize,
) -> Result<String, ValidationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if text.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

fn is_domain(domain: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    domain.len() <= DOMAIN_MAX_CHARS && domain.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(name: &str, domain: &str) -> Result<PartnerRegistration, ValidationError> {
        PartnerRegistration {
            name: name.into(),
            domain: domain.into(),
        }
        .validate()
    }

    #[test]
    fn accepts_and_normalises() {
        let ok = reg("  Acme  ", "Shop.Example.COM").ok();
        assert_eq!(ok.as_ref().map(|r| r.name.as_str()), Some("Acme"));
        assert_eq!(
            ok.as_ref().map(|r| r.domain.as_str()),
            Some("shop.example.com")
        );
        assert!(reg("Acme", "localhost").is_ok());
    }

    #[test]
    fn refuses_bad_values() {
        assert_eq!(reg(" ", "a.com").map_err(|e| e.field), Err("name"));
        assert_eq!(reg("A", "not a domain").map_err(|e| e.field), Err("domain"));
        assert_eq!(reg("A", "a..com").map_err(|e| e.field), Err("domain"));
        assert_eq!(reg("A", "-a.com").map_err(|e| e.field), Err("domain"));
        assert_eq!(
            reg(&"x".repeat(201), "a.com").map_err(|e| e.field),
            Err("name")
        );
        assert_eq!(
            reg(&"x".repeat(200), "a.com").map(|r| r.name.len()),
            Ok(200),
            "200 characters is the limit, inclusive"
        );
    }

    #[test]
    fn shows_partner_ids_like_the_guide() {
        assert_eq!(PartnerId(42).to_string(), "partner-00000042");
        assert_eq!(PartnerId::parse("partner-00000042"), Some(PartnerId(42)));
        assert_eq!(PartnerId::parse("partner-42"), Some(PartnerId(42)));
        assert_eq!(PartnerId::parse("partner-"), None);
        assert_eq!(PartnerId::parse("partner-+4"), None);
        assert_eq!(PartnerId::parse("42"), None);
    }
}
