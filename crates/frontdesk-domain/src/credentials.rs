//! Bearer secrets (partner API keys, customer session tokens, agent tokens): generated from
//! 32 random bytes, shown once, stored only as a SHA-256 digest.
//!
//! A fast digest is right here, unlike for passwords: the secrets carry 256 bits of entropy, so
//! there is nothing to brute-force, and a digest can be looked up by equality in an index.

use rand::CryptoRng;
use sha2::{Digest, Sha256};

/// Random bytes in every secret.
pub const SECRET_BYTES: usize = 32;

/// A secret in the clear. Only ever handed to its owner; never logged or stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// What the store keeps: the hex SHA-256 of the secret's text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretHash(String);

impl Secret {
    /// `prefix` + 64 hex characters, e.g. `fdk_3f9a…`. The prefix tells a reader (and a
    /// secret scanner) what kind of credential leaked.
    pub fn generate(prefix: &str, rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut bytes);
        Self(format!("{prefix}{}", hex::encode(bytes)))
    }

    /// Wraps what a client presented.
    pub fn presented(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl SecretHash {
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Prefixes of the kinds of secret.
pub mod prefix {
    pub const PARTNER_API_KEY: &str = "fdk_";
    pub const CUSTOMER_SESSION: &str = "fdc_";
    pub const AGENT_SESSION: &str = "fda_";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hash_stably() {
        let mut rng = rand::rng();
        let a = Secret::generate(prefix::PARTNER_API_KEY, &mut rng);
        let b = Secret::generate(prefix::PARTNER_API_KEY, &mut rng);
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 4 + 64);
        assert_eq!(a.hash(), Secret::presented(a.expose()).hash());
        assert_ne!(a.hash(), b.hash());
        assert!(!a.hash().as_str().contains(&a.expose()[4..]));
        assert_eq!(format!("{a:?}"), "Secret(..)");
        // The stored form is the hex SHA-256 of the secret's text.
        assert_eq!(
            Secret::presented("abc").hash().as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let stored = SecretHash::from_stored("00ff".into());
        assert_eq!(stored.as_str(), "00ff");
    }
}
