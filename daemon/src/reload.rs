//! Applying a re-read configuration to the running daemon (SIGHUP, `POST /api/config/reload`).
//!
//! What changes live, without dropping work: API keys, workflow templates, the outbound allow
//! list, `[[servers]]` (added ones start, removed ones drain, moved ones hand over), webhook
//! signing secrets and `[alerts]`. The rest is reported as applying at the next restart.
//! Reloads run one at a time, each to its end even when the caller goes away.

use std::sync::{Arc, OnceLock};

use comfydash_wire::ReloadReport;

use crate::api::AppState;
use crate::auth::Role;
use crate::config::{Config, KeyConfig};

/// Reads the configuration again the way the daemon was started (flags, environment, file).
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// Why a reload from the source did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The daemon was started without a configuration source (embedded, tests).
    #[error("this daemon was started without a configuration source to re-read")]
    Unavailable,
    /// The configuration does not load; the running one is kept.
    #[error("{0}")]
    Invalid(String),
}

/// The daemon's reload state: where to re-read from, and the admin key to keep.
pub struct ReloadHook {
    source: OnceLock<ConfigSource>,
    /// The key the daemon started with when the configuration names no admin key (generated
    /// into the data dir), so a reload never locks operators out.
    admin_key: String,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl ReloadHook {
    /// A hook without a source yet.
    pub fn new(admin_key: String) -> ReloadHook {
        ReloadHook {
            source: OnceLock::new(),
            admin_key,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// Sets the source (once; later calls are ignored).
    pub fn set_source(&self, source: ConfigSource) {
        let _ = self.source.set(source);
    }
}

/// Re-reads the configuration from the source and applies it.
pub async fn from_source(state: &AppState) -> Result<ReloadReport, ReloadError> {
    let source = state
        .reload
        .source
        .get()
        .cloned()
        .ok_or(ReloadError::Unavailable)?;
    let config = tokio::task::spawn_blocking(move || source())
        .await
        .map_err(|e| ReloadError::Invalid(format!("reading the configuration: {e}")))?
        .map_err(ReloadError::Invalid)?;
    Ok(apply(state, config).await)
}

/// Applies `new` to the running daemon and says what changed.
pub async fn apply(state: &AppState, new: Config) -> ReloadReport {
    let state = state.clone();
    // A spawned task finishes even if the HTTP request that asked for it times out.
    let task = tokio::spawn(async move {
        let _one = state.reload.one_at_a_time.lock().await;
        apply_now(&state, &new).await
    });
    task.await.unwrap_or_else(|e| ReloadReport {
        applied: Vec::new(),
        warnings: vec![format!("the reload stopped half way: {e}")],
    })
}

async fn apply_now(state: &AppState, new: &Config) -> ReloadReport {
    let mut report = ReloadReport::default();
    let mut keys = new.keys.clone();
    if !keys.iter().any(|k| k.role == Role::Admin) {
        keys.push(KeyConfig {
            name: "admin".into(),
            role: Role::Admin,
            key: state.reload.admin_key.clone(),
        });
    }
    state.keys.replace(&keys);
    for w in state
        .worker
        .reload_templates(new.worker.workflows_dir.as_deref())
    {
        report.warnings.push(format!("workflow templates: {w}"));
    }
    // The ComfyUI servers join the outbound guard before any pipeline can reach them.
    let urls: Vec<String> = new.servers.iter().map(|s| s.url.clone()).collect();
    if let Err(e) = state.outbound.update(&new.outbound.allow, &urls) {
        report
            .warnings
            .push(format!("outbound allow list kept as it was: {e}"));
    }
    report.applied = state.worker.apply_servers(&new.servers).await;
    match state.alerts.reload(new).await {
        Ok(Some(change)) => report.applied.push(change),
        Ok(None) => {}
        Err(e) => report
            .warnings
            .push(format!("alerts configuration kept as it was: {e}")),
    }
    match state.webhooks.reload_secrets(&new.webhooks) {
        Ok(Some(n)) => report
            .applied
            .push(format!("webhook signing secrets changed: {n} in use")),
        Ok(None) => {}
        Err(e) => report
            .warnings
            .push(format!("webhook signing secrets kept as they were: {e}")),
    }
    let old = &state.config;
    if old.listen != new.listen || old.data_dir != new.data_dir {
        report
            .warnings
            .push("listen address and data dir apply at the next restart".into());
    }
    tracing::info!(
        keys = keys.len(),
        changes = report.applied.len(),
        "configuration reloaded"
    );
    report
}
