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
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    keys: HashMap<SecretHash, (Partner, Instant)>,
    /// Bumped by every `forget`: a look-up that began before a rotation must not put the old
    /// key back after it was forgotten.
    generation: u64,
}

impl KeyCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &SecretHash) -> Option<Partner> {
        self.entries()
            .keys
            .get(key)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(partner, _)| partner.clone())
    }

    /// What a look-up about to go to the database hands back to `put`.
    pub fn generation(&self) -> u64 {
        self.entries().generation
    }

    /// Drops a key that no longer speaks (rotated).
    pub fn forget(&self, key: &SecretHash) {
        let mut entries = self.entries();
        entries.keys.remove(key);
        entries.generation += 1;
    }

    /// Remembers what a look-up that began at `generation` found, unless a key was forgotten
    /// since (it may have been this one).
    pub fn put(&self, key: SecretHash, partner: Partner, generation: u64) {
        let mut entries = self.entries();
        if entries.generation != generation {
            return;
        }
        if entries.keys.len() >= CAPACITY {
            entries.keys.retain(|_, (_, at)| at.elapsed() < TTL);
            if entries.keys.len() >= CAPACITY {
                entries.keys.clear();
            }
        }
        entries.keys.insert(key, (partner, Instant::now()));
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
        cache.put(key.clone(), partner.clone(), cache.generation());
        assert_eq!(cache.get(&key), Some(partner.clone()));
        assert_eq!(cache.get(&Secret::presented("fdk_y").hash()), None);
        cache.forget(&key);
        assert_eq!(cache.get(&key), None);

        // A look-up that began before the rotation does not put the old key back.
        let before = cache.generation();
        cache.forget(&key);
        cache.put(key.clone(), partner, before);
        assert_eq!(cache.get(&key), None);
    }
}
