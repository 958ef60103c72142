//! A client's frames (`message`, `typing`, `read`, `ping`): parsed, handed to the use case
//! in `app::`, and answered (`ack`, `pong`, `error`). Rejections become `error` frames; the
//! socket stays open.

use std::time::Instant;

use frontdesk_domain::event::plain_frame;
use frontdesk_domain::inbound::ClientFrame;
use serde::Serialize;
use serde_json::json;

use super::connection::{Connection, End};
use crate::app;
use crate::error::{ApiError, ErrorCode};

impl Connection {
    /// One client frame. Rejections become `error` frames; the socket stays open.
    pub(super) async fn handle(&mut self, text: &str) -> Result<(), End> {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(error) => {
                return self
                    .error(ErrorCode::MalformedFrame, &error.to_string(), None)
                    .await
            }
        };
        match frame {
            ClientFrame::Ping => self.send(plain_frame("pong", &json!({}))).await,
            ClientFrame::Message(message) => {
                let client_message_id = message.client_message_id.clone();
                match app::messages::send_frame(&self.state, &self.recipient, message).await {
                    Ok(appended) => {
                        self.typing.message_sent(appended.message.conversation_id);
                        let ack = Ack {
                            client_message_id,
                            message: &appended.message,
                        };
                        self.send(plain_frame("ack", &ack)).await
                    }
                    Err(error) => self.api_error(&error, client_message_id).await,
                }
            }
            ClientFrame::Typing(typing) => {
                // Repeats are dropped silently: the peer's indicator already shows them.
                if !self
                    .typing
                    .admit(typing.conversation_id, typing.is_typing, Instant::now())
                {
                    return Ok(());
                }
                let origin = self.state.hub.origin(self.subscription.id);
                match app::typing::relay(&self.state, &self.recipient, origin, typing).await {
                    Ok(()) => Ok(()),
                    Err(error) => self.api_error(&error, None).await,
                }
            }
            ClientFrame::Read(read) => {
                let marked = app::read::mark(
                    &self.state,
                    &self.viewer,
                    read.conversation_id,
                    read.message_id,
                )
                .await;
                match marked {
                    Ok(_) => Ok(()),
                    Err(error) => self.api_error(&error, None).await,
                }
            }
        }
    }

    async fn api_error(
        &mut self,
        error: &ApiError,
        client_message_id: Option<String>,
    ) -> Result<(), End> {
        self.error(error.code, &error.message, client_message_id)
            .await
    }

    pub(super) async fn error(
        &mut self,
        code: ErrorCode,
        message: &str,
        client_message_id: Option<String>,
    ) -> Result<(), End> {
        let payload = ErrorPayload {
            code: code.as_str(),
            message,
            client_message_id,
        };
        self.send(plain_frame("error", &payload)).await
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ack<'a> {
    client_message_id: Option<String>,
    message: &'a frontdesk_domain::Message,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorPayload<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_message_id: Option<String>,
}
