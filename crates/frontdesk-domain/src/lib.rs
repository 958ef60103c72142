//! Frontdesk's domain: the models partners and agents see, the rules that keep them valid,
//! and pure computations (Flashback, credential hashing). No I/O, no async runtime, no web or
//! database types, so other services can reuse it.

pub mod access;
pub mod agent;
pub mod conversation;
pub mod credentials;
pub mod customer;
pub mod detail;
pub mod error;
pub mod event;
pub mod flashback;
pub mod handoff;
pub mod ids;
pub mod inbound;
pub mod limits;
pub mod message;
pub mod origin;
pub mod page;
pub mod partner;
pub mod patch;
pub mod summary;
pub mod text;
pub mod timestamp;

pub use access::Viewer;
pub use agent::{Agent, AgentSignup, NewAgent};
pub use conversation::{Conversation, ConversationStatus};
pub use credentials::{Secret, SecretHash};
pub use customer::{Customer, CustomerChanges, CustomerId, CustomerPatch};
pub use detail::ConversationDetail;
pub use error::{DomainError, ValidationError};
pub use event::{Audience, Event, Recipient, Typing};
pub use flashback::{EventDate, Flashback, FlashbackProfile};
pub use ids::{AgentId, ConversationId, Cursor, MessageId};
pub use message::{
    AgentMessageRequest, Message, MessageDraft, Metadata, PartnerMessageRequest, Sender,
};
pub use page::Page;
pub use partner::{Partner, PartnerId, PartnerRegistration};
pub use patch::Patch;
pub use timestamp::Timestamp;
