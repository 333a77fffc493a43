//! The listening socket and its connections, served with a hand-rolled accept loop so that
//! closing a "generation" refuses new connections and drops every open one (HTTP and ws) at once.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

/// One period of listening: the socket, and the token that ends its connections.
#[derive(Debug)]
pub struct Generation {
    slot: Arc<Mutex<Option<TcpListener>>>,
    stop: CancellationToken,
}

impl Generation {
    /// Binds `addr` with SO_REUSEADDR so the same port can be taken again right after a close.
    /// Must run inside a Tokio runtime context.
    pub fn bind(addr: SocketAddr) -> io::Result<(Generation, SocketAddr)> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        let local = listener.local_addr()?;
        let generation = Generation {
            slot: Arc::new(Mutex::new(Some(listener))),
            stop: CancellationToken::new(),
        };
        Ok((generation, local))
    }

    /// The token cancelled when this generation closes; WebSocket sessions watch it.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Starts accepting connections for `router`.
    pub fn serve(&self, router: Router) {
        tokio::spawn(accept_loop(self.slot.clone(), router, self.stop.clone()));
    }

    /// Closes the listening socket now (later connects are refused) and drops every connection.
    pub fn close(&self) {
        // Dropping the listener here, not in the accept task, makes the refusal immediate.
        drop(self.slot.lock().take());
        self.stop.cancel();
    }
}

async fn accept_loop(
    slot: Arc<Mutex<Option<TcpListener>>>,
    router: Router,
    stop: CancellationToken,
) {
    loop {
        let next = poll_fn(|cx| match slot.lock().as_ref() {
            Some(listener) => listener.poll_accept(cx).map(Some),
            None => Poll::Ready(None),
        });
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = next => accepted,
        };
        match accepted {
            None => return,
            Some(Ok((stream, _))) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(stream, router.clone(), stop.clone()));
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, router: Router, stop: CancellationToken) {
    let service = TowerToHyperService::new(router);
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::select! {
        _ = stop.cancelled() => {}
        result = conn => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
    }
}
