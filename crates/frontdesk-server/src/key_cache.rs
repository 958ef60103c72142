//! Recently seen partner API keys, so a busy partner's every request does not cost a database
//! lookup. Only keys that exist are kept (random wrong keys cannot fill it), for a short time,
//! and the cache is bounded. A rotated key is forgotten at once (`forget`), on every instance
//! (the revocation travels through the event feed; the TTL bounds a lost signal).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use frontdesk_domain::{Partner, SecretHash};

const TTL: Duration = Duration::from_secs(60);
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<SecretHash, (Partner, Instant)>>,
}

impl KeyCache {
    pub fn get(&self, key: &SecretHash) -> Option<Partner> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(partner, _)| partner.clone())
    }

    /// Drops a key that no longer speaks (rotated).
    pub fn forget(&self, key: &SecretHash) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(key);
    }

    pub fn put(&self, key: SecretHash, partner: Partner) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, at)| at.elapsed() < TTL);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (partner, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_domain::{PartnerId, Secret, Timestamp};

    #[test]
    fn remembers_known_keys() {
        let cache = KeyCache::default();
        let key = Secret::presented("fdk_x").hash();
        assert_eq!(cache.get(&key), None);
        let partner = Partner {
            id: PartnerId(1),
            name: "A".into(),
            domain: "a.com".into(),
            created_at: Timestamp::new(time::OffsetDateTime::UNIX_EPOCH),
        };
        cache.put(key.clone(), partner.clone());
        assert_eq!(cache.get(&key), Some(partner));
        assert_eq!(cache.get(&Secret::presented("fdk_y").hash()), None);
        cache.forget(&key);
        assert_eq!(cache.get(&key), None);
    }
}
