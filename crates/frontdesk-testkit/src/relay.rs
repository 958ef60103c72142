//! A loopback TCP relay in front of a server, for the browser tests: it cuts every connection
//! (a network outage as the browser sees it), or only the WebSockets, and can point at a
//! restarted server on another port.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Server;

/// A loopback TCP relay in front of the server. `cut` drops every connection through it and
/// refuses new ones until `restore`: a network outage as the browser sees it.
pub struct Relay {
    pub addr: SocketAddr,
    state: Arc<Mutex<RelayState>>,
}

struct RelayState {
    down: bool,
    /// Only WebSocket connections are cut and refused; plain HTTP still passes.
    sockets_down: bool,
    /// Both ends of every relayed connection, each with whether it is a WebSocket.
    open: Vec<(bool, TcpStream)>,
    /// The server behind the relay; `point_at` moves it to a restarted one.
    upstream: SocketAddr,
}

impl Relay {
    pub fn start(server: &Server) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("relay: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("relay: {e}"));
        let state = Arc::new(Mutex::new(RelayState {
            down: false,
            sockets_down: false,
            open: Vec::new(),
            upstream: server.addr(),
        }));
        let shared = Arc::clone(&state);
        // Blocking threads keep this free of extra dependencies; the test process ends them.
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let shared = Arc::clone(&shared);
                // A thread each: telling a WebSocket apart waits for the request's first bytes.
                std::thread::spawn(move || relay_one(&client, &shared));
            }
        });
        Self { addr, state }
    }

    pub fn cut(&self) {
        let Ok(mut state) = self.state.lock() else {
            panic!("relay state poisoned")
        };
        state.down = true;
        for (_, stream) in state.open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Drops the WebSocket and refuses new ones until `restore`, while REST still works: the
    /// console hears nothing live but its actions reach the server.
    pub fn cut_websockets(&self) {
        let Ok(mut state) = self.state.lock() else {
            panic!("relay state poisoned")
        };
        state.sockets_down = true;
        state.open.retain(|(websocket, stream)| {
            if *websocket {
                let _ = stream.shutdown(Shutdown::Both);
            }
            !websocket
        });
    }

    /// New connections go to `server` (a restarted one, on another port).
    pub fn point_at(&self, server: &Server) {
        let Ok(mut state) = self.state.lock() else {
            panic!("relay state poisoned")
        };
        state.upstream = server.addr();
    }

    pub fn restore(&self) {
        let Ok(mut state) = self.state.lock() else {
            panic!("relay state poisoned")
        };
        state.down = false;
        state.sockets_down = false;
    }
}

/// Relays one browser connection, unless the relay is down for it.
fn relay_one(client: &TcpStream, shared: &Mutex<RelayState>) {
    let websocket = is_websocket(client);
    let Ok(mut guard) = shared.lock() else { return };
    if guard.down || (websocket && guard.sockets_down) {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(server) = TcpStream::connect(guard.upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    for stream in [client, &server] {
        if let Ok(copy) = stream.try_clone() {
            guard.open.push((websocket, copy));
        }
    }
    drop(guard);
    pipe(client, &server);
    pipe(&server, client);
}

/// Whether the request on `client` is a WebSocket handshake (`GET /ws?...`), by peeking.
fn is_websocket(client: &TcpStream) -> bool {
    const START: &[u8] = b"GET /ws?";
    let mut start = [0u8; 8];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.peek(&mut start) {
            Ok(n) if n >= START.len() || n == 0 => return start[..n] == *START,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => return false,
        }
    }
}

/// Copies `from` to `to` on a thread until either side ends.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}
