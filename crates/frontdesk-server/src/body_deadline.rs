//! A deadline on reading a request body: a client trickling its body holds a socket and a
//! worker's attention for as long as it likes otherwise (1,500 registrations sending one byte
//! every 5 s all stayed open). The deadline runs from when the request head was read.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::time::{sleep, Sleep};

use crate::realtime::teardown::TcpHandle;

/// What the JSON extractor sees when the deadline passes (mapped to 408 in extract.rs).
pub const MESSAGE: &str = "request body not received in time";

/// `payload`, failing with a timed-out I/O error once `deadline` has passed. If it is dropped
/// before its end (refused, timed out, or never read), the connection stops reading through
/// `tcp`: actix would otherwise drain the rest, with no deadline, for as long as a client
/// trickles it (a chunked body has no length to bound that).
pub fn with_deadline(payload: Payload, deadline: Duration, tcp: Option<TcpHandle>) -> Payload {
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(Deadline {
        inner: payload,
        timer: Box::pin(sleep(deadline)),
        expired: false,
        ended: false,
        tcp,
    });
    Payload::from(stream)
}

struct Deadline {
    inner: Payload,
    timer: Pin<Box<Sleep>>,
    expired: bool,
    /// The body was read to its end.
    ended: bool,
    tcp: Option<TcpHandle>,
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if !self.ended {
            if let Some(tcp) = &self.tcp {
                tcp.stop_reading();
            }
        }
    }
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            self.ended = item.is_none();
            return Poll::Ready(item);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.expired = true;
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    MESSAGE,
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether `error` is this deadline passing.
pub fn is_deadline(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}
