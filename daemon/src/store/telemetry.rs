//! External telemetry: reports from other systems, their history and latest values.

use std::collections::BTreeMap;

use comfydash_wire::{ExternalPoint, ExternalValue, TelemetryReport};
use rusqlite::params;

use super::{Store, StoreError, bump};

/// Most distinct (source, metric) series kept, so a misbehaving client cannot grow memory and metrics without bound.
pub const MAX_SERIES: usize = 1000;

impl Store {
    /// Stores a report; returns its id.
    pub async fn add_telemetry(
        &self,
        report: TelemetryReport,
        at_ms: i64,
    ) -> Result<u64, StoreError> {
        self.write(move |c| {
            let new_series: i64 = {
                let mut stmt = c.prepare_cached(
                    "SELECT COUNT(*) FROM telemetry_latest WHERE source = ?1 AND metric = ?2",
                )?;
                let mut n = 0;
                for m in report.metrics.keys() {
                    let have: i64 = stmt.query_row(params![report.source, m], |r| r.get(0))?;
                    n += 1 - have;
                }
                n
            };
            let total: i64 = c.query_row("SELECT COUNT(*) FROM telemetry_latest", [], |r| r.get(0))?;
            if (total + new_series) as usize > MAX_SERIES {
                return Err(StoreError::TooManySeries(MAX_SERIES));
            }
            bump(c, &[("telemetry_reports", 1)])?;
            let id: i64 = c.query_row(
                "SELECT value FROM counters WHERE name = 'telemetry_reports'",
                [],
                |r| r.get(0),
            )?;
            let tags = report
                .tags
                .as_ref()
                .map(|t| serde_json::to_string(t).unwrap_or_default());
            let mut ins = c.prepare_cached(
                "INSERT INTO telemetry_points(report_id, source, metric, value, at, tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut latest = c.prepare_cached(
                "INSERT INTO telemetry_latest(source, metric, value, at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(source, metric) DO UPDATE SET value = excluded.value, at = excluded.at \
                 WHERE excluded.at >= telemetry_latest.at",
            )?;
            for (m, v) in &report.metrics {
                ins.execute(params![id, report.source, m, v, at_ms, tags])?;
                latest.execute(params![report.source, m, v, at_ms])?;
            }
            Ok(id as u64)
        })
        .await
    }

    /// Latest value of every series, by source then metric.
    pub async fn telemetry_latest(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, ExternalValue>>, StoreError> {
        self.read(|c| {
            let mut out: BTreeMap<String, BTreeMap<String, ExternalValue>> = BTreeMap::new();
            let mut stmt =
                c.prepare_cached("SELECT source, metric, value, at FROM telemetry_latest")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            for row in rows {
                let (s, m, value, at) = row?;
                out.entry(s).or_default().insert(
                    m,
                    ExternalValue {
                        value,
                        timestamp: chrono::DateTime::from_timestamp_millis(at).unwrap_or_default(),
                    },
                );
            }
            Ok(out)
        })
        .await
    }

    /// Stored points, oldest first, optionally for one source and since a time.
    pub async fn telemetry_history(
        &self,
        source: Option<String>,
        since_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ExternalPoint>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT report_id, source, metric, value, at, tags FROM telemetry_points \
                 WHERE (?1 IS NULL OR source = ?1) AND at >= ?2 ORDER BY at, id LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![source, since_ms.unwrap_or(i64::MIN), limit as i64],
                |r| {
                    Ok(ExternalPoint {
                        id: r.get::<_, i64>(0)? as u64,
                        source: r.get(1)?,
                        metric: r.get(2)?,
                        value: r.get(3)?,
                        timestamp: chrono::DateTime::from_timestamp_millis(r.get(4)?)
                            .unwrap_or_default(),
                        tags: r
                            .get::<_, Option<String>>(5)?
                            .and_then(|t| serde_json::from_str(&t).ok()),
                    })
                },
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Deletes telemetry points older than `before_ms`, at most `batch` at a time.
    pub async fn prune_telemetry(&self, before_ms: i64, batch: usize) -> Result<usize, StoreError> {
        self.write(move |c| {
            Ok(c.execute(
                "DELETE FROM telemetry_points WHERE id IN (SELECT id FROM telemetry_points WHERE at < ?1 LIMIT ?2)",
                params![before_ms, batch as i64],
            )?)
        })
        .await
    }
}
