//! The one rule for every text a client sends that may be stored: no NUL (U+0000).
//!
//! PostgreSQL's `text` cannot hold NUL at all (it refused the whole batch with an error), while
//! SQLite stores it; rather than store it on one backend and fail on the other, both refuse it
//! up front with 422 `invalid_value` naming the field. Fields with a stricter alphabet (ids,
//! names, emails, which refuse every control character) already exclude it.

use serde_json::Value;

use crate::error::ValidationError;

/// Whether `text` can be stored as it is on every backend.
pub fn is_storable(text: &str) -> bool {
    !text.contains('\0')
}

/// Refuses a NUL in `text`, naming `field`.
pub fn check_storable(field: &'static str, text: &str) -> Result<(), ValidationError> {
    if is_storable(text) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must not contain NUL (U+0000) characters",
        ))
    }
}

/// Refuses a NUL in any key or string anywhere inside a JSON value.
pub fn check_storable_json(field: &'static str, value: &Value) -> Result<(), ValidationError> {
    match value {
        Value::String(text) => check_storable(field, text),
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| check_storable_json(field, item)),
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            check_storable(field, key)?;
            check_storable_json(field, item)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_refused_wherever_it_hides() {
        assert!(check_storable("content", "hello").is_ok());
        assert_eq!(
            check_storable("content", "a\0b").map_err(|e| e.field),
            Err("content")
        );
        assert!(check_storable_json("metadata", &json!({"a": ["b", 1, null]})).is_ok());
        for bad in [
            json!({"a\u{0}": 1}),
            json!({"a": "x\u{0}"}),
            json!({"a": [{"b": ["\u{0}"]}]}),
        ] {
            assert_eq!(
                check_storable_json("metadata", &bad).map_err(|e| e.field),
                Err("metadata"),
                "{bad}"
            );
        }
    }
}
