//! The durable job store: all SQL lives here. One writer thread commits batches of writes
//! (group commit); reads run on their own connections. Nothing outside sees a `Connection`.

pub mod alerts;
mod jobs;
mod migrate;
pub mod outbox;
mod telemetry;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

pub use jobs::{ClaimedJob, InFlight, JobEnd, JobQuery, NewJob, SortKey, Submitted, parse_cursor};
pub use migrate::SCHEMA_VERSION;
pub use outbox::{DueWebhook, NewWebhookEvent, WebhookAttemptRecord, WebhookOutcome, WebhookQuery};

use crate::config::Synchronous;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// The batch this write was in did not commit.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The database was written by a newer comfydash.
    #[error(
        "database schema version {found} is newer than this build knows ({known}); upgrade comfydash"
    )]
    NewerSchema {
        /// Version in the file.
        found: i64,
        /// Newest this build knows.
        known: i64,
    },
    /// No such job.
    #[error("job {0} not found")]
    NotFound(String),
    /// Same id, different request.
    #[error("job {0} already exists with a different request")]
    Conflict(String),
    /// The job is not in a state that allows this.
    #[error("job {id} is {status}: {action} is not possible")]
    InvalidState {
        /// Job id.
        id: String,
        /// Its current status.
        status: String,
        /// What was asked.
        action: &'static str,
    },
    /// Too many pending jobs.
    #[error("queue is full: {pending} jobs pending (limit {limit})")]
    QueueFull {
        /// Pending now.
        pending: u64,
        /// Configured limit.
        limit: u64,
    },
    /// Too many distinct telemetry series.
    #[error("too many telemetry series: limit {0}")]
    TooManySeries(usize),
    /// A stored row could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The writer thread is gone (shutting down).
    #[error("store is closed")]
    Closed,
    /// Files could not be created.
    #[error("store I/O on {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Counters kept transactionally in the `counters` table, mirrored after every commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Counter name → value.
    pub counters: HashMap<String, i64>,
    /// Queue paused.
    pub paused: bool,
    /// Processing times (ms) of the most recent completed jobs, newest first.
    pub recent_processing_ms: Vec<u64>,
}

impl Snapshot {
    /// A counter's value (0 if unknown), never negative.
    pub fn get(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0).max(0) as u64
    }
}

/// How many recent completed jobs the percentiles cover.
pub const RECENT_WINDOW: usize = 1000;

/// One queued write: run inside the batch, then answered once the batch's fate is known.
trait WriteOp: Send {
    /// Runs the write; false means it failed and its savepoint is rolled back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller; `commit_err` is set when the batch did not commit.
    fn reply(self: Box<Self>, commit_err: Option<String>);
}

type WriteJob = Box<dyn WriteOp>;

/// Called inside the transaction of every terminal transition (completed, failed, cancelled),
/// with the job as it is after the change; an error rolls the transition back.
pub type TerminalHook =
    Arc<dyn Fn(&Connection, &comfydash_wire::Job) -> Result<(), StoreError> + Send + Sync>;

struct Op<R, F> {
    f: Option<F>,
    result: Option<Result<R, StoreError>>,
    tx: oneshot::Sender<Result<R, StoreError>>,
}

impl<R, F> WriteOp for Op<R, F>
where
    R: Send,
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = self.f.take().map(|f| f(conn));
        let ok = matches!(result, Some(Ok(_)));
        self.result = result;
        ok
    }

    fn reply(self: Box<Self>, commit_err: Option<String>) {
        let out = match (self.result, commit_err) {
            (Some(Err(e)), _) => Err(e),
            (_, Some(e)) => Err(StoreError::Commit(e)),
            (Some(ok), None) => ok,
            (None, None) => Err(StoreError::Commit("write was not run".into())),
        };
        let _ = self.tx.send(out);
    }
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Option<mpsc::SyncSender<WriteJob>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    busy_timeout: Duration,
    snapshot: RwLock<Arc<Snapshot>>,
    changes: tokio::sync::watch::Sender<Arc<Snapshot>>,
    writable: AtomicBool,
    terminal_hook: RwLock<Option<TerminalHook>>,
}

/// Store options.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `synchronous` pragma.
    pub synchronous: Synchronous,
    /// Most writes in one transaction.
    pub max_batch: usize,
    /// How long a statement waits for a lock another process holds before it fails.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self::from(&crate::config::StoreConfig::default())
    }
}

impl From<&crate::config::StoreConfig> for StoreOptions {
    fn from(c: &crate::config::StoreConfig) -> Self {
        StoreOptions {
            synchronous: c.synchronous,
            max_batch: c.max_batch,
            busy_timeout: c.busy_timeout,
        }
    }
}

fn open_conn(path: &Path, flags: OpenFlags, busy: Duration) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating and migrating) the database at `path` and starts the writer thread.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut conn = open_conn(path, OpenFlags::default(), opts.busy_timeout)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match opts.synchronous {
                Synchronous::Full => "FULL",
                Synchronous::Normal => "NORMAL",
            },
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate::migrate(&mut conn)?;
        let snapshot = load_snapshot(&conn, None)?;
        let (tx, rx) = mpsc::sync_channel::<WriteJob>(4096);
        let snapshot = Arc::new(snapshot);
        let (changes, _) = tokio::sync::watch::channel(snapshot.clone());
        let inner = Arc::new(Inner {
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
            path: path.to_path_buf(),
            busy_timeout: opts.busy_timeout,
            snapshot: RwLock::new(snapshot),
            changes,
            writable: AtomicBool::new(true),
            terminal_hook: RwLock::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let max_batch = opts.max_batch.max(1);
        let handle = std::thread::Builder::new()
            .name("comfydash-store-writer".into())
            .spawn(move || writer_loop(conn, rx, max_batch, weak))
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        *lock(&inner.thread) = Some(handle);
        Ok(Store { inner })
    }

    /// Runs `f` inside the writer's next transaction (in its own savepoint) and answers after commit.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        let job: WriteJob = Box::new(Op {
            f: Some(f),
            result: None,
            tx,
        });
        let sender = lock(&self.inner.writer).clone().ok_or(StoreError::Closed)?;
        // The channel is bounded; a full channel means the disk is the bottleneck, so wait off the runtime.
        match sender.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || sender.send(job))
                    .await
                    .map_err(|_| StoreError::Closed)?
                    .map_err(|_| StoreError::Closed)?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read-only connection off the async runtime.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match lock(&inner.readers).pop() {
                Some(c) => c,
                None => open_conn(
                    &inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    inner.busy_timeout,
                )?,
            };
            let out = f(&conn);
            let mut pool = lock(&inner.readers);
            if pool.len() < 8 {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// Counters as of the last commit; no I/O.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Installs the hook run inside every terminal transition (the webhook outbox).
    pub fn set_terminal_hook(&self, hook: TerminalHook) {
        *self
            .inner
            .terminal_hook
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    fn terminal_hook(&self) -> Option<TerminalHook> {
        self.inner
            .terminal_hook
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Notified with the new counters after every commit.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<Arc<Snapshot>> {
        self.inner.changes.subscribe()
    }

    /// Whether the last commit (or write check) succeeded.
    pub fn is_writable(&self) -> bool {
        self.inner.writable.load(Ordering::Relaxed)
    }

    /// Writes a heartbeat row so a broken disk shows up in health even when nothing else writes.
    pub async fn check_writable(&self) -> bool {
        let now = chrono::Utc::now().timestamp_millis();
        let ok = self
            .write(move |c| {
                c.execute(
                    "UPDATE settings SET value = ?1 WHERE key = 'heartbeat'",
                    [now.to_string()],
                )?;
                Ok(())
            })
            .await
            .is_ok();
        self.inner.writable.store(ok, Ordering::Relaxed);
        ok
    }

    /// Stops the writer after it has committed everything queued.
    pub fn close(&self) {
        lock(&self.inner.writer).take();
        if let Some(h) = lock(&self.inner.thread).take() {
            let _ = h.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drains the channel in batches: one transaction per batch, one savepoint per write,
/// so a failing write rolls back alone and everything else commits with one fsync.
fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<WriteJob>,
    max_batch: usize,
    inner: std::sync::Weak<Inner>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let commit_err = run_batch(&mut conn, &mut batch).err();
        let prev: Option<Arc<Snapshot>> = inner
            .upgrade()
            .map(|i| i.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone());
        let snapshot = load_snapshot(&conn, prev.as_deref());
        if let Some(inner) = inner.upgrade() {
            inner
                .writable
                .store(commit_err.is_none(), Ordering::Relaxed);
            if let Ok(s) = snapshot {
                let s = Arc::new(s);
                *inner.snapshot.write().unwrap_or_else(|e| e.into_inner()) = s.clone();
                inner.changes.send_replace(s);
            }
        }
        if let Some(e) = &commit_err {
            tracing::error!(error = %e, "store commit failed");
        }
        for op in batch {
            op.reply(commit_err.clone());
        }
    }
}

fn run_batch(conn: &mut Connection, batch: &mut [WriteJob]) -> Result<(), String> {
    let mut tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    for op in batch.iter_mut() {
        let sp = tx.savepoint().map_err(|e| e.to_string())?;
        // A panicking write must not take the writer thread (and every later write) with it.
        let ok =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op.run(&sp))).unwrap_or(false);
        if ok { sp.commit() } else { sp.finish() }.map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())
}

fn load_snapshot(conn: &Connection, prev: Option<&Snapshot>) -> Result<Snapshot, StoreError> {
    let mut counters = HashMap::new();
    let mut stmt = conn.prepare_cached("SELECT name, value FROM counters")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (k, v) = row?;
        counters.insert(k, v);
    }
    let paused: String =
        conn.query_row("SELECT value FROM settings WHERE key = 'paused'", [], |r| {
            r.get(0)
        })?;
    // Percentiles only change when a job completes; skip the query otherwise.
    let recent = match prev {
        Some(p) if p.counters.get("processing_ms_count") == counters.get("processing_ms_count") => {
            p.recent_processing_ms.clone()
        }
        _ => jobs::recent_processing_ms(conn, RECENT_WINDOW)?,
    };
    Ok(Snapshot {
        counters,
        paused: paused == "true",
        recent_processing_ms: recent,
    })
}

/// Adds `delta` to each named counter.
fn bump(conn: &Connection, deltas: &[(&str, i64)]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")?;
    for (name, d) in deltas {
        if *d != 0 {
            stmt.execute(rusqlite::params![name, d])?;
        }
    }
    Ok(())
}

/// Milliseconds since the epoch, the store's time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Whether the queue is paused (persisted).
    pub fn paused(&self) -> bool {
        self.snapshot().paused
    }

    /// A stored setting.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.read(move |c| {
            use rusqlite::OptionalExtension;
            Ok(
                c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
        .await
    }

    /// Stores a setting.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            Ok(())
        })
        .await
    }

    /// Pauses or resumes the queue; returns whether it changed.
    pub async fn set_paused(&self, paused: bool) -> Result<bool, StoreError> {
        self.write(move |c| {
            let n = c.execute(
                "UPDATE settings SET value = ?1 WHERE key = 'paused' AND value != ?1",
                [if paused { "true" } else { "false" }],
            )?;
            Ok(n > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
