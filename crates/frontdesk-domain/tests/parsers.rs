//! Everything the network hands the domain, generated (proptest, on stable Rust; issue 17's
//! "fuzzed parsers"): WebSocket frames, message drafts with metadata, customer ids,
//! birthdates, paging. None may panic; whatever is accepted keeps the documented limits, and a
//! refusal names its field. The cases a failure shrank to are kept in
//! `proptest-regressions/` and run first next time.

use frontdesk_domain::customer::parse_birthdate;
use frontdesk_domain::inbound::ClientFrame;
use frontdesk_domain::limits::{CLIENT_MESSAGE_ID_MAX_CHARS, CONTENT_MAX_CHARS};
use frontdesk_domain::{
    ConversationId, CustomerId, MessageDraft, MessageId, Metadata, Page, PartnerId, Recipient,
    Sender,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use time::macros::date;

/// Arbitrary JSON, a few levels deep, with the strings and numbers that break parsers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,40}".prop_map(Value::String),
        Just(Value::String("\u{0}".into())),
        Just(Value::from(u64::MAX)),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A frame that is mostly right: a known type, the payload's real fields, values of any kind.
fn frame_like() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just("message"),
        Just("typing"),
        Just("read"),
        Just("ping"),
        Just("MESSAGE"),
        Just(""),
    ];
    let field = prop_oneof![
        Just("conversationId"),
        Just("content"),
        Just("senderId"),
        Just("isFromAgent"),
        Just("metadata"),
        Just("clientMessageId"),
        Just("isTyping"),
        Just("messageId"),
        Just("extra"),
    ];
    (kind, prop::collection::btree_map(field, json_value(), 0..7)).prop_map(|(kind, payload)| {
        let payload: serde_json::Map<String, Value> = payload
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        json!({"type": kind, "payload": payload})
    })
}

fn customer() -> Recipient {
    Recipient::Customer(PartnerId(1), CustomerId::from_stored("ann".into()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_as_a_frame_are_parsed_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<ClientFrame>(&bytes);
    }

    #[test]
    fn any_json_as_a_frame_is_parsed_or_refused(value in json_value()) {
        let _ = serde_json::from_value::<ClientFrame>(value);
    }

    /// A frame that parses becomes a draft within the limits, or a refusal; never a panic, and
    /// never a draft the customer did not send as itself.
    #[test]
    fn a_message_frame_that_parses_keeps_the_limits(frame in frame_like()) {
        if let Ok(ClientFrame::Message(message)) = serde_json::from_value::<ClientFrame>(frame) {
            if let Ok(draft) = message.into_draft(&customer()) {
                prop_assert_eq!(draft.sender, Sender::Customer(CustomerId::from_stored("ann".into())));
                let chars = draft.content.chars().count();
                prop_assert!((1..=CONTENT_MAX_CHARS).contains(&chars));
                prop_assert!(!draft.content.trim().is_empty());
                prop_assert!(!draft.content.contains('\0'));
                if let Some(id) = &draft.client_message_id {
                    prop_assert!((1..=CLIENT_MESSAGE_ID_MAX_CHARS).contains(&id.chars().count()));
                }
            }
        }
    }

    #[test]
    fn drafts_refuse_what_breaks_the_limits(content in "\\PC{0,64}|\\s{0,4}|.{0,3}\u{0}.{0,3}", metadata in json_value()) {
        let metadata: Option<Metadata> = match metadata {
            Value::Object(map) => Some(map),
            _ => None,
        };
        let draft = MessageDraft::new(
            ConversationId(1),
            Sender::Customer(CustomerId::from_stored("ann".into())),
            content.clone(),
            metadata,
            None,
        );
        match draft {
            Ok(draft) => {
                prop_assert!(!draft.content.trim().is_empty());
                prop_assert!(!draft.content.contains('\0'));
            }
            Err(error) => prop_assert!(error.field.starts_with("content") || error.field.starts_with("metadata"), "{:?}", error),
        }
    }

    #[test]
    fn customer_ids_accepted_keep_the_documented_alphabet(text in "\\PC{0,140}|[A-Za-z0-9._:@+-]{0,140}") {
        if let Ok(id) = CustomerId::parse(&text) {
            let id = id.as_str();
            prop_assert!((1..=128).contains(&id.chars().count()));
            prop_assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@+".contains(c)), "{}", id);
            prop_assert!(id != "bot" && !id.starts_with("agent-"));
        }
    }

    #[test]
    fn birthdates_accepted_are_real_days_in_range(text in "\\PC{0,12}|[0-9]{1,5}-[0-9]{1,3}-[0-9]{1,3}") {
        let today = date!(2026 - 12 - 01);
        if let Ok(day) = parse_birthdate(&text, today) {
            prop_assert!(day >= date!(1900 - 01 - 01) && day <= today);
            prop_assert_eq!(frontdesk_domain::customer::format_birthdate(day), text);
        }
    }

    #[test]
    fn pages_accepted_stay_in_bounds(after in proptest::option::of(any::<i64>()), limit in proptest::option::of(any::<i64>())) {
        if let Ok(page) = Page::new(after.map(MessageId), limit) {
            prop_assert!(page.after.0 >= 0);
            prop_assert!((1..=1_000).contains(&page.limit));
        }
    }
}
