//! Retention: deletes terminal jobs (and their files) and telemetry points older than the
//! configured age, in bounded batches so pruning never holds the writer for long.
//! Counters are untouched, so totals stay right.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::config::RetentionConfig;
use crate::store::{Store, now_ms};

/// Runs one pass: everything older than `max_age`, batch by batch. Returns jobs deleted.
pub async fn prune_once(store: &Store, cfg: &RetentionConfig, data_dir: &Path) -> usize {
    if cfg.max_age.is_zero() {
        return 0;
    }
    let before = now_ms() - cfg.max_age.as_millis() as i64;
    let mut total = 0;
    loop {
        match store.prune(before, cfg.batch).await {
            Ok(ids) => {
                for id in &ids {
                    let dir = data_dir.join("outputs").join(id);
                    let _ = tokio::fs::remove_dir_all(dir).await;
                }
                total += ids.len();
                if ids.len() < cfg.batch {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "pruning jobs failed");
                break;
            }
        }
    }
    while let Ok(n) = store.prune_telemetry(before, cfg.batch).await {
        if n < cfg.batch {
            break;
        }
    }
    if total > 0 {
        tracing::info!(jobs = total, "pruned old jobs");
    }
    total
}

/// Prunes every `interval` until shutdown.
pub fn spawn(store: Store, cfg: RetentionConfig, data_dir: PathBuf, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            prune_once(&store, &cfg, &data_dir).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(cfg.interval) => {}
            }
        }
    });
}
