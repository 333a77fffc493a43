//! Job rows: submit, read, list, transitions and pruning. Every transition is one conditional
//! UPDATE (one winner in a race) plus a job event plus counter updates, in one transaction.

use comfydash_wire::{
    Job, JobError, JobEvent, JobId, JobOutput, JobPage, JobStatus, Progress, SubmitJob, Timings,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use super::{Store, StoreError, bump, now_ms};

/// A validated job ready to be stored.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Job id.
    pub id: String,
    /// Canonical JSON of the request, inline image left out.
    pub request: String,
    /// SHA-256 of the full canonical request, image included: equal hashes mean the same request.
    pub request_hash: String,
    /// Decoded inline image.
    pub input_image: Option<Vec<u8>>,
    /// Text searched by `q`.
    pub search_text: String,
    /// Priority.
    pub priority: i64,
    /// Refuse when this many jobs are already pending.
    pub max_pending: u64,
    /// Key name that submitted it.
    pub actor: String,
}

/// What submit did.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// True for a new job, false for the same request seen before.
    pub created: bool,
    /// The job now.
    pub job: Job,
    /// Pending jobs ahead of it, when pending.
    pub position: Option<u64>,
}

/// Columns a job list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Acceptance order.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Priority.
    Priority,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "seq",
            SortKey::UpdatedAt => "updated_at",
            SortKey::Priority => "priority",
        }
    }
}

/// Filters and paging for `GET /api/jobs`.
#[derive(Debug, Clone)]
pub struct JobQuery {
    /// Only these states (empty = all).
    pub statuses: Vec<JobStatus>,
    /// Created at or after (ms).
    pub since_ms: Option<i64>,
    /// Substring of id or prompt.
    pub text: Option<String>,
    /// Order.
    pub sort: SortKey,
    /// Descending.
    pub desc: bool,
    /// Page size.
    pub limit: usize,
    /// Position after which to continue: (sort value, seq).
    pub after: Option<(i64, i64)>,
}

/// A job handed to a worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// The job as stored.
    pub job: Job,
    /// The original request.
    pub request: SubmitJob,
    /// Inline image bytes.
    pub input_image: Option<Vec<u8>>,
    /// Submissions to ComfyUI in this attempt, this one included.
    pub tries: u32,
}

/// How a processing job ends.
#[derive(Debug, Clone)]
pub enum JobEnd {
    /// With these files.
    Completed(Vec<JobOutput>),
    /// With this error.
    Failed(JobError),
    /// Stopped on request.
    Cancelled,
}

/// A processing job as the worker left it (for reconciliation after a restart).
#[derive(Debug, Clone)]
pub struct InFlight {
    /// Job id.
    pub id: String,
    /// Server it was sent to.
    pub server: Option<String>,
    /// Prompt id it was sent as.
    pub prompt_id: Option<String>,
    /// Execution start, ms.
    pub started_ms: Option<i64>,
    /// Cancel requested.
    pub cancel_requested: bool,
    /// Submissions in this attempt.
    pub tries: u32,
}

const COLUMNS: &str = "seq, id, status, priority, request, input_image IS NOT NULL, attempt, \
    cancel_requested, server, progress, error, outputs, created_at, updated_at, started_at, \
    finished_at, queued_ms, processing_ms";

fn ts(ms: i64) -> comfydash_wire::Timestamp {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn parse_status(s: &str) -> rusqlite::Result<JobStatus> {
    s.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// A value for a JSON text column; wire types always serialise.
fn json_text<T: serde::Serialize>(v: &T) -> SqlValue {
    SqlValue::Text(serde_json::to_string(v).unwrap_or_else(|_| "null".into()))
}

fn json_col<T: serde::de::DeserializeOwned>(s: Option<String>) -> Option<T> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

fn row_to_job(r: &Row) -> rusqlite::Result<(i64, Job)> {
    let seq: i64 = r.get(0)?;
    let request: String = r.get(4)?;
    let req: SubmitJob = serde_json::from_str(&request).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into())
    })?;
    let status = parse_status(&r.get::<_, String>(2)?)?;
    let job = Job {
        job_id: JobId(r.get(1)?),
        status,
        prompt: req.prompt,
        workflow: req.workflow,
        params: req.params,
        priority: r.get(3)?,
        attempt: r.get(6)?,
        input_image_url: req.input_image_url,
        has_input_image: r.get(5)?,
        webhook_url: req.webhook_url,
        timeout_s: req.timeout_s,
        output_base64: req.output_base64.unwrap_or(false),
        cancel_requested: r.get(7)?,
        server: r.get(8)?,
        progress: json_col::<Progress>(r.get(9)?),
        error: json_col::<JobError>(r.get(10)?),
        outputs: json_col::<Vec<JobOutput>>(r.get(11)?).unwrap_or_default(),
        timings: Timings {
            queued_ms: r.get::<_, Option<i64>>(16)?.map(|v| v.max(0) as u64),
            processing_ms: r.get::<_, Option<i64>>(17)?.map(|v| v.max(0) as u64),
        },
        created_at: ts(r.get(12)?),
        updated_at: ts(r.get(13)?),
        started_at: r.get::<_, Option<i64>>(14)?.map(ts),
        finished_at: r.get::<_, Option<i64>>(15)?.map(ts),
    };
    Ok((seq, job))
}

fn load(conn: &Connection, id: &str) -> Result<(i64, Job), StoreError> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"))?
        .query_row([id], row_to_job)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))
}

/// Pending jobs ahead of the newest pending job of `priority`: every other one at that priority
/// or above (the newest has the highest `seq`). O(distinct priorities), from the trigger-kept table.
fn ahead_of_newest(conn: &Connection, priority: i64) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT COALESCE(SUM(n), 0) FROM pending_by_priority WHERE priority >= ?1")?
        .query_row([priority], |r| r.get(0))?;
    Ok((n - 1).max(0) as u64)
}

/// Appends a line to a job's log.
pub(super) fn event(
    conn: &Connection,
    id: &str,
    kind: &str,
    from: Option<JobStatus>,
    to: Option<JobStatus>,
    actor: &str,
    detail: Option<&Value>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO job_events(job_id, at, kind, from_status, to_status, actor, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        now_ms(),
        kind,
        from.map(JobStatus::as_str),
        to.map(JobStatus::as_str),
        actor,
        detail.map(Value::to_string)
    ])?;
    Ok(())
}

/// Moves a job from `from` to `to` if it is still in `from`; false when someone else won.
/// `raw` is constant SQL (`, attempt = attempt + 1`); `vals` are bound as `?5`, `?6`, ….
fn transition(
    conn: &Connection,
    id: &str,
    from: JobStatus,
    to: JobStatus,
    raw: &str,
    vals: &[(&str, SqlValue)],
) -> Result<bool, StoreError> {
    let mut set = String::from(raw);
    for (i, (col, _)) in vals.iter().enumerate() {
        set.push_str(&format!(", {col} = ?{}", i + 5));
    }
    let sql =
        format!("UPDATE jobs SET status = ?3, updated_at = ?4{set} WHERE id = ?1 AND status = ?2");
    let mut args: Vec<SqlValue> = vec![
        id.to_string().into(),
        from.as_str().to_string().into(),
        to.as_str().to_string().into(),
        now_ms().into(),
    ];
    args.extend(vals.iter().map(|(_, v)| v.clone()));
    let n = conn.execute(&sql, rusqlite::params_from_iter(args))?;
    if n == 1 {
        bump(conn, &[(from.as_str(), -1), (to.as_str(), 1)])?;
        // Monotonic per-outcome totals for Prometheus (byStatus goes down on manual retry).
        let finished = match to {
            JobStatus::Completed => "finished_completed",
            JobStatus::Failed => "finished_failed",
            JobStatus::Cancelled => "finished_cancelled",
            _ => "",
        };
        if !finished.is_empty() {
            bump(conn, &[(finished, 1)])?;
        }
    }
    Ok(n == 1)
}

/// Processing times of the most recent completed jobs, newest first.
pub(super) fn recent_processing_ms(conn: &Connection, n: usize) -> Result<Vec<u64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT processing_ms FROM jobs WHERE status = 'completed' AND processing_ms IS NOT NULL \
         ORDER BY finished_at DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([n as i64], |r| r.get::<_, i64>(0))?;
    Ok(rows
        .filter_map(Result::ok)
        .map(|v| v.max(0) as u64)
        .collect())
}

impl Store {
    /// Stores a new job, or returns the existing one when the same request comes again.
    pub async fn submit(&self, new: NewJob) -> Result<Submitted, StoreError> {
        self.write(move |c| {
            let existing: Option<String> = c
                .prepare_cached("SELECT request_hash FROM jobs WHERE id = ?1")?
                .query_row([&new.id], |r| r.get(0))
                .optional()?;
            if let Some(hash) = existing {
                if hash != new.request_hash {
                    return Err(StoreError::Conflict(new.id));
                }
                let (_, job) = load(c, &new.id)?;
                return Ok(Submitted { created: false, job, position: None });
            }
            let pending: i64 =
                c.query_row("SELECT value FROM counters WHERE name = 'pending'", [], |r| {
                    r.get(0)
                })?;
            if pending.max(0) as u64 >= new.max_pending {
                return Err(StoreError::QueueFull {
                    pending: pending.max(0) as u64,
                    limit: new.max_pending,
                });
            }
            let now = now_ms();
            c.prepare_cached(
                "INSERT INTO jobs(id, status, priority, request, request_hash, input_image, search_text, created_at, updated_at) \
                 VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )?
            .execute(params![
                new.id,
                new.priority,
                new.request,
                new.request_hash,
                new.input_image,
                new.search_text,
                now
            ])?;
            bump(c, &[("total", 1), ("pending", 1)])?;
            event(c, &new.id, "submitted", None, Some(JobStatus::Pending), &new.actor, None)?;
            let (_, job) = load(c, &new.id)?;
            let position = Some(ahead_of_newest(c, new.priority)?);
            Ok(Submitted { created: true, job, position })
        })
        .await
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Job, StoreError> {
        let id = id.to_string();
        self.read(move |c| Ok(load(c, &id)?.1)).await
    }

    /// One page of jobs.
    pub async fn jobs(&self, q: JobQuery) -> Result<JobPage, StoreError> {
        self.read(move |c| list(c, &q)).await
    }

    /// A job's log, oldest first.
    pub async fn job_events(&self, id: &str) -> Result<Vec<JobEvent>, StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            load(c, &id)?;
            let mut stmt = c.prepare_cached(
                "SELECT id, job_id, at, kind, from_status, to_status, actor, detail FROM job_events WHERE job_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([&id], |r| {
                Ok(JobEvent {
                    id: r.get::<_, i64>(0)? as u64,
                    job_id: JobId(r.get(1)?),
                    at: ts(r.get(2)?),
                    kind: r.get(3)?,
                    from: r.get::<_, Option<String>>(4)?.map(|s| parse_status(&s)).transpose()?,
                    to: r.get::<_, Option<String>>(5)?.map(|s| parse_status(&s)).transpose()?,
                    actor: r.get(6)?,
                    detail: json_col(r.get(7)?),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Cancels a pending job at once; marks a processing one for the worker to stop.
    pub async fn cancel(&self, id: &str, actor: &str) -> Result<Job, StoreError> {
        let (id, actor) = (id.to_string(), actor.to_string());
        let hook = self.terminal_hook();
        self.write(move |c| {
            let (_, job) = load(c, &id)?;
            match job.status {
                JobStatus::Pending => {
                    if transition(c, &id, JobStatus::Pending, JobStatus::Cancelled, ", finished_at = ?4", &[])? {
                        event(c, &id, "state", Some(JobStatus::Pending), Some(JobStatus::Cancelled), &actor, None)?;
                        if let Some(hook) = &hook {
                            hook(c, &load(c, &id)?.1)?;
                        }
                    }
                }
                JobStatus::Processing if !job.cancel_requested => {
                    c.execute(
                        "UPDATE jobs SET cancel_requested = 1, updated_at = ?2 WHERE id = ?1 AND status = 'processing'",
                        params![id, now_ms()],
                    )?;
                    event(c, &id, "cancel_requested", None, None, &actor, None)?;
                }
                JobStatus::Processing => {}
                s => {
                    return Err(StoreError::InvalidState {
                        id,
                        status: s.to_string(),
                        action: "cancel",
                    });
                }
            }
            Ok(load(c, &id)?.1)
        })
        .await
    }

    /// Puts a failed or cancelled job back in the queue as a new attempt.
    pub async fn retry(&self, id: &str, actor: &str) -> Result<Job, StoreError> {
        let (id, actor) = (id.to_string(), actor.to_string());
        self.write(move |c| {
            let (_, job) = load(c, &id)?;
            let from = job.status;
            if !matches!(from, JobStatus::Failed | JobStatus::Cancelled) {
                return Err(StoreError::InvalidState {
                    id,
                    status: from.to_string(),
                    action: "retry",
                });
            }
            let reset = ", attempt = attempt + 1, tries = 0, cancel_requested = 0, server = NULL, \
                prompt_id = NULL, progress = NULL, error = NULL, outputs = '[]', started_at = NULL, \
                finished_at = NULL, queued_ms = NULL, processing_ms = NULL";
            if !transition(c, &id, from, JobStatus::Pending, reset, &[])? {
                return Err(StoreError::InvalidState {
                    id,
                    status: "changing".into(),
                    action: "retry",
                });
            }
            let detail = serde_json::json!({"attempt": job.attempt + 1});
            event(c, &id, "state", Some(from), Some(JobStatus::Pending), &actor, Some(&detail))?;
            Ok(load(c, &id)?.1)
        })
        .await
    }

    /// Deletes a terminal job and its log; counters keep it (as pruning does).
    pub async fn delete(&self, id: &str) -> Result<Job, StoreError> {
        let id = id.to_string();
        self.write(move |c| {
            let (_, job) = load(c, &id)?;
            if !job.status.is_terminal() {
                return Err(StoreError::InvalidState {
                    id,
                    status: job.status.to_string(),
                    action: "delete",
                });
            }
            c.execute("DELETE FROM job_events WHERE job_id = ?1", [&id])?;
            c.execute("DELETE FROM jobs WHERE id = ?1", [&id])?;
            Ok(job)
        })
        .await
    }

    /// Deletes up to `batch` terminal jobs finished before `before_ms`; returns their ids.
    /// Jobs whose webhook is still being delivered stay: the payload points at their outputs.
    pub async fn prune(&self, before_ms: i64, batch: usize) -> Result<Vec<String>, StoreError> {
        self.write(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM jobs WHERE status IN ('completed','failed','cancelled') AND finished_at < ?1 \
                 AND NOT EXISTS (SELECT 1 FROM webhook_events w WHERE w.job_id = jobs.id AND w.status = 'pending') \
                 ORDER BY finished_at LIMIT ?2",
            )?;
            let ids: Vec<String> = stmt
                .query_map(params![before_ms, batch as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                c.execute("DELETE FROM job_events WHERE job_id = ?1", [id])?;
                c.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
            }
            Ok(ids)
        })
        .await
    }

    /// Takes the next pending job (highest priority, then oldest) for `server`, to be submitted as `prompt_id`.
    pub async fn claim_next(
        &self,
        server: &str,
        prompt_id: &str,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        let (server, prompt_id) = (server.to_string(), prompt_id.to_string());
        self.write(move |c| {
            let id: Option<String> = c
                .prepare_cached(
                    "SELECT id FROM jobs WHERE status = 'pending' ORDER BY priority DESC, seq LIMIT 1",
                )?
                .query_row([], |r| r.get(0))
                .optional()?;
            let Some(id) = id else { return Ok(None) };
            c.execute(
                "UPDATE jobs SET server = ?2, prompt_id = ?3, tries = tries + 1 WHERE id = ?1",
                params![id, server, prompt_id],
            )?;
            transition(c, &id, JobStatus::Pending, JobStatus::Processing, "", &[])?;
            let (_, job) = load(c, &id)?;
            let (request, input_image, tries): (String, Option<Vec<u8>>, u32) = c.query_row(
                "SELECT request, input_image, tries FROM jobs WHERE id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let detail = serde_json::json!({"server": server, "prompt_id": prompt_id, "try": tries});
            event(c, &id, "state", Some(JobStatus::Pending), Some(JobStatus::Processing), "worker", Some(&detail))?;
            let request = serde_json::from_str(&request)
                .map_err(|e| StoreError::Corrupt(format!("job {id}: stored request: {e}")))?;
            Ok(Some(ClaimedJob {
                job,
                request,
                input_image,
                tries,
            }))
        })
        .await
    }

    /// Ends a processing job; false when it was no longer processing (someone else ended it).
    pub async fn finish(
        &self,
        id: &str,
        end: JobEnd,
        started_ms: Option<i64>,
        actor: &str,
    ) -> Result<Option<Job>, StoreError> {
        let (id, actor) = (id.to_string(), actor.to_string());
        let hook = self.terminal_hook();
        self.write(move |c| {
            let now = now_ms();
            let (to, mut vals, detail) = match &end {
                JobEnd::Completed(outputs) => (
                    JobStatus::Completed,
                    vec![("outputs", json_text(outputs))],
                    Some(serde_json::json!({"outputs": outputs.len()})),
                ),
                JobEnd::Failed(e) => (
                    JobStatus::Failed,
                    vec![("error", json_text(e))],
                    serde_json::to_value(e).ok(),
                ),
                JobEnd::Cancelled => (JobStatus::Cancelled, vec![], None),
            };
            vals.push(("finished_at", now.into()));
            vals.push(("progress", SqlValue::Null));
            if let Some(s) = started_ms {
                vals.push(("started_at", s.into()));
                vals.push(("processing_ms", (now - s).max(0).into()));
                vals.push(("queued_ms", SqlValue::Null));
            }
            // queued_ms = accepted → execution start, computed in SQL from the row's created_at.
            let raw = match started_ms {
                Some(s) => format!(", queued_ms = MAX({s} - created_at, 0)"),
                None => String::new(),
            };
            vals.retain(|(k, _)| *k != "queued_ms");
            if !transition(c, &id, JobStatus::Processing, to, &raw, &vals)? {
                return Ok(None);
            }
            if let (JobStatus::Completed, Some(s)) = (to, started_ms) {
                bump(
                    c,
                    &[
                        ("processing_ms_sum", (now - s).max(0)),
                        ("processing_ms_count", 1),
                    ],
                )?;
            }
            event(
                c,
                &id,
                "state",
                Some(JobStatus::Processing),
                Some(to),
                &actor,
                detail.as_ref(),
            )?;
            let job = load(c, &id)?.1;
            if let Some(hook) = &hook {
                hook(c, &job)?;
            }
            Ok(Some(job))
        })
        .await
    }

    /// Records that ComfyUI started executing a job's prompt.
    pub async fn mark_started(&self, id: &str, started_ms: i64) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE jobs SET started_at = ?2, queued_ms = MAX(?2 - created_at, 0), updated_at = ?3 \
                 WHERE id = ?1 AND status = 'processing'",
                params![id, started_ms, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Puts a processing job back in the queue (server lost, pause, restart); not terminal.
    pub async fn requeue(&self, id: &str, reason: &str) -> Result<Option<Job>, StoreError> {
        let (id, reason) = (id.to_string(), reason.to_string());
        self.write(move |c| {
            let reset = ", server = NULL, prompt_id = NULL, progress = NULL, started_at = NULL, queued_ms = NULL";
            if !transition(c, &id, JobStatus::Processing, JobStatus::Pending, reset, &[])? {
                return Ok(None);
            }
            let detail = serde_json::json!({"reason": reason});
            event(c, &id, "requeued", Some(JobStatus::Processing), Some(JobStatus::Pending), "worker", Some(&detail))?;
            Ok(Some(load(c, &id)?.1))
        })
        .await
    }

    /// Adds a line to a job's log without changing its state.
    pub async fn log(
        &self,
        id: &str,
        kind: &str,
        actor: &str,
        detail: Value,
    ) -> Result<(), StoreError> {
        let (id, kind, actor) = (id.to_string(), kind.to_string(), actor.to_string());
        self.write(move |c| event(c, &id, &kind, None, None, &actor, Some(&detail)))
            .await
    }

    /// Every processing job, for reconciliation after a restart.
    pub async fn in_flight(&self) -> Result<Vec<InFlight>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT id, server, prompt_id, started_at, cancel_requested, tries FROM jobs WHERE status = 'processing' ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(InFlight {
                    id: r.get(0)?,
                    server: r.get(1)?,
                    prompt_id: r.get(2)?,
                    started_ms: r.get(3)?,
                    cancel_requested: r.get(4)?,
                    tries: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The stored request and inline image of a job.
    pub async fn request(&self, id: &str) -> Result<(SubmitJob, Option<Vec<u8>>), StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            let (request, image): (String, Option<Vec<u8>>) = c
                .query_row(
                    "SELECT request, input_image FROM jobs WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound(id.clone()))?;
            let req = serde_json::from_str(&request)
                .map_err(|e| StoreError::Corrupt(format!("job {id}: stored request: {e}")))?;
            Ok((req, image))
        })
        .await
    }
}

fn list(c: &Connection, q: &JobQuery) -> Result<JobPage, StoreError> {
    let col = q.sort.column();
    let mut sql = format!("SELECT {COLUMNS}, {col} FROM jobs WHERE 1=1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if !q.statuses.is_empty() {
        let marks = vec!["?"; q.statuses.len()].join(",");
        sql.push_str(&format!(" AND status IN ({marks})"));
        args.extend(q.statuses.iter().map(|s| s.as_str().to_string().into()));
    }
    if let Some(since) = q.since_ms {
        sql.push_str(" AND created_at >= ?");
        args.push(since.into());
    }
    if let Some(text) = &q.text {
        let pat = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        sql.push_str(" AND (id LIKE ? ESCAPE '\\' OR search_text LIKE ? ESCAPE '\\')");
        args.push(pat.clone().into());
        args.push(pat.into());
    }
    let (cmp, dir) = if q.desc { ("<", "DESC") } else { (">", "ASC") };
    if let Some((v, seq)) = q.after {
        sql.push_str(&format!(" AND ({col}, seq) {cmp} (?, ?)"));
        args.push(v.into());
        args.push(seq.into());
    }
    sql.push_str(&format!(" ORDER BY {col} {dir}, seq {dir} LIMIT ?"));
    args.push(((q.limit + 1) as i64).into());
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
        let (seq, job) = row_to_job(r)?;
        let key: i64 = r.get(18)?;
        Ok((seq, key, job))
    })?;
    let mut rows: Vec<(i64, i64, Job)> = rows.collect::<Result<_, _>>()?;
    let next_cursor = if rows.len() > q.limit {
        rows.truncate(q.limit);
        rows.last().map(|(seq, key, _)| format!("{key}.{seq}"))
    } else {
        None
    };
    Ok(JobPage {
        jobs: rows.into_iter().map(|(_, _, j)| j).collect(),
        next_cursor,
    })
}

/// Parses a cursor made by [`Store::jobs`].
pub fn parse_cursor(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.rsplit_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}
