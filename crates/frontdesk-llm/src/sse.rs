//! Server-sent events as chat-completions streams use them: `data: <json>` lines, events
//! separated by a blank line, `data: [DONE]` at the end.

/// Splits a byte stream into the `data` payloads of its events, across chunk boundaries.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: Vec<u8>,
    data: String,
}

/// One event's data, or the end marker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SseItem {
    Data(String),
    Done,
}

impl SseParser {
    /// Feeds a chunk; returns the events it completed.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Vec<SseItem> {
        self.buffer.extend_from_slice(chunk);
        let mut items = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    let data = std::mem::take(&mut self.data);
                    items.push(if data == "[DONE]" {
                        SseItem::Done
                    } else {
                        SseItem::Data(data)
                    });
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
            // Comments (`:`), `event:`, `id:` and `retry:` lines carry nothing we use.
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_across_chunks_and_done_ends_them() {
        let mut parser = SseParser::default();
        assert_eq!(parser.feed(b"data: {\"a\""), vec![]);
        assert_eq!(
            parser.feed(b":1}\n\n: keep-alive\n\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n"),
            vec![
                SseItem::Data("{\"a\":1}".into()),
                SseItem::Data("{\"b\":2}".into()),
                SseItem::Done
            ]
        );
    }
}
