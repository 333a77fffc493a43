//! Webhook delivery: every terminal job with a `webhook_url` puts one event in the store's outbox
//! in the transaction of its end (the terminal hook); the [`sender`] loop posts it, signed the
//! Standard Webhooks way, retrying with backoff until a 2xx, a final answer, or `max_age`.

mod payload;
mod retry;
mod sender;
mod signing;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use payload::host_key;
pub use signing::{Signer, check_secret, generate_secret};

use crate::config::{Config, RetentionConfig, WebhookConfig};
use crate::outbound::{Limits, Outbound};
use crate::store::{Store, TerminalHook, now_ms, outbox};

/// Why webhooks could not be set up or signed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A configured secret is malformed.
    #[error("invalid webhook secret: {0}")]
    Secret(String),
    /// The generated secret could not be read or written.
    #[error("webhook secret file {path}: {source}")]
    SecretFile {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A body could not be signed.
    #[error("cannot sign: {0}")]
    Sign(String),
}

struct Shared {
    store: Store,
    outbound: Outbound,
    /// Replaced on reload (secret rotation); the secrets are kept to tell whether they changed.
    signer: RwLock<(Vec<String>, Arc<Signer>)>,
    cfg: WebhookConfig,
    limits: Limits,
    retention: RetentionConfig,
    data_dir: PathBuf,
    public_url: Arc<str>,
    wake: Notify,
}

/// Handle to webhook delivery; cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    shared: Arc<Shared>,
}

impl Webhooks {
    /// Loads (or generates) the secrets; `listen` is the bound address, the default public URL.
    pub fn new(
        config: &Config,
        listen: SocketAddr,
        store: Store,
        outbound: Outbound,
    ) -> Result<Webhooks, WebhookError> {
        let cfg = config.webhooks.clone();
        let secrets = secrets_of(&cfg, &config.data_dir)?;
        let signer = Arc::new(Signer::new(&secrets)?);
        let public_url = cfg
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"));
        Ok(Webhooks {
            shared: Arc::new(Shared {
                store,
                outbound,
                signer: RwLock::new((secrets, signer)),
                limits: Limits {
                    timeout: cfg.timeout,
                    connect_timeout: cfg.connect_timeout,
                    max_bytes: cfg.max_response_bytes,
                    max_redirects: 0,
                },
                cfg,
                retention: config.retention.clone(),
                data_dir: config.data_dir.clone(),
                public_url: public_url.trim_end_matches('/').into(),
                wake: Notify::new(),
            }),
        })
    }

    /// The hook the store runs inside every terminal transition: writes the job's event.
    pub fn terminal_hook(&self) -> TerminalHook {
        let public_url = self.shared.public_url.clone();
        Arc::new(
            move |conn, job| match payload::event_for(job, &public_url, now_ms()) {
                Some(ev) => outbox::enqueue(conn, &ev),
                None => Ok(()),
            },
        )
    }

    /// Starts the delivery loop.
    pub fn spawn(&self, shutdown: CancellationToken) {
        tokio::spawn(sender::run(self.shared.clone(), shutdown));
    }

    /// Looks for due events now (after a redelivery or replay was committed).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Signs with the secrets of a re-read configuration from the next attempt on (rotation);
    /// returns how many secrets sign when they changed, `None` when they did not.
    pub fn reload_secrets(&self, cfg: &WebhookConfig) -> Result<Option<usize>, WebhookError> {
        let secrets = secrets_of(cfg, &self.shared.data_dir)?;
        let mut current = self
            .shared
            .signer
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if current.0 == secrets {
            return Ok(None);
        }
        let signer = Arc::new(Signer::new(&secrets)?);
        *current = (secrets, signer);
        Ok(Some(current.0.len()))
    }

    /// Base of the output URLs in payloads.
    pub fn public_url(&self) -> &str {
        &self.shared.public_url
    }
}

impl Shared {
    fn signer(&self) -> Arc<Signer> {
        self.signer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }
}

/// The configured secrets, or the one generated into the data dir when none is configured.
fn secrets_of(
    cfg: &WebhookConfig,
    data_dir: &std::path::Path,
) -> Result<Vec<String>, WebhookError> {
    if !cfg.secrets.is_empty() {
        return Ok(cfg.secrets.clone());
    }
    let path = data_dir.join("webhook.secret");
    let (secret, created) = signing::load_or_create_secret(&path)?;
    if created {
        tracing::info!(path = %path.display(), "generated a webhook signing secret");
    }
    Ok(vec![secret])
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use crate::config::{Config, Overrides};

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        let ov = Overrides {
            config: Some(path),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(&ov, &env)
    }

    #[test]
    fn settings_env_and_checks() {
        let c = load(
            "[webhooks]\nschedule = [50, \"2s\"]\nper_host = 2\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n",
            &[],
        )
        .unwrap();
        let w = &c.webhooks;
        assert_eq!(
            w.schedule,
            [Duration::from_millis(50), Duration::from_secs(2)]
        );
        assert_eq!((w.per_host, w.concurrency), (2, 32));
        assert_eq!(w.timeout, Duration::from_secs(10));
        let two = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let c = load("", &[("COMFYDASH_WEBHOOK_SECRET", two)]).unwrap();
        assert_eq!(c.webhooks.secrets.len(), 2);
        let bad = load("", &[("COMFYDASH_WEBHOOK_SECRET", "hunter2")]).unwrap_err();
        assert!(bad.to_string().contains("whsec_"), "{bad}");
        assert!(load("[webhooks]\nschedule = []\n", &[]).is_err());
        // Secrets never appear when the effective configuration is shown.
        let shown = serde_json::to_string(&c).unwrap();
        assert!(!shown.contains("whsec_"), "{shown}");
    }
}
