//! Refuses an oversized WebSocket frame from its header, before its payload is buffered.
//!
//! actix's frame parser waits for a whole frame before it compares its length with the limit,
//! and actix-ws reads every chunk the client sends into that wait: a header declaring 2^40
//! bytes followed by a steady stream would grow the server's memory without bound. This
//! adapter sits between the request's byte stream and actix-ws. It follows the RFC 6455 frame
//! headers as the bytes pass (it never holds more than one header, 14 bytes) and fails the
//! stream as soon as a header declares more than the limit, or a fragmented message's
//! fragments add up to more. The socket then closes with 1009 and stops reading.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::dev;
use actix_web::error::PayloadError;
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, HttpRequest};
use futures_util::Stream;

/// Fragments one message may have: empty continuation frames cost nothing to send but would
/// otherwise keep a message open for ever.
pub const MAX_FRAGMENTS: u32 = 1024;

/// The longest header: 2 bytes, a 64-bit length, a 4-byte mask.
const MAX_HEADER: usize = 14;
/// RFC 6455, 5.5: control frames carry at most 125 bytes and are never fragmented.
const MAX_CONTROL_PAYLOAD: u64 = 125;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;

/// What the guard refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// A frame, or a fragmented message, longer than the limit: close with 1009.
    TooLarge,
    /// A header no client may send (a long or fragmented control frame, a reserved opcode, a
    /// continuation out of place): close with 1002.
    Protocol(&'static str),
}

impl Violation {
    /// As the payload error actix-ws passes on; `TooLarge` is `PayloadError::Overflow`, which
    /// [`is_too_large`] recognises.
    fn into_payload_error(self) -> PayloadError {
        match self {
            Violation::TooLarge => PayloadError::Overflow,
            Violation::Protocol(why) => {
                PayloadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, why))
            }
        }
    }
}

/// Whether an error from actix-ws's stream is this guard's `TooLarge` (actix-ws wraps the
/// payload error in an `io::Error`).
pub fn is_too_large(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<PayloadError>())
        .is_some_and(|inner| matches!(inner, PayloadError::Overflow))
}

/// The request body `body`, guarded: what goes to `actix_ws::handle`.
pub async fn guarded(
    request: &HttpRequest,
    body: web::Payload,
    limit: usize,
) -> Result<web::Payload, actix_web::Error> {
    let guard: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(FrameGuard::new(body.into_inner(), limit));
    web::Payload::from_request(request, &mut dev::Payload::from(guard)).await
}

/// Follows frame headers across chunks, whatever their boundaries.
#[derive(Debug)]
pub struct HeaderTracker {
    limit: u64,
    header: [u8; MAX_HEADER],
    header_len: usize,
    /// Payload bytes of the current frame still to pass.
    remaining: u64,
    /// Bytes so far and fragments of a fragmented message in progress.
    message: Option<(u64, u32)>,
}

impl HeaderTracker {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit as u64,
            header: [0; MAX_HEADER],
            header_len: 0,
            remaining: 0,
            message: None,
        }
    }

    /// Follows `bytes`, the next bytes from the client; fails at the first header refused.
    pub fn follow(&mut self, bytes: &[u8]) -> Result<(), Violation> {
        let mut at = 0;
        while at < bytes.len() {
            if self.remaining > 0 {
                let left = (bytes.len() - at) as u64;
                let skip = self.remaining.min(left);
                self.remaining -= skip;
                // `skip` is at most `left`, a usize.
                at += skip as usize;
                continue;
            }
            self.header[self.header_len] = bytes[at];
            self.header_len += 1;
            at += 1;
            if header_size(&self.header[..self.header_len]) == Some(self.header_len) {
                self.remaining = self.admit()?;
                self.header_len = 0;
            }
        }
        Ok(())
    }

    /// Checks a complete header; the length of its payload.
    fn admit(&mut self) -> Result<u64, Violation> {
        let header = &self.header[..self.header_len];
        let fin = header[0] & 0x80 != 0;
        let opcode = header[0] & 0x0f;
        let length = payload_length(header);
        if opcode & 0x08 != 0 {
            if !fin || length > MAX_CONTROL_PAYLOAD {
                return Err(Violation::Protocol("control frames are short and whole"));
            }
            return Ok(length);
        }
        match (opcode, self.message) {
            (OP_TEXT | OP_BINARY, None) => {
                if length > self.limit {
                    return Err(Violation::TooLarge);
                }
                if !fin {
                    self.message = Some((length, 1));
                }
            }
            (OP_CONTINUATION, Some((so_far, fragments))) => {
                let total = so_far.saturating_add(length);
                if total > self.limit || fragments >= MAX_FRAGMENTS {
                    return Err(Violation::TooLarge);
                }
                self.message = if fin {
                    None
                } else {
                    Some((total, fragments + 1))
                };
            }
            (OP_TEXT | OP_BINARY, Some(_)) => {
                return Err(Violation::Protocol("a new message inside a fragmented one"))
            }
            (OP_CONTINUATION, None) => {
                return Err(Violation::Protocol("a continuation without a message"))
            }
            _ => return Err(Violation::Protocol("reserved opcode")),
        }
        Ok(length)
    }
}

/// The size of the header that starts with `start`, once its second byte says.
fn header_size(start: &[u8]) -> Option<usize> {
    let second = *start.get(1)?;
    let length_bytes = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask_bytes = if second & 0x80 != 0 { 4 } else { 0 };
    Some(2 + length_bytes + mask_bytes)
}

/// The payload length a complete header declares.
fn payload_length(header: &[u8]) -> u64 {
    match header[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => header[2..10]
            .iter()
            .fold(0u64, |length, byte| (length << 8) | u64::from(*byte)),
        short => u64::from(short),
    }
}

/// The request's byte stream, failed at the first refused header; it ends after that.
pub struct FrameGuard<S> {
    inner: S,
    tracker: HeaderTracker,
    failed: bool,
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, limit: usize) -> Self {
        Self {
            inner,
            tracker: HeaderTracker::new(limit),
            failed: false,
        }
    }
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => match this.tracker.follow(&bytes) {
                Ok(()) => Poll::Ready(Some(Ok(bytes))),
                Err(violation) => {
                    // The frames before it in this chunk go too: the socket is closing.
                    this.failed = true;
                    Poll::Ready(Some(Err(violation.into_payload_error())))
                }
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    const LIMIT: usize = 64 * 1024;

    /// A masked client frame header (and payload, when given).
    fn header(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        match length {
            0..=125 => frame.push(0x80 | length as u8),
            126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(length as u16).to_be_bytes());
            }
            _ => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&length.to_be_bytes());
            }
        }
        frame.extend_from_slice(&[1, 2, 3, 4]);
        frame
    }

    fn frame(fin: bool, opcode: u8, length: usize) -> Vec<u8> {
        let mut frame = header(fin, opcode, length as u64);
        frame.extend(std::iter::repeat_n(b'x', length));
        frame
    }

    fn follow_in_pieces(bytes: &[u8], piece: usize) -> Result<(), Violation> {
        let mut tracker = HeaderTracker::new(LIMIT);
        bytes
            .chunks(piece)
            .try_for_each(|chunk| tracker.follow(chunk))
    }

    #[test]
    fn frames_within_the_limit_pass_whatever_the_chunk_boundaries() {
        let mut bytes = Vec::new();
        bytes.extend(frame(true, OP_TEXT, 5));
        bytes.extend(frame(true, OP_TEXT, 300));
        bytes.extend(frame(true, OP_BINARY, LIMIT));
        bytes.extend(frame(true, 0x9, 125));
        bytes.extend(frame(false, OP_TEXT, 10));
        bytes.extend(frame(true, 0xA, 3));
        bytes.extend(frame(true, OP_CONTINUATION, LIMIT - 10));
        bytes.extend(frame(true, 0x8, 2));
        for piece in [1, 2, 3, 7, 14, 1000, bytes.len()] {
            assert_eq!(follow_in_pieces(&bytes, piece), Ok(()), "pieces of {piece}");
        }
    }

    #[test]
    fn a_frame_one_byte_over_the_limit_is_refused() {
        let bytes = header(true, OP_TEXT, LIMIT as u64 + 1);
        assert_eq!(follow_in_pieces(&bytes, 1), Err(Violation::TooLarge));
    }

    #[test]
    fn a_huge_declared_length_is_refused_from_the_header_alone() {
        for length in [1u64 << 40, u64::MAX, 0x1_0001] {
            let bytes = header(true, OP_BINARY, length);
            assert_eq!(follow_in_pieces(&bytes, 1), Err(Violation::TooLarge));
        }
    }

    #[test]
    fn fragments_adding_up_past_the_limit_are_refused_at_the_fragment_that_does() {
        let mut tracker = HeaderTracker::new(LIMIT);
        assert_eq!(tracker.follow(&frame(false, OP_TEXT, 40_000)), Ok(()));
        assert_eq!(
            tracker.follow(&frame(false, OP_CONTINUATION, 20_000)),
            Ok(())
        );
        let last = header(true, OP_CONTINUATION, 10_000);
        assert_eq!(tracker.follow(&last), Err(Violation::TooLarge));
    }

    #[test]
    fn a_finished_message_does_not_count_towards_the_next() {
        let mut bytes = Vec::new();
        for _ in 0..4 {
            bytes.extend(frame(false, OP_TEXT, 30_000));
            bytes.extend(frame(true, OP_CONTINUATION, 30_000));
        }
        assert_eq!(follow_in_pieces(&bytes, 4096), Ok(()));
    }

    #[test]
    fn endless_empty_fragments_are_refused() {
        let mut tracker = HeaderTracker::new(LIMIT);
        assert_eq!(tracker.follow(&frame(false, OP_TEXT, 0)), Ok(()));
        let outcome = (0..MAX_FRAGMENTS).try_for_each(|_| tracker.follow(&frame(false, 0, 0)));
        assert_eq!(outcome, Err(Violation::TooLarge));
    }

    #[test]
    fn malformed_headers_are_protocol_errors() {
        let long_ping = header(true, 0x9, 126);
        let fragmented_ping = header(false, 0x9, 1);
        let stray_continuation = header(true, OP_CONTINUATION, 1);
        let reserved = header(true, 0x3, 1);
        let mut nested = frame(false, OP_TEXT, 1);
        nested.extend(header(true, OP_TEXT, 1));
        for bytes in [
            long_ping,
            fragmented_ping,
            stray_continuation,
            reserved,
            nested,
        ] {
            assert!(matches!(
                follow_in_pieces(&bytes, 1),
                Err(Violation::Protocol(_))
            ));
        }
    }

    #[tokio::test]
    async fn the_stream_fails_once_then_ends() {
        let mut chunks = frame(true, OP_TEXT, 3);
        chunks.extend(header(true, OP_TEXT, 1 << 40));
        let source = futures_util::stream::iter(vec![
            Ok(Bytes::from(frame(true, OP_TEXT, 3))),
            Ok(Bytes::from(chunks)),
            Ok(Bytes::from_static(b"more")),
        ]);
        let mut guard = FrameGuard::new(source, LIMIT);
        assert!(matches!(guard.next().await, Some(Ok(_))));
        let failed = guard.next().await;
        assert!(matches!(failed, Some(Err(PayloadError::Overflow))));
        let wrapped = std::io::Error::other(PayloadError::Overflow);
        assert!(is_too_large(&wrapped));
        assert!(!is_too_large(&std::io::Error::other("other")));
        assert!(guard.next().await.is_none());
    }

    /// Generated streams (proptest; issue 17's fuzzing of the frame decoder, on stable Rust).
    mod generated {
        use proptest::prelude::*;

        use super::*;

        /// Feeds `bytes` in the chunks `cuts` makes; the first refusal, if any.
        fn follow_in_chunks(bytes: &[u8], cuts: &[usize]) -> Result<(), Violation> {
            let mut tracker = HeaderTracker::new(LIMIT);
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut start = 0;
            for cut in cuts.into_iter().chain(std::iter::once(bytes.len())) {
                tracker.follow(&bytes[start..cut])?;
                start = cut;
            }
            Ok(())
        }

        /// A well-formed client frame: a whole text, binary or control frame within the limits.
        fn good_frame() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                (0usize..2_000).prop_map(|n| frame(true, OP_TEXT, n)),
                (0usize..2_000).prop_map(|n| frame(true, OP_BINARY, n)),
                (0usize..=125).prop_map(|n| frame(true, 0x9, n)),
                (0usize..=125).prop_map(|n| frame(true, 0xA, n)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Whatever the bytes and however the network cuts them, the verdict is the same
            /// and nothing panics.
            #[test]
            fn the_verdict_does_not_depend_on_chunk_boundaries(
                bytes in prop::collection::vec(any::<u8>(), 0..300),
                cuts in prop::collection::vec(any::<usize>(), 0..8),
            ) {
                let whole = HeaderTracker::new(LIMIT).follow(&bytes);
                prop_assert_eq!(follow_in_chunks(&bytes, &cuts), whole);
            }

            /// Any sequence of well-formed frames passes, in any chunking.
            #[test]
            fn well_formed_frames_pass(
                frames in prop::collection::vec(good_frame(), 1..6),
                cuts in prop::collection::vec(any::<usize>(), 0..8),
            ) {
                let bytes = frames.concat();
                prop_assert_eq!(follow_in_chunks(&bytes, &cuts), Ok(()));
            }

            /// A data frame declaring more than the limit is refused from its header alone,
            /// whatever follows and however it is cut.
            #[test]
            fn an_oversized_header_is_refused_at_once(
                length in (LIMIT as u64 + 1)..=u64::MAX,
                binary in any::<bool>(),
                tail in prop::collection::vec(any::<u8>(), 0..64),
                cuts in prop::collection::vec(any::<usize>(), 0..4),
            ) {
                let mut bytes = header(true, if binary { OP_BINARY } else { OP_TEXT }, length);
                bytes.extend(tail);
                prop_assert_eq!(follow_in_chunks(&bytes, &cuts), Err(Violation::TooLarge));
            }
        }
    }
}
