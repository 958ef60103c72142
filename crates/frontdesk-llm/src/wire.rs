//! The chat-completions wire format, as OpenAI, Ollama, vLLM and llama.cpp's server speak it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The tool the model calls to hand the conversation to a person.
pub const HANDOFF_TOOL: &str = "handoff_to_human";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// The request body.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: &'a [ChatMessage],
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Value>,
    /// The structured-output fallback for servers without function calling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
}

/// `handoff_to_human(reason)`, offered on every call.
pub(crate) fn tools() -> Value {
    json!([{
        "type": "function",
        "function": {
            "name": HANDOFF_TOOL,
            "description": "Hand the conversation to a human support agent: when the customer \
                asks for a person, is upset, or needs something you cannot do.",
            "parameters": {
                "type": "object",
                "properties": {"reason": {"type": "string", "description": "Why, in a few words."}},
                "required": ["reason"]
            }
        }
    }])
}

/// The structured-output fallback (`LlmConfig::tools` off): the model answers with a JSON
/// object `{"reply": text, "handoff": reason or null}`, constrained by a JSON schema (OpenAI,
/// vLLM, llama.cpp's server and Ollama all accept `response_format` of type `json_schema`).
pub(crate) fn reply_format() -> Value {
    json!({
        "type": "json_schema",
        "json_schema": {
            "name": "support_reply",
            "strict": true,
            "schema": {
                "type": "object",
                "properties": {
                    "reply": {"type": "string"},
                    "handoff": {"type": ["string", "null"],
                                "description": "Why a human agent should take over, or null."}
                },
                "required": ["reply", "handoff"],
                "additionalProperties": false
            }
        }
    })
}

/// Reads a fallback answer. A server that ignored the schema and wrote plain text has still
/// answered: the text is the reply.
pub(crate) fn structured(reply: Reply) -> Reply {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        reply: String,
        #[serde(default)]
        handoff: Option<String>,
    }
    match serde_json::from_str::<Answer>(&reply.text) {
        Ok(answer) => Reply {
            text: answer.reply.trim().to_owned(),
            handoff: answer
                .handoff
                .filter(|reason| !reason.trim().is_empty())
                .or(reply.handoff),
            tokens: reply.tokens,
        },
        Err(_) => reply,
    }
}

/// What a model call produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The text for the customer (may be empty when the model only handed off).
    pub text: String,
    /// `Some(reason)` when the model called `handoff_to_human`.
    pub handoff: Option<String>,
    /// Tokens the call cost, when the server says.
    pub tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Completion {
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    pub message: Option<AssistantMessage>,
    #[serde(default)]
    pub delta: Option<AssistantMessage>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AssistantMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ToolCall {
    /// Which call a streamed fragment continues.
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default)]
    pub function: Option<FunctionCall>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct FunctionCall {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Usage {
    #[serde(default)]
    pub total_tokens: Option<u64>,
}

/// The reason of a `handoff_to_human` call from its JSON arguments; a call whose arguments
/// cannot be read still hands off (the model asked for it), with a generic reason.
pub(crate) fn handoff_reason(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|args| args["reason"].as_str().map(str::to_owned))
        .filter(|reason| !reason.trim().is_empty())
        .unwrap_or_else(|| "the assistant asked for a person".to_owned())
}

/// A whole (non-streamed) completion as a `Reply`.
pub(crate) fn reply_of(completion: Completion) -> Result<Reply, String> {
    let choice = completion.choices.into_iter().next().ok_or("no choices")?;
    let message = choice.message.ok_or("no message")?;
    let handoff = message
        .tool_calls
        .iter()
        .filter_map(|call| call.function.as_ref())
        .find(|function| function.name.as_deref() == Some(HANDOFF_TOOL))
        .map(|function| handoff_reason(function.arguments.as_deref().unwrap_or_default()));
    Ok(Reply {
        text: message.content.unwrap_or_default().trim().to_owned(),
        handoff,
        tokens: completion.usage.and_then(|usage| usage.total_tokens),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_with_a_handoff_call_hands_off_with_its_reason() {
        let completion: Completion = serde_json::from_value(json!({
            "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {
                    "name": "handoff_to_human", "arguments": "{\"reason\":\"wants a refund\"}"}}
            ]}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            reply_of(completion),
            Ok(Reply {
                text: String::new(),
                handoff: Some("wants a refund".into()),
                tokens: Some(15)
            })
        );
        assert_eq!(
            handoff_reason("not json"),
            "the assistant asked for a person"
        );
    }

    #[test]
    fn the_structured_fallback_reads_the_reply_and_the_handoff_and_tolerates_plain_text() {
        let text = |text: &str| Reply {
            text: text.into(),
            handoff: None,
            tokens: Some(3),
        };
        assert_eq!(
            structured(text(r#"{"reply":" Hello ","handoff":null}"#)),
            Reply {
                text: "Hello".into(),
                handoff: None,
                tokens: Some(3)
            }
        );
        assert_eq!(
            structured(text(r#"{"reply":"","handoff":"wants a refund"}"#)).handoff,
            Some("wants a refund".into())
        );
        assert_eq!(
            structured(text(r#"{"reply":"ok","handoff":"  "}"#)).handoff,
            None
        );
        assert_eq!(structured(text("just words")), text("just words"));
    }
}
