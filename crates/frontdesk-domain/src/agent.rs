//! Support agents and their passwords.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::customer::parse_email;
use crate::error::ValidationError;
use crate::ids::AgentId;
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
    pub id: AgentId,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
    #[serde(skip)]
    pub created_at: Timestamp,
}

impl Agent {
    /// The agent's `senderId` and WebSocket `clientId`.
    pub fn client_id(&self) -> String {
        self.id.to_string()
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
        self.validate_with(rng, &mut PasswordMemory::default())
    }

    /// `validate`, hashing in `memory` (a hashing thread's own, reused).
    pub fn validate_with(
        self,
        rng: &mut impl CryptoRng,
        memory: &mut PasswordMemory,
    ) -> Result<AgentSignup, ValidationError> {
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
            password_hash: memory.hash(&self.password, rng)?,
            is_admin: self.is_admin,
        })
    }
}

/// An argon2id PHC string (`$argon2id$v=19$...`) with a random salt.
pub fn hash_password(password: &str, rng: &mut impl CryptoRng) -> Result<String, ValidationError> {
    PasswordMemory::default().hash(password, rng)
}

/// Whether `password` matches a stored PHC string; a malformed stored hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordMemory::default().verify(password, stored)
}

/// The most argon2 memory a stored hash may ask for (64 MiB); a stored hash asking for more is
/// treated as malformed rather than allocated.
const MAX_BLOCKS: usize = 64 * 1024;

/// The working memory of argon2 (19 MiB with the default parameters), kept to be reused by
/// every hash one thread computes. Allocating it afresh for each hash made the allocator keep
/// ~19 MiB per hash resident (glibc raises its mmap threshold after the first free), so a
/// server that hashed a few hundred passwords held hundreds of MiB; reused, it holds one
/// buffer per hashing thread.
#[derive(Default)]
pub struct PasswordMemory {
    blocks: Vec<Block>,
}

impl PasswordMemory {
    fn blocks(&mut self, params: &Params) -> Option<&mut [Block]> {
        let count = params.block_count();
        if count > MAX_BLOCKS {
            return None;
        }
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::default());
        }
        self.blocks.get_mut(..count)
    }

    /// An argon2id PHC string (`$argon2id$v=19$...`) with a random salt.
    pub fn hash(
        &mut self,
        password: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<String, ValidationError> {
        let failed = |e: &dyn std::fmt::Display| ValidationError::new("password", e.to_string());
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| failed(&e))?;
        let params = Params::default();
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let mut salt_bytes = [0u8; 64];
        let salt_raw = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
        let memory = self
            .blocks(&params)
            .ok_or_else(|| failed(&"argon2 memory"))?;
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into_with_memory(password.as_bytes(), salt_raw, &mut output, memory)
            .map_err(|e| failed(&e))?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output).map_err(|e| failed(&e))?),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` matches a stored PHC string; a malformed stored hash never matches.
    pub fn verify(&mut self, password: &str, stored: &str) -> bool {
        let Ok(hash) = PasswordHash::new(stored) else {
            return false;
        };
        let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
            Algorithm::try_from(hash.algorithm),
            Params::try_from(&hash),
            hash.salt,
            hash.hash,
        ) else {
            return false;
        };
        let version = hash
            .version
            .map_or(Ok(Version::V0x13), Version::try_from)
            .unwrap_or(Version::V0x13);
        let mut salt_bytes = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
            return false;
        };
        let mut output = vec![0u8; expected.len()];
        let Some(memory) = self.blocks(&params) else {
            return false;
        };
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut output, memory)
            .is_ok()
            // `Output`'s equality is constant-time.
            && Output::new(&output).is_ok_and(|output| output == expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AgentId;

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
    fn hashes_are_the_standard_phc_strings() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut rng = rand::rng();
        let ours = hash_password("correct horse battery", &mut rng).unwrap_or_default();
        let parsed = PasswordHash::new(&ours).unwrap_or_else(|e| panic!("{ours}: {e}"));
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap_or_else(|e| panic!("{e}"));
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        let mut memory = PasswordMemory::default();
        assert!(memory.verify("correct horse battery", &theirs));
        assert!(!memory.verify("correct horse batterY", &theirs));
        assert!(
            memory.verify("correct horse battery", &ours),
            "memory reused"
        );
        let greedy = "$argon2id$v=19$m=4000000,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!memory.verify("x", greedy), "no 4 GB allocation");
    }

    #[test]
    fn agents_speak_as_agent_and_their_id() {
        let agent = Agent {
            id: AgentId(7),
            name: "Ann".into(),
            email: "ann@example.com".into(),
            is_admin: false,
            created_at: Timestamp::new(time::macros::datetime!(2023-01-01 00:00 UTC)),
        };
        assert_eq!(agent.client_id(), "agent-7");
    }

    #[test]
    fn stored_hashes_may_ask_for_64_mib_and_no_more() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap_or_else(|e| panic!("{e}"));
        let hash_with = |blocks: u32| {
            let params = Params::new(blocks, 1, 1, None).unwrap_or_else(|e| panic!("{e}"));
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"pw", &salt)
                .map(|h| h.to_string())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let mut memory = PasswordMemory::default();
        let limit = u32::try_from(MAX_BLOCKS).unwrap_or(u32::MAX);
        assert!(memory.verify("pw", &hash_with(limit)), "exactly 64 MiB");
        assert_eq!(memory.blocks.len(), MAX_BLOCKS);
        // The next size argon2 can use (it rounds memory down to a multiple of 4 blocks per
        // lane) is refused before anything is allocated.
        let mut fresh = PasswordMemory::default();
        assert!(!fresh.verify("pw", &hash_with(limit + 4)));
        assert_eq!(
            fresh.blocks.len(),
            0,
            "nothing allocated for a refused hash"
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
