//! Ending a WebSocket's TCP connection when its task is done, at once.
//!
//! Without this, actix-http decides when the connection goes, and decides badly for
//! WebSockets: once the response body (the server's frames) ends it flushes what it holds,
//! for ever if the peer never reads, and then lingers up to a second for the peer to close
//! first, while an RFC 6455 client waits for the server to close first. So each connection's
//! socket is remembered when it is accepted ([`remember_socket`]), and the WebSocket task,
//! once its close frame has been written ([`BodyWatch`]), shuts the socket down itself
//! ([`TcpHandle`]); one that cannot take the close frame in time is reset.

use std::any::Any;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::Extensions;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use socket2::SockRef;
use tokio::sync::oneshot;

/// A duplicate of a connection's socket descriptor. A duplicate, not the number: it stays
/// valid (the number is never reused for another connection) for as long as it is held; it
/// costs one descriptor per open connection.
#[derive(Clone)]
pub struct TcpHandle(Arc<OwnedFd>);

/// `HttpServer::on_connect`: keeps a [`TcpHandle`] in the connection's data.
pub fn remember_socket(connection: &dyn Any, data: &mut Extensions) {
    let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    match tcp.as_fd().try_clone_to_owned() {
        Ok(fd) => {
            data.insert(TcpHandle(Arc::new(fd)));
        }
        // Only prompt teardown is lost: actix closes the connection its own way.
        Err(error) => tracing::debug!(%error, "cannot duplicate a connection's socket"),
    }
}

impl TcpHandle {
    /// After the close frame went out: no more reading or writing. The peer gets what the
    /// kernel already holds, then the end of the stream; actix sees it and lets go.
    pub fn finish(&self) {
        let _ = SockRef::from(self.0.as_ref()).shutdown(Shutdown::Both);
    }

    /// No more reading: actix sees the end of the stream, answers what it is answering and
    /// closes, instead of draining a body nobody will read for as long as the peer sends it.
    pub fn stop_reading(&self) {
        let _ = SockRef::from(self.0.as_ref()).shutdown(Shutdown::Read);
    }

    /// For a peer that does not read: the connection is reset, dropping whatever it would
    /// not take (kernel buffers included), and actix's pending write fails, so it lets go.
    pub fn abort(&self) {
        let socket = SockRef::from(self.0.as_ref());
        let _ = socket.set_linger(Some(Duration::ZERO));
        let _ = socket.shutdown(Shutdown::Both);
    }
}

/// The WebSocket response body, reporting when actix-http drops it: it has taken the last
/// frame (the close frame) and tried to write it, so shutting the socket down now loses
/// nothing the peer would read.
pub struct BodyWatch {
    inner: BoxBody,
    dropped: Option<oneshot::Sender<()>>,
}

impl BodyWatch {
    /// `response` with its body watched, and what resolves once the body is dropped.
    pub fn wrap(response: HttpResponse) -> (HttpResponse, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let response = response
            .map_body(|_, body| Self {
                inner: body,
                dropped: Some(tx),
            })
            .map_into_boxed_body();
        (response, rx)
    }
}

impl MessageBody for BodyWatch {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl Drop for BodyWatch {
    fn drop(&mut self) {
        if let Some(dropped) = self.dropped.take() {
            let _ = dropped.send(());
        }
    }
}
