//! Coalesces a connection's `typing` frames: per conversation, at most one forwarded per
//! interval, except that a change of `isTyping` always passes. Typing is ephemeral, so a
//! dropped repeat loses nothing: the peer's indicator already shows the same state.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use frontdesk_domain::ConversationId;

/// Conversations remembered per connection; beyond this the oldest entries are forgotten
/// (which can only let one extra frame through).
const REMEMBERED: usize = 64;

#[derive(Debug)]
pub struct TypingCoalescer {
    interval: Duration,
    /// Conversation -> the state last forwarded, and when.
    last: HashMap<ConversationId, (bool, Instant)>,
}

impl TypingCoalescer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: HashMap::new(),
        }
    }

    /// Whether this frame goes on; if so it is remembered as the last forwarded.
    pub fn admit(&mut self, conversation: ConversationId, is_typing: bool, now: Instant) -> bool {
        if let Some((state, at)) = self.last.get(&conversation) {
            if *state == is_typing && now.saturating_duration_since(*at) < self.interval {
                return false;
            }
        }
        if self.last.len() >= REMEMBERED && !self.last.contains_key(&conversation) {
            let interval = self.interval;
            self.last
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < interval);
            if self.last.len() >= REMEMBERED {
                self.last.clear();
            }
        }
        self.last.insert(conversation, (is_typing, now));
        true
    }

    /// This connection sent a message in `conversation`: its peers' indicators stop showing
    /// typing on their own when it arrives, so the next `typing` must pass, repeat or not.
    pub fn message_sent(&mut self, conversation: ConversationId) {
        self.last.remove(&conversation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_after_a_message_passes() {
        let start = Instant::now();
        let mut typing = TypingCoalescer::new(Duration::from_secs(1));
        assert!(typing.admit(ConversationId(7), true, start));
        typing.message_sent(ConversationId(7));
        assert!(typing.admit(ConversationId(7), true, start + Duration::from_millis(10)));
    }

    #[test]
    fn repeats_within_the_interval_are_dropped() {
        let start = Instant::now();
        let mut typing = TypingCoalescer::new(Duration::from_secs(1));
        assert!(typing.admit(ConversationId(7), true, start));
        assert!(!typing.admit(ConversationId(7), true, start + Duration::from_millis(10)));
        assert!(!typing.admit(ConversationId(7), true, start + Duration::from_millis(999)));
        assert!(typing.admit(ConversationId(7), true, start + Duration::from_millis(1000)));
    }

    #[test]
    fn a_change_always_passes() {
        let start = Instant::now();
        let mut typing = TypingCoalescer::new(Duration::from_secs(1));
        assert!(typing.admit(ConversationId(7), true, start));
        assert!(typing.admit(ConversationId(7), false, start));
        assert!(typing.admit(ConversationId(7), true, start));
        assert!(!typing.admit(ConversationId(7), true, start));
    }

    #[test]
    fn conversations_are_independent() {
        let start = Instant::now();
        let mut typing = TypingCoalescer::new(Duration::from_secs(1));
        assert!(typing.admit(ConversationId(1), true, start));
        assert!(typing.admit(ConversationId(2), true, start));
        assert!(!typing.admit(ConversationId(1), true, start));
    }

    #[test]
    fn memory_stays_bounded() {
        let start = Instant::now();
        let mut typing = TypingCoalescer::new(Duration::from_secs(1));
        for conversation in 0..10_000 {
            typing.admit(ConversationId(conversation), true, start);
        }
        assert!(typing.last.len() <= REMEMBERED);
    }
}
