//! The load generator's HTTP/1.1 client: one keep-alive connection per simulated client, on
//! hyper directly. It shares two cores with the server, so it must cost as little as possible
//! per request (no pool, no redirects, no decompression).

use std::net::SocketAddr;

use anyhow::{anyhow, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub struct HttpConn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// Connections opened, the first included (a reconnect follows a dropped connection).
    pub connects: u64,
}

impl HttpConn {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            sender: None,
            connects: 0,
        }
    }

    async fn connect(&mut self) -> Result<()> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        // Requests are small and latency is measured: never wait for Nagle.
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        // The connection task ends when the sender is dropped or the server closes.
        tokio::spawn(connection);
        self.sender = Some(sender);
        self.connects += 1;
        Ok(())
    }

    /// One request; the body must be JSON. A transport error drops the connection (the next
    /// call reconnects) and is returned: it is never retried, so a POST is sent at most once.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            self.connect().await?;
        }
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .context("building a request")?;
        let sender = self
            .sender
            .as_mut()
            .ok_or_else(|| anyhow!("no connection"))?;
        let outcome = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, bytes))
        }
        .await;
        match outcome {
            Ok(answer) => Ok(answer),
            Err(error) => {
                self.sender = None;
                Err(anyhow!(error).context(path.to_owned()))
            }
        }
    }
}
