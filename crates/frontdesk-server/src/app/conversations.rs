//! Conversations: opened by partners, listed, taken and closed by agents.

use frontdesk_domain::summary::ConversationSummary;
use frontdesk_domain::{
    Agent, Conversation, ConversationDetail, ConversationId, ConversationStatus, CustomerId,
    ValidationError, Viewer,
};

use crate::app::identity::ensure_speaks_for;
use crate::error::ApiError;
use crate::state::AppState;

/// The most conversations one agent list returns.
const LIST_LIMIT: i64 = 500;

/// A new waiting conversation (the customer is created on first mention).
pub(crate) async fn open(
    state: &AppState,
    caller: &Viewer,
    customer: &str,
) -> Result<Conversation, ApiError> {
    let (partner, customer) = partners_customer(caller, customer)?;
    Ok(state.store.create_conversation(partner, &customer).await?)
}

/// A customer's conversations, oldest first.
pub(crate) async fn of_customer(
    state: &AppState,
    caller: &Viewer,
    customer: &str,
) -> Result<Vec<Conversation>, ApiError> {
    let (partner, customer) = partners_customer(caller, customer)?;
    Ok(state
        .store
        .customer_conversations(partner, &customer)
        .await?)
}

/// The customer named, if the caller speaks for it.
fn partners_customer(
    caller: &Viewer,
    customer: &str,
) -> Result<(frontdesk_domain::PartnerId, CustomerId), ApiError> {
    let customer = CustomerId::parse(customer)?;
    ensure_speaks_for(caller, &customer)?;
    let partner = caller
        .partner()
        .ok_or_else(|| ApiError::forbidden("partners only"))?;
    Ok((partner, customer))
}

/// The agent queue, newest activity first: by `status` (`waiting|active|closed`), and only
/// the agent's own when `mine`.
pub(crate) async fn queue(
    state: &AppState,
    agent: &Agent,
    status: Option<&str>,
    mine: bool,
) -> Result<Vec<ConversationSummary>, ApiError> {
    let status =
        match status {
            None => None,
            Some(text) => Some(ConversationStatus::parse(text).ok_or_else(|| {
                ValidationError::new("status", "must be waiting, active or closed")
            })?),
        };
    let holder = mine.then_some(agent.id);
    Ok(state
        .store
        .conversation_summaries(status, holder, LIST_LIMIT)
        .await?)
}

/// The conversation with its customer, the customer's partner and Flashback.
pub(crate) async fn detail(
    state: &AppState,
    agent: &Agent,
    id: ConversationId,
) -> Result<ConversationDetail, ApiError> {
    let conversation = state
        .store
        .conversation(&Viewer::Agent(agent.id), id)
        .await?;
    let customer = state
        .store
        .customer(conversation.partner_id, &conversation.customer_id)
        .await?;
    let partner = state.store.partner(conversation.partner_id).await?;
    let handoff = state.store.handoffs(&[id]).await?.remove(&id);
    Ok(ConversationDetail::new(
        conversation,
        customer,
        partner,
        handoff,
    ))
}

/// The agent takes the conversation; another agent's is refused (409).
pub(crate) async fn assign(
    state: &AppState,
    agent: &Agent,
    id: ConversationId,
) -> Result<Conversation, ApiError> {
    Ok(state.store.assign(agent.id, id).await?)
}

pub(crate) async fn close(
    state: &AppState,
    agent: &Agent,
    id: ConversationId,
) -> Result<Conversation, ApiError> {
    Ok(state.store.close(agent.id, agent.is_admin, id).await?)
}
