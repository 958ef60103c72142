//! Paging a conversation's history: `after=<message id>&limit=<n>`.

use crate::error::ValidationError;
use crate::ids::MessageId;
use crate::limits::PAGE_MAX_MESSAGES;

/// Messages after `after` (0: from the start), at most `limit` of them, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub after: MessageId,
    pub limit: i64,
}

impl Page {
    /// `after` defaults to the start; `limit` to the cap, and larger values are capped (a
    /// client asking for more is served, in pages).
    pub fn new(after: Option<MessageId>, limit: Option<i64>) -> Result<Self, ValidationError> {
        let after = after.unwrap_or(MessageId(0));
        if after.0 < 0 {
            return Err(ValidationError::new(
                "after",
                "must be a message id, 0 or more",
            ));
        }
        let limit = limit.unwrap_or(PAGE_MAX_MESSAGES);
        if limit < 1 {
            return Err(ValidationError::new("limit", "must be at least 1"));
        }
        Ok(Self {
            after,
            limit: limit.min(PAGE_MAX_MESSAGES),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MessageId;

    #[test]
    fn defaults_are_the_start_and_the_cap() {
        assert_eq!(
            Page::new(None, None),
            Ok(Page {
                after: MessageId(0),
                limit: PAGE_MAX_MESSAGES
            })
        );
    }

    #[test]
    fn a_limit_over_the_cap_is_capped_and_one_is_allowed() {
        assert_eq!(
            Page::new(Some(MessageId(7)), Some(5_000)).map(|p| p.limit),
            Ok(1_000)
        );
        assert_eq!(
            Page::new(Some(MessageId(7)), Some(1)),
            Ok(Page {
                after: MessageId(7),
                limit: 1
            })
        );
        assert_eq!(
            Page::new(Some(MessageId(0)), None).map(|p| p.after),
            Ok(MessageId(0))
        );
    }

    #[test]
    fn negative_after_and_a_limit_under_one_are_refused_by_name() {
        assert_eq!(
            Page::new(Some(MessageId(-1)), None).map_err(|e| e.field),
            Err("after")
        );
        assert_eq!(Page::new(None, Some(0)).map_err(|e| e.field), Err("limit"));
        assert_eq!(Page::new(None, Some(-3)).map_err(|e| e.field), Err("limit"));
    }
}
