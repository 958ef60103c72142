//! The use cases, one file per family. Both transports call them: `routes/` parses HTTP and
//! maps the result, `realtime/` parses frames and maps the result. A use case takes the
//! authenticated caller and a typed request, applies the domain's rules through the store, and
//! returns a domain value or an `ApiError` (the one error vocabulary, `error.rs`).

pub(crate) mod agents;
pub(crate) mod conversations;
pub(crate) mod customers;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod identity;
pub(crate) mod messages;
pub(crate) mod partners;
pub(crate) mod read;
pub(crate) mod replies;
pub(crate) mod typing;
