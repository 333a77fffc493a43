//! DNS resolver for the outbound client: the addresses it returns are the ones connected to, so checking them here defeats DNS rebinding.

use std::future::Future;
use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::OutboundPolicy;

tokio::task_local! {
    /// Port of the request being sent: reqwest hands the resolver only the host name.
    static HOP_PORT: u16;
}

/// Runs a request future with its URL's port visible to the resolver.
pub(super) async fn with_port<F: Future>(port: u16, request: F) -> F::Output {
    HOP_PORT.scope(port, request).await
}

/// Resolves with the system resolver and refuses the name unless every address passes the policy.
pub(super) struct GuardResolver {
    policy: OutboundPolicy,
}

impl GuardResolver {
    pub(super) fn new(policy: OutboundPolicy) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        // Read now, while the requesting task is being polled. Without it the ComfyUI check
        // matches a ComfyUI address on any port, which only errs on the safe side.
        let port = HOP_PORT.try_with(|p| *p).ok().filter(|p| *p != 0);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), port.unwrap_or(0)))
                    .await?
                    .collect();
            if let Err(err) = policy.check_resolved(&host, port, &addrs).await {
                tracing::debug!(%host, %err, "outbound name refused");
                return Err(err.into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}
