//! Alerts' SQL: alert rows (state machine), silences, and the per-channel delivery queue.

use std::collections::BTreeMap;

use comfydash_wire::{
    Alert, AlertDelivery, AlertDeliveryStatus, AlertState, Severity, Silence, Timestamp,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Store, StoreError};

/// An alert as the engine keeps it (times in milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    /// Row id; 0 until inserted.
    pub id: i64,
    /// Rule and labels, e.g. `server_down{server="gpu0"}`: one open alert per fingerprint.
    pub fingerprint: String,
    /// Rule name.
    pub rule: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Severity.
    pub severity: Severity,
    /// State.
    pub state: AlertState,
    /// Latest summary.
    pub summary: String,
    /// Latest value.
    pub value: Option<f64>,
    /// First seen active.
    pub started_at: i64,
    /// Started firing.
    pub fired_at: Option<i64>,
    /// Resolved.
    pub resolved_at: Option<i64>,
    /// The last state announced to the channels (`firing` or `resolved`).
    pub notified: Option<AlertState>,
    /// When a notification was last queued.
    pub last_notified_at: Option<i64>,
    /// Why notifications are held back, if they are.
    pub muted: Option<String>,
}

impl StoredAlert {
    /// The API's view.
    pub fn to_wire(&self) -> Alert {
        Alert {
            id: self.id,
            rule: self.rule.clone(),
            labels: self.labels.clone(),
            severity: self.severity,
            state: self.state,
            summary: self.summary.clone(),
            value: self.value,
            started_at: ts(self.started_at),
            fired_at: self.fired_at.map(ts),
            resolved_at: self.resolved_at.map(ts),
            last_notified_at: self.last_notified_at.map(ts),
            muted: self.muted.clone(),
        }
    }
}

/// One change to the alerts table.
#[derive(Debug, Clone)]
pub enum AlertWrite {
    /// A new alert; its id is returned.
    Insert(StoredAlert),
    /// Every column of an existing alert.
    Update(StoredAlert),
    /// A pending alert whose condition cleared before it fired: not worth keeping.
    Delete(i64),
}

/// A message queued for one channel.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Channel name.
    pub channel: String,
    /// `firing`, `resolved` or `test`.
    pub kind: String,
    /// Alerts in the message.
    pub alert_ids: Vec<i64>,
    /// The message, as the channels' JSON.
    pub message: String,
}

/// A queued message taken by its channel's sender.
#[derive(Debug, Clone)]
pub struct QueuedDelivery {
    /// Row id.
    pub id: i64,
    /// When it was queued.
    pub created_at: i64,
    /// The message JSON.
    pub message: String,
}

/// How a delivery ended.
#[derive(Debug, Clone)]
pub struct DeliveryOutcome {
    /// Sent, failed or dropped.
    pub status: AlertDeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Last HTTP status.
    pub status_code: Option<u16>,
    /// Last error.
    pub error: Option<String>,
    /// Last attempt's duration.
    pub latency_ms: Option<u64>,
}

const ALERT_COLS: &str = "id, fingerprint, rule, labels, severity, state, summary, value, started_at, \
     fired_at, resolved_at, notified, last_notified_at, muted";

fn ts(ms: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn corrupt(what: &str, v: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("bad {what} {v:?}").into(),
    )
}

fn row_to_alert(r: &Row) -> rusqlite::Result<StoredAlert> {
    let labels: String = r.get(3)?;
    let severity: String = r.get(4)?;
    let state: String = r.get(5)?;
    let notified: Option<String> = r.get(11)?;
    Ok(StoredAlert {
        id: r.get(0)?,
        fingerprint: r.get(1)?,
        rule: r.get(2)?,
        labels: serde_json::from_str(&labels).map_err(|_| corrupt("labels", &labels))?,
        severity: Severity::parse(&severity).ok_or_else(|| corrupt("severity", &severity))?,
        state: AlertState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        summary: r.get(6)?,
        value: r.get(7)?,
        started_at: r.get(8)?,
        fired_at: r.get(9)?,
        resolved_at: r.get(10)?,
        notified: notified.as_deref().and_then(AlertState::parse),
        last_notified_at: r.get(12)?,
        muted: r.get(13)?,
    })
}

fn alerts_where(
    c: &Connection,
    tail: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<StoredAlert>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {ALERT_COLS} FROM alerts {tail}"))?;
    let rows = stmt.query_map(p, row_to_alert)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn write_alert(c: &Connection, w: &AlertWrite) -> Result<Option<i64>, StoreError> {
    let a = match w {
        AlertWrite::Delete(id) => {
            c.execute(
                "DELETE FROM alerts WHERE id = ?1 AND state = 'pending'",
                [id],
            )?;
            return Ok(None);
        }
        AlertWrite::Insert(a) | AlertWrite::Update(a) => a,
    };
    let labels =
        serde_json::to_string(&a.labels).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let values = params![
        a.fingerprint,
        a.rule,
        labels,
        a.severity.as_str(),
        a.state.as_str(),
        a.summary,
        a.value,
        a.started_at,
        a.fired_at,
        a.resolved_at,
        a.notified.map(AlertState::as_str),
        a.last_notified_at,
        a.muted,
        a.id,
    ];
    if matches!(w, AlertWrite::Insert(_)) {
        c.prepare_cached(
            "INSERT INTO alerts(fingerprint, rule, labels, severity, state, summary, value, started_at, \
             fired_at, resolved_at, notified, last_notified_at, muted, id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, NULLIF(?14, 0))",
        )?
        .execute(values)?;
        return Ok(Some(c.last_insert_rowid()));
    }
    let n = c
        .prepare_cached(
            "UPDATE alerts SET fingerprint = ?1, rule = ?2, labels = ?3, severity = ?4, state = ?5, \
             summary = ?6, value = ?7, started_at = ?8, fired_at = ?9, resolved_at = ?10, notified = ?11, \
             last_notified_at = ?12, muted = ?13 WHERE id = ?14",
        )?
        .execute(values)?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("alert {}", a.id)));
    }
    Ok(None)
}

fn row_to_delivery(r: &Row) -> rusqlite::Result<AlertDelivery> {
    let ids: String = r.get(4)?;
    let status: String = r.get(5)?;
    Ok(AlertDelivery {
        id: r.get(0)?,
        at: ts(r.get(1)?),
        channel: r.get(2)?,
        kind: r.get(3)?,
        alert_ids: serde_json::from_str(&ids).map_err(|_| corrupt("alert ids", &ids))?,
        status: AlertDeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        attempts: r.get(6)?,
        status_code: r.get(7)?,
        error: r.get(8)?,
        latency_ms: r.get(9)?,
    })
}

fn row_to_silence(r: &Row, now: i64) -> rusqlite::Result<Silence> {
    let labels: String = r.get(2)?;
    let ends_at: i64 = r.get(6)?;
    Ok(Silence {
        id: r.get(0)?,
        rule: r.get(1)?,
        labels: serde_json::from_str(&labels).map_err(|_| corrupt("labels", &labels))?,
        comment: r.get(3)?,
        created_by: r.get(4)?,
        created_at: ts(r.get(5)?),
        ends_at: ts(ends_at),
        active: ends_at > now,
    })
}

const SILENCE_COLS: &str = "id, rule, labels, comment, created_by, created_at, ends_at";

impl Store {
    /// Open alerts, and resolved ones whose resolve has not been announced yet.
    pub async fn alerts_open(&self) -> Result<Vec<StoredAlert>, StoreError> {
        self.read(|c| {
            alerts_where(
                c,
                "WHERE state != 'resolved' OR notified = 'firing' ORDER BY id",
                [],
            )
        })
        .await
    }

    /// Applies alert changes and queues messages in one transaction; returns the ids of inserts, in order.
    pub async fn alerts_commit(
        &self,
        writes: Vec<AlertWrite>,
        deliveries: Vec<NewDelivery>,
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.write(move |c| {
            let mut ids = Vec::new();
            for w in &writes {
                ids.extend(write_alert(c, w)?);
            }
            let mut ins = c.prepare_cached(
                "INSERT INTO alert_deliveries(channel, kind, alert_ids, message, status, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5)",
            )?;
            for d in &deliveries {
                let alert_ids = serde_json::to_string(&d.alert_ids).unwrap_or_else(|_| "[]".into());
                ins.execute(params![d.channel, d.kind, alert_ids, d.message, now])?;
            }
            Ok(ids)
        })
        .await
    }

    /// Open alerts (oldest first) and the `limit` most recently resolved.
    pub async fn alerts_list(&self, limit: usize) -> Result<(Vec<Alert>, Vec<Alert>), StoreError> {
        self.read(move |c| {
            let active = alerts_where(c, "WHERE state != 'resolved' ORDER BY id", [])?;
            let history = alerts_where(
                c,
                "WHERE state = 'resolved' ORDER BY resolved_at DESC, id DESC LIMIT ?1",
                [limit as i64],
            )?;
            let wire = |v: Vec<StoredAlert>| v.iter().map(StoredAlert::to_wire).collect();
            Ok((wire(active), wire(history)))
        })
        .await
    }

    /// The oldest queued message of `channel`.
    pub async fn alert_delivery_next(
        &self,
        channel: &str,
    ) -> Result<Option<QueuedDelivery>, StoreError> {
        let channel = channel.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT id, created_at, message FROM alert_deliveries \
                 WHERE channel = ?1 AND status = 'queued' ORDER BY id LIMIT 1",
                [channel],
                |r| {
                    Ok(QueuedDelivery {
                        id: r.get(0)?,
                        created_at: r.get(1)?,
                        message: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// Records how a queued message ended.
    pub async fn alert_delivery_done(&self, id: i64, o: DeliveryOutcome) -> Result<(), StoreError> {
        let now = super::now_ms();
        self.write(move |c| {
            c.execute(
                "UPDATE alert_deliveries SET status = ?2, attempts = ?3, status_code = ?4, error = ?5, \
                 latency_ms = ?6, updated_at = ?7 WHERE id = ?1 AND status = 'queued'",
                params![id, o.status.as_str(), o.attempts, o.status_code, o.error, o.latency_ms, now],
            )?;
            Ok(())
        })
        .await
    }

    /// Records a message sent outside the queue (a test), already finished.
    pub async fn alert_delivery_record(
        &self,
        d: NewDelivery,
        o: DeliveryOutcome,
    ) -> Result<(), StoreError> {
        let now = super::now_ms();
        self.write(move |c| {
            let alert_ids = serde_json::to_string(&d.alert_ids).unwrap_or_else(|_| "[]".into());
            c.execute(
                "INSERT INTO alert_deliveries(channel, kind, alert_ids, message, status, attempts, created_at, \
                 updated_at, status_code, error, latency_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10)",
                params![
                    d.channel, d.kind, alert_ids, d.message, o.status.as_str(), o.attempts, now,
                    o.status_code, o.error, o.latency_ms
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Drops queued messages of channels no longer configured; returns how many.
    pub async fn alert_deliveries_drop_others(
        &self,
        keep: Vec<String>,
    ) -> Result<usize, StoreError> {
        let now = super::now_ms();
        self.write(move |c| {
            let keep = serde_json::to_string(&keep).unwrap_or_else(|_| "[]".into());
            Ok(c.execute(
                "UPDATE alert_deliveries SET status = 'dropped', error = 'channel not configured', updated_at = ?2 \
                 WHERE status = 'queued' AND channel NOT IN (SELECT value FROM json_each(?1))",
                params![keep, now],
            )?)
        })
        .await
    }

    /// The `limit` most recent deliveries, newest first.
    pub async fn alert_deliveries(&self, limit: usize) -> Result<Vec<AlertDelivery>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, created_at, channel, kind, alert_ids, status, attempts, status_code, error, latency_ms \
                 FROM alert_deliveries ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], row_to_delivery)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Deletes resolved alerts, finished deliveries and silences that ended before `before`.
    pub async fn alerts_prune(&self, before: i64) -> Result<(), StoreError> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < ?1 \
                 AND (notified IS NULL OR notified != 'firing')",
                [before],
            )?;
            c.execute(
                "DELETE FROM alert_deliveries WHERE status != 'queued' AND created_at < ?1",
                [before],
            )?;
            c.execute("DELETE FROM alert_silences WHERE ends_at < ?1", [before])?;
            Ok(())
        })
        .await
    }

    /// Stores a silence.
    pub async fn silence_add(&self, s: Silence) -> Result<(), StoreError> {
        self.write(move |c| {
            let labels = serde_json::to_string(&s.labels).unwrap_or_else(|_| "{}".into());
            c.execute(
                &format!(
                    "INSERT INTO alert_silences({SILENCE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    s.id,
                    s.rule,
                    labels,
                    s.comment,
                    s.created_by,
                    s.created_at.timestamp_millis(),
                    s.ends_at.timestamp_millis()
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Silences in force at `now`, or every stored one with `expired`; newest first.
    pub async fn silences(&self, now: i64, expired: bool) -> Result<Vec<Silence>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SILENCE_COLS} FROM alert_silences WHERE ?2 OR ends_at > ?1 ORDER BY created_at DESC, id"
            ))?;
            let rows = stmt.query_map(params![now, expired], |r| row_to_silence(r, now))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Ends a silence now; false when there is no such silence in force.
    pub async fn silence_expire(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |c| {
            let n = c.execute(
                "UPDATE alert_silences SET ends_at = ?2 WHERE id = ?1 AND ends_at > ?2",
                params![id, now],
            )?;
            Ok(n > 0)
        })
        .await
    }
}
