//! Support agents and their passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::customer::parse_email;
use crate::error::ValidationError;
use crate::limits::NAME_MAX_CHARS;
use crate::partner::required_text;
use crate::timestamp::Timestamp;

/// Passwords shorter than this are refused.
pub const PASSWORD_MIN_CHARS: usize = 10;
/// Longer inputs only cost hashing time.
pub const PASSWORD_MAX_CHARS: usize = 1024;

/// An agent as the API shows it: `{id, name, email, isAdmin}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
    #[serde(skip)]
    pub created_at: Timestamp,
}

impl Agent {
    /// The agent's `senderId` and WebSocket `clientId`.
    pub fn client_id(&self) -> String {
        format!("agent-{}", self.id)
    }
}

/// `POST /api/admin/agents` and `frontdesk agent create`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAgent {
    pub email: String,
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub is_admin: bool,
}

/// A checked new agent, with its password already hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSignup {
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub is_admin: bool,
}

impl NewAgent {
    /// Checks the fields and hashes the password with argon2id (this takes tens of
    /// milliseconds on purpose: run it off the async threads).
    pub fn validate(self, rng: &mut impl CryptoRng) -> Result<AgentSignup, ValidationError> {
        let email = parse_email(&self.email)?.to_lowercase();
        let name = required_text("name", &self.name, NAME_MAX_CHARS)?;
        let chars = self.password.chars().count();
        if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
            return Err(ValidationError::new(
                "password",
                format!("must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"),
            ));
        }
        Ok(AgentSignup {
            email,
            name,
            password_hash: hash_password(&self.password, rng)?,
            is_admin: self.is_admin,
        })
    }
}

/// An argon2id PHC string (`$argon2id$v=19$...`) with a random salt.
pub fn hash_password(password: &str, rng: &mut impl CryptoRng) -> Result<String, ValidationError> {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| ValidationError::new("password", e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ValidationError::new("password", e.to_string()))
}

/// Whether `password` matches a stored PHC string; a malformed stored hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let mut rng = rand::rng();
        let hash = hash_password("correct horse battery", &mut rng).unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert_ne!(
            hash,
            hash_password("correct horse battery", &mut rng).unwrap_or_default(),
            "salted"
        );
    }

    #[test]
    fn signup_rules() {
        let signup = |email: &str, password: &str| {
            NewAgent {
                email: email.into(),
                name: "Ann".into(),
                password: password.into(),
                is_admin: false,
            }
            .validate(&mut rand::rng())
        };
        assert_eq!(
            signup("Ann@Example.com", "long enough pw").map(|s| s.email),
            Ok("ann@example.com".into())
        );
        assert_eq!(
            signup("ann", "long enough pw").map_err(|e| e.field),
            Err("email")
        );
        assert_eq!(
            signup("a@b.c", "short").map_err(|e| e.field),
            Err("password")
        );
    }
}
