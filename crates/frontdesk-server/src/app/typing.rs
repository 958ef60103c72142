//! Typing indicators: relayed to the conversation's other side on every instance, never
//! stored.

use frontdesk_domain::{Audience, Recipient, Typing};
use frontdesk_store::{Origin, TypingSignal};

use crate::error::ApiError;
use crate::state::AppState;

/// `origin` names the sending connection, which does not hear its own typing.
pub(crate) async fn relay(
    state: &AppState,
    speaker: &Recipient,
    origin: Origin,
    mut typing: Typing,
) -> Result<(), ApiError> {
    typing.is_agent = matches!(speaker, Recipient::Agent(_));
    let viewer = speaker.viewer();
    let conversation = state
        .store
        .conversation(&viewer, typing.conversation_id)
        .await?;
    viewer.check_activity(&conversation)?;
    let audience = Audience::conversation(&conversation);
    state
        .store
        .publish_typing(TypingSignal::new(origin, &audience, typing))
        .await?;
    Ok(())
}
