//! PATCH semantics for one field: left out (keep), `null` (clear), or a value (set).

use serde::{Deserialize, Deserializer};

/// One field of a PATCH body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(v) => Patch::Set(f(v)),
        }
    }

    /// `Some(new value)` when the field changes, `None` when it is kept.
    pub fn into_change(self) -> Option<Option<T>> {
        match self {
            Patch::Keep => None,
            Patch::Clear => Some(None),
            Patch::Set(v) => Some(Some(v)),
        }
    }

    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }
}

// A missing field never reaches this impl (`#[serde(default)]` gives `Keep`); present ones do.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            None => Patch::Clear,
            Some(v) => Patch::Set(v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_clear_and_set() {
        assert_eq!(Patch::Set(2).map(|v| v * 10), Patch::Set(20));
        assert_eq!(Patch::<i32>::Clear.map(|v| v * 10), Patch::Clear);
        assert_eq!(Patch::<i32>::Keep.map(|v| v * 10), Patch::Keep);
        assert_eq!(Patch::Set(2).into_change(), Some(Some(2)));
        assert_eq!(Patch::<i32>::Clear.into_change(), Some(None));
        assert_eq!(Patch::<i32>::Keep.into_change(), None);
        assert!(Patch::<i32>::Keep.is_keep());
        assert!(!Patch::<i32>::Clear.is_keep());
        assert!(!Patch::Set(2).is_keep());
    }
}
