//! Sending messages (partner, customer, agent; REST and WebSocket) and reading them back.
//! Every message goes through `append`.

use frontdesk_domain::inbound::OutgoingMessage;
use frontdesk_domain::{
    Agent, AgentMessageRequest, ConversationId, ConversationStatus, Message, MessageDraft, Page,
    PartnerMessageRequest, Recipient, Viewer,
};
use frontdesk_store::Appended;

use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/partner/messages`: a partner's server for one of its customers, or that
/// customer's browser.
pub(crate) async fn send(
    state: &AppState,
    caller: &Viewer,
    request: PartnerMessageRequest,
) -> Result<Appended, ApiError> {
    let draft = request.into_draft()?;
    append(state, caller, &draft).await
}

/// An agent's reply, sent as `agent-<id>`.
pub(crate) async fn send_as_agent(
    state: &AppState,
    agent: &Agent,
    conversation: ConversationId,
    request: AgentMessageRequest,
) -> Result<Appended, ApiError> {
    let draft = request.into_draft(conversation, agent.id)?;
    append(state, &Viewer::Agent(agent.id), &draft).await
}

/// A WebSocket `message` frame: the connection says who speaks.
pub(crate) async fn send_frame(
    state: &AppState,
    speaker: &Recipient,
    message: OutgoingMessage,
) -> Result<Appended, ApiError> {
    let draft = message.into_draft(speaker)?;
    append(state, &speaker.viewer(), &draft).await
}

/// Stores a message durably; it is announced (as a `message` event) by the same commit.
async fn append(
    state: &AppState,
    viewer: &Viewer,
    draft: &MessageDraft,
) -> Result<Appended, ApiError> {
    let appended = state.store.append_message(viewer, draft).await?;
    if awaits_reply(&appended) {
        // A customer spoke and no agent holds the conversation: the commit left a reply job,
        // which the automated responder takes from here, never on this request's time.
        state
            .replies
            .trigger(appended.conversation.id, appended.message.id);
    }
    Ok(appended)
}

/// A customer's new message in a conversation no agent has taken.
fn awaits_reply(appended: &Appended) -> bool {
    appended.created
        && !appended.message.sender.is_agent_side()
        && appended.conversation.status == ConversationStatus::Waiting
        && appended.conversation.agent_id.is_none()
}

/// A page of a conversation's history, oldest first.
pub(crate) async fn history(
    state: &AppState,
    viewer: &Viewer,
    conversation: ConversationId,
    page: Page,
) -> Result<Vec<Message>, ApiError> {
    Ok(state
        .store
        .messages(viewer, conversation, page.after, page.limit)
        .await?)
}
