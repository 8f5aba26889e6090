//! The embedded store: every storage port on one `redb` file, for the local
//! server and small self-hosted installs.
//!
//! Reads run in place on a snapshot; writes go to one writer thread that
//! commits them in groups (see [`Writer`]). Each
//! logical operation is one transaction: a check and the write that depends on
//! it happen inside one write transaction, which redb runs one at a time, so
//! "do this once" and "only forward" hold however many callers race.
//!
//! Keys are `&str` segments joined with U+001F (unit separator), for example
//! `acme␟01J…` in `calls`. A workspace id never contains that character, so the
//! workspace is always a whole segment: `acme␟` never prefixes `acme-corp␟…`.
//! Values are JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, oneshot};

use switchboard_model::calls::{CallSession, Direction, TimelineEvent};
use switchboard_model::changes::Change;
use switchboard_model::ids::{AccountSid, CallId, CallSid, MessageSid, WorkspaceId};
use switchboard_model::jobs::{CopyJob, QueuedJob};
use switchboard_model::messages::Message;
use switchboard_model::phone::E164;
use switchboard_model::ports::{
    CallChange, CallQuery, CallStore, ChangeFeed, ChangesQuery, DurableQueue, IdempotencyStore, JobQueue,
    MessageChange, MessageQuery, MessageStore, Modified, NumberStore, Page, StoreError, WorkspaceStore,
};
use switchboard_model::time::Timestamp;
use switchboard_model::workspace::{PhoneNumber, Workspace};

use crate::owner_only;

/// The database file inside the data directory.
const FILE_NAME: &str = "switchboard.redb";

type Def = TableDefinition<'static, &'static str, &'static str>;

/// `<workspace>` → `Workspace`
const WORKSPACES: Def = TableDefinition::new("workspaces");
/// `<AccountSid>` → workspace id
const ACCOUNTS: Def = TableDefinition::new("accounts");
/// `<workspace>␟<E164>` → `PhoneNumber`
const NUMBERS: Def = TableDefinition::new("numbers");
/// `<E164>` → workspace id
const NUMBER_OWNERS: Def = TableDefinition::new("number_owners");
/// `<workspace>␟<CallId>` → `CallSession` (ULIDs: key order is creation order)
const CALLS: Def = TableDefinition::new("calls");
/// `<workspace>␟<CallId>␟<event key>` → `TimelineEvent`
const EVENTS: Def = TableDefinition::new("call_events");
/// `<workspace>␟<CallSid>` → `CallId`
const CALL_SIDS: Def = TableDefinition::new("call_sids");
/// `<workspace>␟<MessageSid>` → `Message`
const MESSAGES: Def = TableDefinition::new("messages");
/// `<workspace>␟<created_at, sortable hex>␟<MessageSid>` → `MessageSid`
const MESSAGE_ORDER: Def = TableDefinition::new("message_order");
/// `<workspace>␟<key>` → `Remembered`
const IDEMPOTENCY: Def = TableDefinition::new("idempotency");
/// `<expiry ms, sortable hex>␟<workspace>␟<key>` → the `IDEMPOTENCY` key, so
/// expired records can be swept oldest first.
const IDEMPOTENCY_EXPIRY: Def = TableDefinition::new("idempotency_expiry");

/// `<ULID>` → a recording copy job waiting or retrying (the local job queue).
const JOBS: Def = TableDefinition::new("recording_jobs");
/// `<workspace>␟<updated_at, sortable hex>␟<CallId>` → `CallId`: sessions in
/// the order they last changed (catching up on live events).
const CALL_CHANGES: Def = TableDefinition::new("call_changes");
/// `<workspace>␟<updated_at, sortable hex>␟<MessageSid>` → `MessageSid`.
const MESSAGE_CHANGES: Def = TableDefinition::new("message_changes");

/// How many changes the live feed holds for a receiver that is behind.
const FEED_CAPACITY: usize = 4096;

const ALL_TABLES: [Def; 14] = [
    CALL_CHANGES,
    MESSAGE_CHANGES,
    JOBS,
    WORKSPACES,
    ACCOUNTS,
    NUMBERS,
    NUMBER_OWNERS,
    CALLS,
    EVENTS,
    CALL_SIDS,
    MESSAGES,
    MESSAGE_ORDER,
    IDEMPOTENCY,
    IDEMPOTENCY_EXPIRY,
];

const SEP: char = '\u{1f}';
/// The character after `SEP`: `prefix + SEP .. prefix + AFTER_SEP` is exactly
/// the keys under `prefix`.
const AFTER_SEP: char = '\u{20}';

/// Page size when a query asks for none, and the most one page may hold.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

/// How many expired idempotency records one `remember` deletes at most.
const SWEEP_BATCH: usize = 64;

/// redb's page cache when nothing else is asked for (its own default is
/// 1 GiB). `SWITCHBOARD_STORE_CACHE_MB` sets it on the local server.
pub const DEFAULT_CACHE_MB: u64 = 32;

/// How the store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// The most memory redb's page cache (read cache and write buffer) takes.
    pub cache_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self::with_cache_mb(DEFAULT_CACHE_MB)
    }
}

impl StoreOptions {
    pub fn with_cache_mb(megabytes: u64) -> Self {
        let bytes = megabytes.saturating_mul(1024 * 1024);
        Self {
            cache_bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
        }
    }
}

/// All five storage ports on one redb database file.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Slot>,
    writer: Arc<Writer>,
    path: PathBuf,
    /// Wakes the local worker when a job is queued.
    jobs_queued: Arc<Notify>,
    /// Every session and message change, once it is durable.
    changes: broadcast::Sender<Change>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating the directory and the database file
    /// if needed, with the default cache. Blocks; call it once at startup.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// As [`Self::open`], with `options`.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        owner_only::create_dir(dir)
            .map_err(|e| StoreError::Unavailable(format!("cannot create the data directory {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        // redb would create the file as the umask says; it is made 0600 first
        // (redb initialises an empty file as a new database).
        owner_only::create_file(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open the database {}: {e}", path.display())))?;
        let file = path.clone();
        Self::open_on(
            path,
            Box::new(move || redb::Builder::new().set_cache_size(options.cache_bytes).create(&file)),
        )
    }

    /// Opens the store with `opener`, which [`Slot`] calls again to reopen it.
    fn open_on(path: PathBuf, opener: Opener) -> Result<Self, StoreError> {
        let db = opener()
            .map_err(|e| StoreError::Unavailable(format!("cannot open the database {}: {e}", path.display())))?;
        // Create every table now, so a read never meets a missing one.
        let txn = db.begin_write().map_err(unavailable)?;
        for table in ALL_TABLES {
            txn.open_table(table).map_err(unavailable)?;
        }
        txn.commit().map_err(unavailable)?;
        let db = Arc::new(Slot::new(db, opener));
        Ok(Self {
            writer: Arc::new(Writer::start(Arc::clone(&db))?),
            db,
            path,
            jobs_queued: Arc::new(Notify::new()),
            changes: broadcast::channel(FEED_CAPACITY).0,
        })
    }

    /// How many times the database was closed and opened again in place
    /// after a storage failure (see [`Slot`]).
    pub fn reopens(&self) -> u64 {
        self.db.reopens.load(Ordering::Relaxed)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `op` in one read transaction (a consistent snapshot). Reads take
    /// microseconds and never wait for a writer, so they run in place. A
    /// snapshot holds only durable commits: the writer commits every batch
    /// durably before readers can see it.
    async fn read<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    {
        let result = self.db.read(op);
        if matches!(result, Err(StoreError::Unavailable(_))) {
            // Maybe the disk failed and redb refuses everything until it is
            // reopened: the writer checks, and reopens it if so.
            self.writer.check_database();
        }
        result
    }

    /// Runs `op` in a write transaction; what it wrote is committed, and on
    /// disk, when this returns. If it fails, nothing it wrote is kept.
    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_if_changed(move |txn| op(txn).map(|value| (value, true)))
            .await
    }

    /// As [`Self::write`], for an operation that may find nothing to change
    /// (a duplicate, a state already reached): it says so with `false`, and
    /// must then have written nothing. `op` may run twice (see [`Writer`]),
    /// so it only reads what it captured.
    async fn write_if_changed<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<(T, bool), StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        self.writer.submit(Box::new(Pending {
            op,
            outcome: None,
            answer,
        }))?;
        answered
            .await
            .map_err(|_| StoreError::Unavailable("embedded store: the writer stopped".into()))?
    }
}

/// A write waiting for the writer thread.
trait Job: Send {
    /// Runs the write in the batch's transaction. After [`Ran::Failed`] the
    /// transaction may hold half of it and is rolled back.
    fn run(&mut self, txn: &WriteTransaction) -> Ran;
    /// Answers the caller once the batch's commit is known.
    fn answer(self: Box<Self>, committed: Result<(), String>);
}

enum Ran {
    Changed,
    Unchanged,
    Failed,
}

struct Pending<T, F> {
    op: F,
    /// The last run's outcome; `None` if it panicked or never ran.
    outcome: Option<Result<T, StoreError>>,
    answer: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: Fn(&WriteTransaction) -> Result<(T, bool), StoreError> + Send,
{
    fn run(&mut self, txn: &WriteTransaction) -> Ran {
        self.outcome = None;
        let (outcome, ran) = match (self.op)(txn) {
            Ok((value, true)) => (Ok(value), Ran::Changed),
            Ok((value, false)) => (Ok(value), Ran::Unchanged),
            Err(error) => (Err(error), Ran::Failed),
        };
        self.outcome = Some(outcome);
        ran
    }

    fn answer(self: Box<Self>, committed: Result<(), String>) {
        // A failed write reports its own error; the others stand or fall
        // with the commit (even an unchanged one read the batch's writes).
        let result = match self.outcome {
            Some(Ok(value)) => committed.map(|()| value).map_err(StoreError::Unavailable),
            Some(Err(error)) => Err(error),
            // It panicked, or the batch could not begin.
            None => Err(StoreError::Unavailable(committed.err().unwrap_or_else(|| {
                "embedded store: the write panicked and was rolled back".into()
            }))),
        };
        // The caller may have gone away (a timeout); its write stands.
        let _ = self.answer.send(result);
    }
}

/// The most writes one commit covers.
const MAX_BATCH: usize = 256;

/// Group commit. redb runs one write transaction at a time and a durable
/// commit costs an fsync (100–150 µs on the benchmark machine's disk), so
/// one write per commit caps a busy server at a few thousand writes a second.
/// Instead one thread runs every write: the writes queued up (and those that
/// arrive while it works) run one after another in one transaction, which is
/// then committed durably; nobody is answered before that, and readers see
/// the batch only once it is on disk. A write that fails or panics must not
/// take the others with it: the transaction is rolled back and the writes
/// before it run again (so writes are `Fn`; none runs more than twice).
///
/// The writer is also the one that finds the disk failing (a full disk
/// fails a commit): it then has the database reopened in place (see
/// [`Slot`]), so the store recovers by itself once the disk does.
struct Writer {
    jobs: Option<std::sync::mpsc::Sender<Box<dyn Job>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// A reader met an error: the writer checks the database after its
    /// next batch.
    check_requested: Arc<AtomicBool>,
}

impl Writer {
    fn start(slot: Arc<Slot>) -> Result<Self, StoreError> {
        let (jobs, queue) = std::sync::mpsc::channel();
        let check_requested = Arc::new(AtomicBool::new(false));
        let check = Arc::clone(&check_requested);
        let thread = std::thread::Builder::new()
            .name("switchboard-store-writer".into())
            .spawn(move || run_writer(&slot, &queue, &check))
            .map_err(|e| StoreError::Unavailable(format!("embedded store: cannot start the writer: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
            check_requested,
        })
    }

    fn submit(&self, job: Box<dyn Job>) -> Result<(), StoreError> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StoreError::Unavailable("embedded store: the writer stopped".into()))
    }

    /// Asks the writer to check that the database still works (and reopen
    /// it if not), once, however many readers ask before it gets to it.
    fn check_database(&self) {
        if !self.check_requested.swap(true, Ordering::AcqRel) {
            let _ = self.submit(Box::new(WakeUp));
        }
    }
}

impl Drop for Writer {
    /// The last handle closes the queue and waits for the writer, so the
    /// database file is closed (and can be opened again) when the store is gone.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A job that writes nothing: it wakes the writer up for a check.
struct WakeUp;

impl Job for WakeUp {
    fn run(&mut self, _txn: &WriteTransaction) -> Ran {
        Ran::Unchanged
    }

    fn answer(self: Box<Self>, _committed: Result<(), String>) {}
}

fn run_writer(slot: &Slot, queue: &std::sync::mpsc::Receiver<Box<dyn Job>>, check_requested: &AtomicBool) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut reopening = Reopening::default();
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while !batch.is_empty() {
            let Some(db) = slot.writable(&mut reopening) else {
                // Closed after a storage failure, and not open again yet:
                // everything waiting is refused now rather than held.
                while let Ok(job) = queue.try_recv() {
                    batch.push(job);
                }
                for job in batch.drain(..) {
                    job.answer(Err(REOPENING.into()));
                }
                // The next reader that is refused asks again.
                check_requested.store(false, Ordering::Release);
                break;
            };
            let (finished, committed, failed) = commit_batch(&db, queue, &mut batch);
            for job in batch.drain(..finished) {
                job.answer(committed.clone());
            }
            let check = check_requested.swap(false, Ordering::AcqRel);
            if (failed || committed.is_err() || check) && !accepts_writes(&db) {
                drop(db);
                slot.close();
                reopening.closed();
            }
        }
    }
}

/// What a write or a read meets while the database is being reopened.
const REOPENING: &str = "embedded store: the database is being reopened after a storage failure; retry shortly";

/// Whether redb still takes a write transaction: after an I/O error (a full
/// disk) it refuses everything until the database is opened again.
fn accepts_writes(db: &Database) -> bool {
    match db.begin_write() {
        Ok(txn) => {
            let _ = txn.abort();
            true
        }
        Err(redb::TransactionError::Storage(error)) => {
            tracing::error!(%error, "the embedded store failed on disk; reopening it");
            false
        }
        Err(_) => true,
    }
}

/// The open database, swapped for a new one after a storage failure. redb
/// refuses every operation after an I/O error (`PreviousIo`) until the
/// database is closed and opened again, which repairs it from its last
/// durable commit; so the writer closes it and reopens it in place, the
/// process never needs a restart. Readers hold the lock for the few
/// microseconds of a read; while no database is open they are refused at
/// once (the store is unavailable, which they say).
struct Slot {
    current: RwLock<Option<Arc<Database>>>,
    opener: Opener,
    reopens: AtomicU64,
}

/// Opens the database file (again).
type Opener = Box<dyn Fn() -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// When the writer may reopen the database next. The first failure reopens
/// it at once; a failure again within a second of reopening (the disk is
/// still full), or a reopen that fails, waits 100 ms, doubling, at most
/// 2 s: a reopen repairs the file, which costs a pass over it, and must not
/// run after every refused write. Meanwhile writes and reads are refused
/// at once.
struct Reopening {
    delay: Duration,
    next_try: Instant,
    opened_at: Option<Instant>,
}

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(2);

impl Default for Reopening {
    fn default() -> Self {
        Self {
            delay: FIRST_DELAY,
            next_try: Instant::now(),
            opened_at: None,
        }
    }
}

impl Reopening {
    /// The database was closed after a failure.
    fn closed(&mut self) {
        let now = Instant::now();
        if self
            .opened_at
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            self.wait();
        } else {
            self.delay = FIRST_DELAY;
            self.next_try = now;
        }
    }

    fn wait(&mut self) {
        self.next_try = Instant::now() + self.delay;
        self.delay = (self.delay * 2).min(MAX_DELAY);
    }
}

impl Slot {
    fn new(db: Database, opener: Opener) -> Self {
        Self {
            current: RwLock::new(Some(Arc::new(db))),
            opener,
            reopens: AtomicU64::new(0),
        }
    }

    /// Runs `op` on a snapshot of the open database.
    fn read<T>(&self, op: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let db = current
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable(REOPENING.into()))?;
        op(&db.begin_read().map_err(unavailable)?)
    }

    /// The database for the writer's next batch: the open one, or one opened
    /// again now if the last was closed and it is time to try.
    fn writable(&self, reopening: &mut Reopening) -> Option<Arc<Database>> {
        if let Some(db) = self.current.read().unwrap_or_else(PoisonError::into_inner).clone() {
            return Some(db);
        }
        if Instant::now() < reopening.next_try {
            return None;
        }
        match (self.opener)() {
            Ok(db) => {
                let db = Arc::new(db);
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&db));
                self.reopens.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("the embedded store is open again after a storage failure");
                reopening.opened_at = Some(Instant::now());
                Some(db)
            }
            Err(error) => {
                tracing::error!(%error, retry_in_ms = reopening.delay.as_millis() as u64, "the embedded store could not be reopened yet");
                reopening.wait();
                None
            }
        }
    }

    /// Closes the database: once readers have let go of it, redb closes the
    /// file, so it can be opened again. Only the writer calls this, after
    /// dropping its own handle.
    fn close(&self) {
        let closed = self.current.write().unwrap_or_else(PoisonError::into_inner).take();
        drop(closed);
    }
}

/// Runs `batch`, and every write that joins it meanwhile, in one transaction
/// and commits it durably. A write that fails (or panics) ends the batch
/// early: the transaction may hold part of it, so it is rolled back, the
/// writes before the failed one run again and are committed, and the ones
/// after it wait for the next batch. Returns how many writes, from the
/// front, are finished, how their commit went, and whether one failed.
fn commit_batch(
    db: &Database,
    queue: &std::sync::mpsc::Receiver<Box<dyn Job>>,
    batch: &mut Vec<Box<dyn Job>>,
) -> (usize, Result<(), String>, bool) {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => return (batch.len(), Err(format!("embedded store: {e}")), true),
    };
    let mut changed = false;
    let mut next = 0;
    loop {
        if next == batch.len() {
            // Writes that queued up meanwhile join, up to the limit.
            let joined = if batch.len() < MAX_BATCH {
                queue.try_recv().ok()
            } else {
                None
            };
            let Some(job) = joined else { break };
            batch.push(job);
        }
        match run_job(&mut batch[next], &txn) {
            Ran::Changed => changed = true,
            Ran::Unchanged => {}
            Ran::Failed => {
                let _ = txn.abort();
                return (next + 1, replay(db, &mut batch[..next]), true);
            }
        }
        next += 1;
    }
    (batch.len(), commit(txn, changed), false)
}

/// Runs again, in a new transaction, writes that ran without failing in one
/// that was rolled back, and commits them.
fn replay(db: &Database, jobs: &mut [Box<dyn Job>]) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| format!("embedded store: {e}"))?;
    let mut changed = false;
    for job in jobs {
        match run_job(job, &txn) {
            Ran::Changed => changed = true,
            Ran::Unchanged => {}
            // Only the disk can make a write fail the second time.
            Ran::Failed => return Err("embedded store: a write failed when run again".into()),
        }
    }
    commit(txn, changed)
}

/// Runs one write; a panic counts as a failure.
fn run_job(job: &mut Box<dyn Job>, txn: &WriteTransaction) -> Ran {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(txn))).unwrap_or_else(|_| {
        tracing::error!("an embedded store write panicked; it was rolled back");
        Ran::Failed
    })
}

/// Commits a batch's transaction durably, or drops it if it changed nothing.
fn commit(txn: WriteTransaction, changed: bool) -> Result<(), String> {
    let done = if changed {
        txn.commit().map_err(redb::Error::from)
    } else {
        txn.abort().map_err(redb::Error::from)
    };
    done.map_err(|e| format!("embedded store: {e}"))
}

#[async_trait]
impl WorkspaceStore for EmbeddedStore {
    async fn get_workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        let id = id.clone();
        self.read(move |txn| load(&txn.open_table(WORKSPACES).map_err(unavailable)?, id.as_str()))
            .await
    }

    async fn put_workspace(&self, workspace: &Workspace) -> Result<(), StoreError> {
        let workspace = workspace.clone();
        self.write(move |txn| {
            let id = workspace.id.as_str();
            let mut workspaces = txn.open_table(WORKSPACES).map_err(unavailable)?;
            let mut accounts = txn.open_table(ACCOUNTS).map_err(unavailable)?;

            let new_account = workspace.twilio.as_ref().map(|t| t.account_sid.as_str());
            if let Some(sid) = new_account
                && load_str(&accounts, sid)?.is_some_and(|owner| owner != id)
            {
                return Err(StoreError::Conflict(format!(
                    "Twilio account {sid} is connected to another workspace"
                )));
            }
            let old: Option<Workspace> = load(&workspaces, id)?;
            let old_account = old.and_then(|w| w.twilio).map(|t| t.account_sid);
            if let Some(old_sid) = old_account.as_ref().map(AccountSid::as_str)
                && Some(old_sid) != new_account
                && load_str(&accounts, old_sid)?.is_some_and(|owner| owner == id)
            {
                accounts.remove(old_sid).map_err(unavailable)?;
            }
            if let Some(sid) = new_account {
                accounts.insert(sid, id).map_err(unavailable)?;
            }
            save(&mut workspaces, id, &workspace)
        })
        .await
    }

    async fn workspace_by_account(&self, account: &AccountSid) -> Result<Option<WorkspaceId>, StoreError> {
        let account = account.clone();
        self.read(move |txn| {
            let accounts = txn.open_table(ACCOUNTS).map_err(unavailable)?;
            load_str(&accounts, account.as_str())?
                .map(|id| parse_workspace(&id))
                .transpose()
        })
        .await
    }
}

#[async_trait]
impl NumberStore for EmbeddedStore {
    async fn replace_numbers(&self, workspace: &WorkspaceId, numbers: &[PhoneNumber]) -> Result<(), StoreError> {
        let ws = workspace.clone();
        // One entry per number; a number listed twice counts once (the last wins).
        let wanted: BTreeMap<E164, PhoneNumber> = numbers.iter().map(|n| (n.number.clone(), n.clone())).collect();
        self.write(move |txn| {
            let mut table = txn.open_table(NUMBERS).map_err(unavailable)?;
            let mut owners = txn.open_table(NUMBER_OWNERS).map_err(unavailable)?;

            for number in wanted.keys() {
                if load_str(&owners, number.as_str())?.is_some_and(|owner| owner != ws.as_str()) {
                    return Err(StoreError::Conflict(format!(
                        "phone number {number} belongs to another workspace"
                    )));
                }
            }

            let existing: BTreeMap<E164, PhoneNumber> = scan::<PhoneNumber>(&table, &[ws.as_str()])?
                .into_iter()
                .map(|(_, n)| (n.number.clone(), n))
                .collect();
            for gone in existing.keys().filter(|n| !wanted.contains_key(*n)) {
                table
                    .remove(key(&[ws.as_str(), gone.as_str()]).as_str())
                    .map_err(unavailable)?;
                owners.remove(gone.as_str()).map_err(unavailable)?;
            }
            for (number, new) in &wanted {
                // Twilio knows the number and its SID; agents and label are ours.
                let record = match existing.get(number) {
                    Some(old) => PhoneNumber {
                        agents: old.agents.clone(),
                        label: old.label.clone(),
                        ..new.clone()
                    },
                    None => new.clone(),
                };
                save(&mut table, &key(&[ws.as_str(), number.as_str()]), &record)?;
                owners.insert(number.as_str(), ws.as_str()).map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }

    async fn list_numbers(&self, workspace: &WorkspaceId) -> Result<Vec<PhoneNumber>, StoreError> {
        let ws = workspace.clone();
        self.read(move |txn| {
            let table = txn.open_table(NUMBERS).map_err(unavailable)?;
            Ok(scan(&table, &[ws.as_str()])?.into_iter().map(|(_, n)| n).collect())
        })
        .await
    }

    async fn get_number(&self, workspace: &WorkspaceId, number: &E164) -> Result<Option<PhoneNumber>, StoreError> {
        let key = key(&[workspace.as_str(), number.as_str()]);
        self.read(move |txn| load(&txn.open_table(NUMBERS).map_err(unavailable)?, &key))
            .await
    }

    async fn update_number(&self, workspace: &WorkspaceId, number: &PhoneNumber) -> Result<(), StoreError> {
        let key = key(&[workspace.as_str(), number.number.as_str()]);
        let number = number.clone();
        self.write(move |txn| {
            let mut table = txn.open_table(NUMBERS).map_err(unavailable)?;
            let mut stored: PhoneNumber =
                load(&table, &key)?.ok_or_else(|| StoreError::NotFound(format!("phone number {}", number.number)))?;
            stored.agents.clone_from(&number.agents);
            stored.label.clone_from(&number.label);
            save(&mut table, &key, &stored)
        })
        .await
    }

    async fn workspace_by_number(&self, number: &E164) -> Result<Option<WorkspaceId>, StoreError> {
        let number = number.clone();
        self.read(move |txn| {
            let owners = txn.open_table(NUMBER_OWNERS).map_err(unavailable)?;
            load_str(&owners, number.as_str())?
                .map(|id| parse_workspace(&id))
                .transpose()
        })
        .await
    }
}

#[async_trait]
impl CallStore for EmbeddedStore {
    async fn create_call(&self, session: &CallSession) -> Result<(), StoreError> {
        let stored = session.clone();
        self.write(move |txn| {
            let mut calls = txn.open_table(CALLS).map_err(unavailable)?;
            let key = key(&[stored.workspace.as_str(), stored.id.as_str()]);
            if calls.get(key.as_str()).map_err(unavailable)?.is_some() {
                return Err(StoreError::Conflict(format!("call session {} exists", stored.id)));
            }
            save(&mut calls, &key, &stored)?;
            index_change(txn, None, &stored)
        })
        .await?;
        self.announce(Change::Call(Box::new(session.clone())));
        Ok(())
    }

    async fn get_call(&self, workspace: &WorkspaceId, id: &CallId) -> Result<Option<CallSession>, StoreError> {
        let key = key(&[workspace.as_str(), id.as_str()]);
        self.read(move |txn| load(&txn.open_table(CALLS).map_err(unavailable)?, &key))
            .await
    }

    async fn modify_call(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        change: CallChange<'_>,
    ) -> Result<Modified<CallSession>, StoreError> {
        let key = key(&[workspace.as_str(), id.as_str()]);
        self.compare_and_set(CALLS, &key, &format!("call session {id}"), |before: &CallSession| {
            let mut after = before.clone();
            change(&mut after);
            after.differs_from(before).then(|| {
                after.touch(before);
                after
            })
        })
        .await
    }

    async fn append_event(
        &self,
        workspace: &WorkspaceId,
        id: &CallId,
        event: &TimelineEvent,
    ) -> Result<bool, StoreError> {
        let key = key(&[workspace.as_str(), id.as_str(), &event.key]);
        let seen = self
            .read(|txn| {
                let events = txn.open_table(EVENTS).map_err(unavailable)?;
                Ok(events.get(key.as_str()).map_err(unavailable)?.map(|_| false))
            })
            .await?;
        if let Some(duplicate) = seen {
            return Ok(duplicate);
        }
        let event = event.clone();
        self.write_if_changed(move |txn| {
            let mut events = txn.open_table(EVENTS).map_err(unavailable)?;
            if events.get(key.as_str()).map_err(unavailable)?.is_some() {
                return Ok((false, false));
            }
            save(&mut events, &key, &event)?;
            Ok((true, true))
        })
        .await
    }

    async fn timeline(&self, workspace: &WorkspaceId, id: &CallId) -> Result<Vec<TimelineEvent>, StoreError> {
        let (ws, id) = (workspace.clone(), id.clone());
        self.read(move |txn| {
            let events = txn.open_table(EVENTS).map_err(unavailable)?;
            let mut events: Vec<TimelineEvent> = scan(&events, &[ws.as_str(), id.as_str()])?
                .into_iter()
                .map(|(_, e)| e)
                .collect();
            // Twilio delivers out of order; the timeline follows when things happened.
            events.sort_by_key(|e| e.at);
            Ok(events)
        })
        .await
    }

    async fn list_calls(&self, workspace: &WorkspaceId, query: &CallQuery) -> Result<Page<CallSession>, StoreError> {
        let ws = workspace.clone();
        let query = query.clone();
        self.read(move |txn| {
            let calls = txn.open_table(CALLS).map_err(unavailable)?;
            let after = query
                .cursor
                .as_deref()
                .map(|c| decode_cursor(c).and_then(|id| parse_cursor_id(c, &id)))
                .transpose()?;
            let keep = |s: &CallSession| {
                query.agent.as_ref().is_none_or(|a| s.agent.as_ref() == Some(a))
                    && query.direction.is_none_or(|d| s.direction == d)
                    && query.state.is_none_or(|st| s.state == st)
            };
            newest_first(
                &calls,
                ws.as_str(),
                after.as_ref().map(CallId::as_str),
                query.limit,
                keep,
                |s| s.id.to_string(),
            )
        })
        .await
    }

    async fn calls_changed(
        &self,
        workspace: &WorkspaceId,
        query: &ChangesQuery,
    ) -> Result<Page<CallSession>, StoreError> {
        self.changed(CALLS, workspace, query).await
    }

    async fn link_call_sid(&self, workspace: &WorkspaceId, sid: &CallSid, id: &CallId) -> Result<(), StoreError> {
        let key = key(&[workspace.as_str(), sid.as_str()]);
        let linked = self
            .read(|txn| {
                let links = txn.open_table(CALL_SIDS).map_err(unavailable)?;
                Ok(links.get(key.as_str()).map_err(unavailable)?.map(|_| ()))
            })
            .await?;
        if linked.is_some() {
            return Ok(());
        }
        let id = id.clone();
        self.write_if_changed(move |txn| {
            let mut links = txn.open_table(CALL_SIDS).map_err(unavailable)?;
            // The first link wins: later ones are no-ops.
            if links.get(key.as_str()).map_err(unavailable)?.is_some() {
                return Ok(((), false));
            }
            links.insert(key.as_str(), id.as_str()).map_err(unavailable)?;
            Ok(((), true))
        })
        .await
    }

    async fn call_by_sid(&self, workspace: &WorkspaceId, sid: &CallSid) -> Result<Option<CallId>, StoreError> {
        let key = key(&[workspace.as_str(), sid.as_str()]);
        self.read(move |txn| {
            let links = txn.open_table(CALL_SIDS).map_err(unavailable)?;
            load_str(&links, &key)?
                .map(|id| CallId::parse(&id).map_err(|e| StoreError::Corrupt(format!("call_sids {key:?}: {e}"))))
                .transpose()
        })
        .await
    }
}

/// A session or a message: what a compare-and-set compares (how many times
/// the value was stored), where the value's change index lives, and the
/// change it announces.
trait Versioned: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const CHANGES: Def;
    fn version(&self) -> u64;
    /// Its key in `CHANGES`, and the id that key points to.
    fn change_key(&self) -> (String, String);
    fn change(self) -> Change;
}

impl Versioned for CallSession {
    const CHANGES: Def = CALL_CHANGES;

    fn version(&self) -> u64 {
        self.version
    }

    fn change_key(&self) -> (String, String) {
        let id = self.id.to_string();
        let at = sortable_time(&self.updated_at);
        (key(&[self.workspace.as_str(), &at, &id]), id)
    }

    fn change(self) -> Change {
        Change::Call(Box::new(self))
    }
}

impl Versioned for Message {
    const CHANGES: Def = MESSAGE_CHANGES;

    fn version(&self) -> u64 {
        self.version
    }

    fn change_key(&self) -> (String, String) {
        let sid = self.sid.to_string();
        let at = sortable_time(&self.updated_at);
        (key(&[self.workspace.as_str(), &at, &sid]), sid)
    }

    fn change(self) -> Change {
        Change::Message(Box::new(self))
    }
}

/// Moves a value's entry in its change index from where `before` had it to
/// where `after` has it, in the transaction that stores `after`.
fn index_change<T: Versioned>(txn: &WriteTransaction, before: Option<&T>, after: &T) -> Result<(), StoreError> {
    let mut index = txn.open_table(T::CHANGES).map_err(unavailable)?;
    if let Some(before) = before {
        index.remove(before.change_key().0.as_str()).map_err(unavailable)?;
    }
    let (key, id) = after.change_key();
    index.insert(key.as_str(), id.as_str()).map_err(unavailable)?;
    Ok(())
}

impl EmbeddedStore {
    /// Runs `change` on the value under `key` in `table`, on a snapshot
    /// (reads never wait for the writer), and hands what it made to the
    /// writer on condition that the stored version is still the one `change`
    /// saw; if another write landed meanwhile, it runs again on the new
    /// value. A change that changes nothing (`None`) writes nothing.
    async fn compare_and_set<T: Versioned>(
        &self,
        table: Def,
        key: &str,
        what: &str,
        change: impl Fn(&T) -> Option<T>,
    ) -> Result<Modified<T>, StoreError> {
        loop {
            let before: T = self
                .read(|txn| load(&txn.open_table(table).map_err(unavailable)?, key))
                .await?
                .ok_or_else(|| StoreError::NotFound(what.to_owned()))?;
            let Some(after) = change(&before) else {
                return Ok(Modified {
                    after: before.clone(),
                    before,
                });
            };
            let (key_, replaced, stored) = (key.to_owned(), before.clone(), after.clone());
            let written = self
                .write_if_changed(move |txn| {
                    let mut values = txn.open_table(table).map_err(unavailable)?;
                    let current: Option<T> = load(&values, &key_)?;
                    if current.is_none_or(|current| current.version() != replaced.version()) {
                        return Ok((false, false));
                    }
                    save(&mut values, &key_, &stored)?;
                    index_change(txn, Some(&replaced), &stored)?;
                    Ok((true, true))
                })
                .await?;
            if written {
                self.announce(after.clone().change());
                return Ok(Modified { before, after });
            }
        }
    }
}

#[async_trait]
impl MessageStore for EmbeddedStore {
    async fn put_message(&self, message: &Message) -> Result<bool, StoreError> {
        let stored = message.clone();
        let message = message.clone();
        let new = self
            .write_if_changed(move |txn| {
                let (ws, sid) = (message.workspace.as_str(), message.sid.as_str());
                let mut messages = txn.open_table(MESSAGES).map_err(unavailable)?;
                let message_key = key(&[ws, sid]);
                if messages.get(message_key.as_str()).map_err(unavailable)?.is_some() {
                    return Ok((false, false));
                }
                save(&mut messages, &message_key, &message)?;
                let mut order = txn.open_table(MESSAGE_ORDER).map_err(unavailable)?;
                let position = key(&[ws, &key_suffix(&message)]);
                order.insert(position.as_str(), sid).map_err(unavailable)?;
                index_change(txn, None, &message)?;
                Ok((true, true))
            })
            .await?;
        if new {
            self.announce(Change::Message(Box::new(stored)));
        }
        Ok(new)
    }

    async fn get_message(&self, workspace: &WorkspaceId, sid: &MessageSid) -> Result<Option<Message>, StoreError> {
        let key = key(&[workspace.as_str(), sid.as_str()]);
        self.read(move |txn| load(&txn.open_table(MESSAGES).map_err(unavailable)?, &key))
            .await
    }

    async fn list_messages(&self, workspace: &WorkspaceId, query: &MessageQuery) -> Result<Page<Message>, StoreError> {
        let ws = workspace.clone();
        let query = query.clone();
        self.read(move |txn| {
            let order = txn.open_table(MESSAGE_ORDER).map_err(unavailable)?;
            let messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
            let keep = |m: &Message| {
                // Which side is ours follows the direction.
                let (ours, theirs) = match m.direction {
                    Direction::Outbound => (&m.from, &m.to),
                    Direction::Inbound => (&m.to, &m.from),
                };
                query.number.as_ref().is_none_or(|n| n == ours)
                    && query.counterpart.as_ref().is_none_or(|c| c == theirs)
            };
            // The order index holds sids; each one is resolved in the same snapshot.
            let resolved = IndexedMessages {
                order: &order,
                messages: &messages,
                ws: ws.as_str(),
            };
            resolved.newest_first(after.as_deref(), query.limit, keep)
        })
        .await
    }

    async fn messages_changed(
        &self,
        workspace: &WorkspaceId,
        query: &ChangesQuery,
    ) -> Result<Page<Message>, StoreError> {
        self.changed(MESSAGES, workspace, query).await
    }

    async fn modify_message(
        &self,
        workspace: &WorkspaceId,
        sid: &MessageSid,
        change: MessageChange<'_>,
    ) -> Result<Modified<Message>, StoreError> {
        let key = key(&[workspace.as_str(), sid.as_str()]);
        self.compare_and_set(MESSAGES, &key, &format!("message {sid}"), |before: &Message| {
            let mut after = before.clone();
            change(&mut after);
            (after != *before).then(|| {
                after.touch(before);
                after
            })
        })
        .await
    }
}

/// An idempotency record: the first value, and when it stops counting.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Remembered {
    value: String,
    expires_at_ms: u64,
}

#[async_trait]
impl IdempotencyStore for EmbeddedStore {
    async fn remember(
        &self,
        workspace: &WorkspaceId,
        idempotency_key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let record_key = key(&[workspace.as_str(), idempotency_key]);
        let value = value.to_owned();
        self.write(move |txn| {
            let mut records = txn.open_table(IDEMPOTENCY).map_err(unavailable)?;
            let mut expiry = txn.open_table(IDEMPOTENCY_EXPIRY).map_err(unavailable)?;
            let now = now_ms();

            let stored: Option<Remembered> = load(&records, &record_key)?;
            if let Some(stored) = stored {
                if stored.expires_at_ms > now {
                    return Ok(stored.value);
                }
                // Expired: it counts as absent and is replaced below.
                expiry
                    .remove(expiry_key(stored.expires_at_ms, &record_key).as_str())
                    .map_err(unavailable)?;
            }

            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            let expires_at_ms = now.saturating_add(ttl_ms);
            save(
                &mut records,
                &record_key,
                &Remembered {
                    value: value.clone(),
                    expires_at_ms,
                },
            )?;
            expiry
                .insert(expiry_key(expires_at_ms, &record_key).as_str(), record_key.as_str())
                .map_err(unavailable)?;

            // Keys are one per request, so expired records would pile up forever:
            // each write clears a few of the oldest.
            let expired: Vec<(String, String)> = expiry
                .range::<&str>(..format!("{now:016x}").as_str())
                .map_err(unavailable)?
                .take(SWEEP_BATCH)
                .map(|entry| {
                    let (k, v) = entry.map_err(unavailable)?;
                    Ok((k.value().to_owned(), v.value().to_owned()))
                })
                .collect::<Result<_, StoreError>>()?;
            for (index_key, expired_key) in expired {
                expiry.remove(index_key.as_str()).map_err(unavailable)?;
                records.remove(expired_key.as_str()).map_err(unavailable)?;
            }
            Ok(value.clone())
        })
        .await
    }
}

// ---------------------------------------------------------------------------
// Keys, values and listings

fn key(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        key.push_str(part);
    }
    key
}

/// The key range holding exactly the keys under `parts` (whole segments).
fn prefix_range(parts: &[&str]) -> (String, String) {
    let base = key(parts);
    (format!("{base}{SEP}"), format!("{base}{AFTER_SEP}"))
}

/// `<sortable created_at>␟<MessageSid>`: orders a workspace's messages by time.
fn key_suffix(message: &Message) -> String {
    format!("{}{SEP}{}", sortable_time(&message.created_at), message.sid)
}

/// Fixed-width hex that sorts like the time: the sign bit flipped makes two's
/// complement order unsigned order. (Nanoseconds, though times are whole
/// milliseconds now: keys written before stay in order with new ones.)
fn sortable_time(at: &Timestamp) -> String {
    let nanos = unix_nanos(at).cast_unsigned() ^ (1u128 << 127);
    format!("{nanos:032x}")
}

fn unix_nanos(at: &Timestamp) -> i128 {
    i128::from(at.unix_millis()) * 1_000_000
}

fn expiry_key(expires_at_ms: u64, record_key: &str) -> String {
    format!("{expires_at_ms:016x}{SEP}{record_key}")
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

fn page_size(limit: usize) -> usize {
    match limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// A cursor is the last key suffix a page returned, hex-encoded so clients
/// treat it as opaque.
fn encode_cursor(suffix: &str) -> String {
    hex::encode(suffix)
}

fn decode_cursor(cursor: &str) -> Result<String, StoreError> {
    hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| bad_cursor(cursor))
}

fn parse_cursor_id(cursor: &str, id: &str) -> Result<CallId, StoreError> {
    CallId::parse(id).map_err(|_| bad_cursor(cursor))
}

/// A cursor that is not one of ours: the client's mistake.
fn bad_cursor(cursor: &str) -> StoreError {
    let shown: String = cursor.chars().take(80).collect();
    StoreError::InvalidCursor(format!("{shown:?} is not a cursor of this listing"))
}

type Strs = &'static str;

/// One page of `workspace`'s entries in `table`, newest (last key) first,
/// starting after the entry whose key suffix is `after`.
fn newest_first<T: DeserializeOwned>(
    table: &impl ReadableTable<Strs, Strs>,
    workspace: &str,
    after: Option<&str>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
    suffix: impl Fn(&T) -> String,
) -> Result<Page<T>, StoreError> {
    let (start, end) = prefix_range(&[workspace]);
    let end = after.map_or(end, |after| key(&[workspace, after]));
    let limit = page_size(limit);
    let mut items = Vec::new();
    for entry in table
        .range::<&str>(start.as_str()..end.as_str())
        .map_err(unavailable)?
        .rev()
    {
        let (k, v) = entry.map_err(unavailable)?;
        let item: T = decode(k.value(), v.value())?;
        if !keep(&item) {
            continue;
        }
        if items.len() == limit {
            // One more exists: the page is full and has a next one.
            let next = items.last().map(|last| encode_cursor(&suffix(last)));
            return Ok(Page { items, next });
        }
        items.push(item);
    }
    Ok(Page { items, next: None })
}

/// Messages listed through their time-ordered index.
struct IndexedMessages<'a, O, M> {
    order: &'a O,
    messages: &'a M,
    ws: &'a str,
}

impl<O: ReadableTable<Strs, Strs>, M: ReadableTable<Strs, Strs>> IndexedMessages<'_, O, M> {
    fn newest_first(
        &self,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&Message) -> bool,
    ) -> Result<Page<Message>, StoreError> {
        let (start, end) = prefix_range(&[self.ws]);
        let end = after.map_or(end, |after| key(&[self.ws, after]));
        let limit = page_size(limit);
        let mut items: Vec<Message> = Vec::new();
        for entry in self
            .order
            .range::<&str>(start.as_str()..end.as_str())
            .map_err(unavailable)?
            .rev()
        {
            let (_, sid) = entry.map_err(unavailable)?;
            let message_key = key(&[self.ws, sid.value()]);
            let message: Message = load(self.messages, &message_key)?.ok_or_else(|| {
                StoreError::Corrupt(format!("message_order points at missing message {message_key:?}"))
            })?;
            if !keep(&message) {
                continue;
            }
            if items.len() == limit {
                let next = items.last().map(|last| encode_cursor(&key_suffix(last)));
                return Ok(Page { items, next });
            }
            items.push(message);
        }
        Ok(Page { items, next: None })
    }
}

fn load<T: DeserializeOwned>(table: &impl ReadableTable<Strs, Strs>, key: &str) -> Result<Option<T>, StoreError> {
    match table.get(key).map_err(unavailable)? {
        Some(value) => decode(key, value.value()).map(Some),
        None => Ok(None),
    }
}

fn load_str(table: &impl ReadableTable<Strs, Strs>, key: &str) -> Result<Option<String>, StoreError> {
    Ok(table.get(key).map_err(unavailable)?.map(|v| v.value().to_owned()))
}

/// Every value under `parts`, in key order.
fn scan<T: DeserializeOwned>(
    table: &impl ReadableTable<Strs, Strs>,
    parts: &[&str],
) -> Result<Vec<(String, T)>, StoreError> {
    let (start, end) = prefix_range(parts);
    table
        .range::<&str>(start.as_str()..end.as_str())
        .map_err(unavailable)?
        .map(|entry| {
            let (k, v) = entry.map_err(unavailable)?;
            Ok((k.value().to_owned(), decode(k.value(), v.value())?))
        })
        .collect()
}

fn save<T: Serialize>(table: &mut Table<'_, Strs, Strs>, key: &str, value: &T) -> Result<(), StoreError> {
    let json = serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode the value for {key:?}: {e}")))?;
    table.insert(key, json.as_str()).map_err(unavailable)?;
    Ok(())
}

fn decode<T: DeserializeOwned>(key: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("value under {key:?}: {e}")))
}

fn parse_workspace(id: &str) -> Result<WorkspaceId, StoreError> {
    WorkspaceId::parse(id).map_err(|e| StoreError::Corrupt(format!("stored workspace id: {e}")))
}

fn unavailable(error: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {}", error.into()))
}

/// The local job queue: jobs live in the store until done, so a restart loses none.
#[async_trait]
impl JobQueue for EmbeddedStore {
    async fn enqueue(&self, job: &CopyJob) -> Result<(), StoreError> {
        let queued = QueuedJob {
            job: job.clone(),
            attempts: 0,
            not_before: Timestamp::now(),
        };
        let key = ulid::Ulid::new().to_string();
        self.write(move |txn| save(&mut txn.open_table(JOBS).map_err(unavailable)?, &key, &queued))
            .await?;
        self.jobs_queued.notify_one();
        Ok(())
    }
}

impl EmbeddedStore {
    /// Tells the live feed about a change that is durable now (nobody
    /// listening is fine).
    fn announce(&self, change: Change) {
        let _ = self.changes.send(change);
    }

    /// A page of what changed at or after `query.since`, oldest first, read
    /// through the change index `T::CHANGES` from the objects in `table`.
    async fn changed<T: Versioned>(
        &self,
        table: Def,
        workspace: &WorkspaceId,
        query: &ChangesQuery,
    ) -> Result<Page<T>, StoreError> {
        let ws = workspace.as_str();
        let (_, end) = prefix_range(&[ws]);
        // Past the cursor (exclusive: the position of the last one handed
        // out), or from the moment asked for (inclusive).
        let start = match &query.cursor {
            Some(cursor) => format!("{}{AFTER_SEP}", key(&[ws, &decode_cursor(cursor)?])),
            None => key(&[ws, &sortable_time(&query.since)]),
        };
        let limit = page_size(query.limit);
        self.read(|txn| {
            let index = txn.open_table(T::CHANGES).map_err(unavailable)?;
            let values = txn.open_table(table).map_err(unavailable)?;
            let mut items = Vec::new();
            let mut last_suffix = None;
            for entry in index.range::<&str>(start.as_str()..end.as_str()).map_err(unavailable)? {
                let (k, id) = entry.map_err(unavailable)?;
                if items.len() == limit {
                    return Ok(Page {
                        items,
                        next: last_suffix.as_deref().map(encode_cursor),
                    });
                }
                let value: T = load(&values, &key(&[ws, id.value()]))?
                    .ok_or_else(|| StoreError::Corrupt(format!("change index {:?} points to nothing", k.value())))?;
                last_suffix = Some(k.value()[ws.len() + SEP.len_utf8()..].to_owned());
                items.push(value);
            }
            Ok(Page { items, next: None })
        })
        .await
    }
}

impl ChangeFeed for EmbeddedStore {
    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}

impl EmbeddedStore {
    /// Every job in the local queue, due or not, oldest first: what an
    /// operator (or the fault campaign) looks at to see what is waiting.
    pub async fn queued_jobs(&self) -> Result<Vec<(String, QueuedJob)>, StoreError> {
        self.read(|txn| {
            let jobs = txn.open_table(JOBS).map_err(unavailable)?;
            jobs.iter()
                .map_err(unavailable)?
                .map(|entry| {
                    let (key, value) = entry.map_err(unavailable)?;
                    Ok((key.value().to_owned(), decode(key.value(), value.value())?))
                })
                .collect()
        })
        .await
    }
}

#[async_trait]
impl DurableQueue for EmbeddedStore {
    fn job_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.jobs_queued)
    }

    async fn due_job(&self, now: Timestamp) -> Result<Option<(String, QueuedJob)>, StoreError> {
        self.read(move |txn| {
            let jobs = txn.open_table(JOBS).map_err(unavailable)?;
            for entry in jobs.iter().map_err(unavailable)? {
                let (key, value) = entry.map_err(unavailable)?;
                let queued: QueuedJob = decode(key.value(), value.value())?;
                if queued.not_before <= now {
                    return Ok(Some((key.value().to_owned(), queued)));
                }
            }
            Ok(None)
        })
        .await
    }

    async fn finish_job(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write(move |txn| {
            txn.open_table(JOBS)
                .map_err(unavailable)?
                .remove(key.as_str())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn retry_job(&self, key: &str, queued: &QueuedJob) -> Result<(), StoreError> {
        let (key, queued) = (key.to_owned(), queued.clone());
        self.write(move |txn| save(&mut txn.open_table(JOBS).map_err(unavailable)?, &key, &queued))
            .await
    }
}

/// What [`check_store`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCheck {
    /// Entries read, decoded and, for an index, followed to what it names.
    pub entries: u64,
}

/// Checks a store that no process has open (the server stopped): redb's own
/// integrity check (every page's checksum, the allocator's state; a crash
/// is repaired first, back to the last durable commit), then every entry of
/// every table: each value decodes as what its table holds, and each index
/// entry names something that is there. The first problem is the error
/// (`Corrupt`); `Unavailable` if the file cannot be opened.
pub fn check_store(dir: &Path) -> Result<StoreCheck, StoreError> {
    let path = dir.join(FILE_NAME);
    let mut db = redb::Builder::new()
        .set_cache_size(16 * 1024 * 1024)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open the database {}: {e}", path.display())))?;
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) => return Err(StoreError::Corrupt("redb's integrity check failed (repaired)".into())),
        Err(e) => return Err(StoreError::Corrupt(format!("redb's integrity check: {e}"))),
    }
    let txn = db.begin_read().map_err(unavailable)?;
    let mut check = StoreCheck::default();
    let table = |def: Def| txn.open_table(def).map_err(unavailable);
    let mut each = |def: Def, entry: &mut dyn FnMut(&str, &str) -> Result<(), StoreError>| {
        for item in table(def)?.iter().map_err(unavailable)? {
            let (k, v) = item.map_err(unavailable)?;
            entry(k.value(), v.value())?;
            check.entries += 1;
        }
        Ok::<(), StoreError>(())
    };
    fn typed<T: DeserializeOwned>(key: &str, json: &str) -> Result<(), StoreError> {
        decode::<T>(key, json).map(drop)
    }
    let names = |def: Def, what: &'static str| {
        let target = table(def)?;
        Ok::<_, StoreError>(
            move |from: &str, key: &str| match target.get(key).map_err(unavailable)? {
                Some(_) => Ok(()),
                None => Err(StoreError::Corrupt(format!(
                    "{from:?} names {what} {key:?}, which is not there"
                ))),
            },
        )
    };
    let (calls, messages) = (names(CALLS, "call")?, names(MESSAGES, "message")?);
    let (workspaces, records) = (
        names(WORKSPACES, "workspace")?,
        names(IDEMPOTENCY, "idempotency record")?,
    );
    let in_workspace = |key: &str, id: &str| {
        let ws = key.split(SEP).next().unwrap_or_default();
        format!("{ws}{SEP}{id}")
    };
    each(WORKSPACES, &mut |k, v| typed::<Workspace>(k, v))?;
    each(NUMBERS, &mut |k, v| typed::<PhoneNumber>(k, v))?;
    each(CALLS, &mut |k, v| typed::<CallSession>(k, v))?;
    each(MESSAGES, &mut |k, v| typed::<Message>(k, v))?;
    each(IDEMPOTENCY, &mut |k, v| typed::<Remembered>(k, v))?;
    each(JOBS, &mut |k, v| typed::<QueuedJob>(k, v))?;
    each(EVENTS, &mut |k, v| {
        typed::<TimelineEvent>(k, v)?;
        let mut parts = k.split(SEP);
        let call = key(&[parts.next().unwrap_or_default(), parts.next().unwrap_or_default()]);
        calls(k, &call)
    })?;
    each(ACCOUNTS, &mut |k, v| workspaces(k, v))?;
    each(NUMBER_OWNERS, &mut |k, v| workspaces(k, v))?;
    each(CALL_SIDS, &mut |k, v| calls(k, &in_workspace(k, v)))?;
    each(CALL_CHANGES, &mut |k, v| calls(k, &in_workspace(k, v)))?;
    each(MESSAGE_CHANGES, &mut |k, v| messages(k, &in_workspace(k, v)))?;
    each(MESSAGE_ORDER, &mut |k, v| messages(k, &in_workspace(k, v)))?;
    each(IDEMPOTENCY_EXPIRY, &mut |k, v| records(k, v))?;
    Ok(check)
}

#[cfg(test)]
impl EmbeddedStore {
    /// The open database, for tests that look beneath the ports.
    fn database(&self) -> Arc<Database> {
        self.db
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .expect("the database is open")
    }
}

#[cfg(test)]
mod tests {
    use redb::ReadableTableMetadata;

    use super::*;
    use switchboard_model::conformance;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_the_storage_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        conformance::run_all(&store).await;
    }

    #[tokio::test]
    async fn the_contract_holds_on_a_current_thread_runtime_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        conformance::claim_step(&store).await;
        conformance::idempotency(&store).await;
        conformance::tenant_isolation(&store).await;
    }

    #[tokio::test]
    async fn data_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested").join("data");
        let ws = WorkspaceId::parse("acme").unwrap();
        let workspace = Workspace::new(ws.clone());
        let session = CallSession::new(
            ws.clone(),
            Direction::Outbound,
            None,
            "+14155550100".into(),
            "+14155550101".into(),
            Timestamp::now(),
        );
        {
            let store = EmbeddedStore::open(&data).unwrap();
            assert_eq!(store.path(), data.join(FILE_NAME));
            store.put_workspace(&workspace).await.unwrap();
            store.create_call(&session).await.unwrap();
            let claimed = store
                .claim_step(&ws, &session.id, "dial-customer", Timestamp::now())
                .await;
            assert!(claimed.unwrap());
            let value = store.remember(&ws, "k", "v", Duration::from_secs(60)).await;
            assert_eq!(value.unwrap(), "v");
        }
        let store = EmbeddedStore::open(&data).unwrap();
        assert_eq!(store.get_workspace(&ws).await.unwrap(), Some(workspace));
        let stored = store.get_call(&ws, &session.id).await.unwrap().unwrap();
        assert!(stored.steps.contains_key("dial-customer"));
        let again = store
            .claim_step(&ws, &session.id, "dial-customer", Timestamp::now())
            .await;
        assert!(!again.unwrap(), "a claim survives the restart");
        let value = store.remember(&ws, "k", "other", Duration::from_secs(60)).await;
        assert_eq!(value.unwrap(), "v");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_panicking_write_leaves_its_batch_whole() {
        use std::pin::Pin;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::task::Poll;
        type Write<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let put = |txn: &WriteTransaction, key: &str| {
            txn.open_table(JOBS)
                .map_err(unavailable)?
                .insert(key, "x")
                .map(drop)
                .map_err(unavailable)
        };
        // The first write holds the writer until every other one is queued,
        // so they all join its batch.
        let open = Arc::new(AtomicBool::new(false));
        let blocker_runs = Arc::new(AtomicUsize::new(0));
        let (runs, gate) = (Arc::clone(&blocker_runs), Arc::clone(&open));
        let mut writes: Vec<Write<'_>> = vec![Box::pin(store.write(move |txn| {
            runs.fetch_add(1, Ordering::SeqCst);
            while !gate.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            put(txn, "blocker")
        }))];
        for i in 0..12 {
            let write: Write<'_> = match i {
                4 => Box::pin(store.write(move |txn| {
                    put(txn, "failed")?;
                    Err(StoreError::Conflict("refused half way".into()))
                })),
                8 => Box::pin(store.write(move |txn| {
                    put(txn, "panicked")?;
                    panic!("a bug half way through a write")
                })),
                _ => Box::pin(store.write(move |txn| put(txn, &format!("good-{i}")))),
            };
            writes.push(write);
        }
        // One poll each submits them, in order.
        std::future::poll_fn(|cx| {
            for write in &mut writes {
                assert!(write.as_mut().poll(cx).is_pending());
            }
            Poll::Ready(())
        })
        .await;
        open.store(true, Ordering::SeqCst);
        let mut results = Vec::new();
        for write in writes {
            results.push(write.await);
        }

        assert_eq!(
            blocker_runs.load(Ordering::SeqCst),
            2,
            "in the failing write's batch: run again once, and committed"
        );
        assert!(matches!(results[5], Err(StoreError::Conflict(_))), "{:?}", results[5]);
        assert!(
            matches!(results[9], Err(StoreError::Unavailable(_))),
            "{:?}",
            results[9]
        );
        let read = store.database().begin_read().unwrap();
        let jobs = read.open_table(JOBS).unwrap();
        for (i, result) in results.iter().enumerate().filter(|(i, _)| ![5, 9].contains(i)) {
            assert!(result.is_ok(), "write {i}: {result:?}");
        }
        let mut kept: Vec<String> = jobs
            .iter()
            .unwrap()
            .map(|entry| entry.unwrap().0.value().to_owned())
            .collect();
        kept.sort();
        let mut expected: Vec<String> = (0..12)
            .filter(|i| ![4, 8].contains(i))
            .map(|i| format!("good-{i}"))
            .chain(["blocker".to_owned()])
            .collect();
        expected.sort();
        assert_eq!(kept, expected, "every good write, nothing of the bad ones");
        store.write(move |txn| put(txn, "after")).await.unwrap();
    }

    /// A file whose writes fail while `failing` is set, as a full disk
    /// fails them (ENOSPC).
    #[derive(Debug)]
    struct FlakyDisk {
        file: redb::backends::FileBackend,
        failing: Arc<AtomicBool>,
    }

    impl FlakyDisk {
        fn check(&self) -> std::io::Result<()> {
            match self.failing.load(Ordering::SeqCst) {
                true => Err(std::io::Error::from(std::io::ErrorKind::StorageFull)),
                false => Ok(()),
            }
        }
    }

    impl redb::StorageBackend for FlakyDisk {
        fn len(&self) -> std::io::Result<u64> {
            self.file.len()
        }

        fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
            self.file.read(offset, out)
        }

        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.check()?;
            self.file.set_len(len)
        }

        fn sync_data(&self) -> std::io::Result<()> {
            self.check()?;
            self.file.sync_data()
        }

        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.check()?;
            self.file.write(offset, data)
        }

        fn close(&self) -> std::io::Result<()> {
            self.file.close()
        }
    }

    /// A store in `dir` on a [`FlakyDisk`] that fails while `failing` is
    /// set, with a page cache of `cache_bytes`; it reopens the same way.
    fn on_flaky_disk(dir: &Path, cache_bytes: usize, failing: &Arc<AtomicBool>) -> EmbeddedStore {
        let path = dir.join(FILE_NAME);
        let (file, disk) = (path.clone(), Arc::clone(failing));
        let opener: Opener = Box::new(move || {
            let handle = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&file)?;
            let file = redb::backends::FileBackend::new(handle)?;
            redb::Builder::new()
                .set_cache_size(cache_bytes)
                .create_with_backend(FlakyDisk {
                    file,
                    failing: Arc::clone(&disk),
                })
        });
        EmbeddedStore::open_on(path, opener).unwrap()
    }

    fn outbound_call(ws: &WorkspaceId) -> CallSession {
        CallSession::new(
            ws.clone(),
            Direction::Outbound,
            None,
            "+14155550100".into(),
            "+14155550101".into(),
            Timestamp::now(),
        )
    }

    /// redb refuses everything after an I/O error until the database is
    /// opened again: the store does that itself, in place, once the disk
    /// works again, keeping every write it acknowledged and none it refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_disk_is_survived_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let failing = Arc::new(AtomicBool::new(false));
        let store = on_flaky_disk(dir.path(), 1024 * 1024, &failing);
        let ws = WorkspaceId::parse("acme").unwrap();
        let kept = outbound_call(&ws);
        store.create_call(&kept).await.unwrap();

        failing.store(true, Ordering::SeqCst);
        let refused = outbound_call(&ws);
        let result = store.create_call(&refused).await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
        // Still failing: refused again, quickly, and never a panic.
        for _ in 0..3 {
            let result = store.create_call(&outbound_call(&ws)).await;
            assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
        }

        failing.store(false, Ordering::SeqCst);
        let after = outbound_call(&ws);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match store.create_call(&after).await {
                Ok(()) => break,
                Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("the store did not recover: {error:?}"),
            }
        }
        assert!(store.reopens() >= 1, "the database was opened again in place");
        assert!(
            store.get_call(&ws, &kept.id).await.unwrap().is_some(),
            "acknowledged before"
        );
        assert!(
            store.get_call(&ws, &after.id).await.unwrap().is_some(),
            "acknowledged after"
        );
        assert!(
            store.get_call(&ws, &refused.id).await.unwrap().is_none(),
            "a refused write left nothing behind"
        );
        let listed = store.list_calls(&ws, &CallQuery::default()).await.unwrap();
        assert_eq!(listed.items.len(), 2, "{:?}", listed.items);
    }

    /// Reads alone (no write coming) also bring a failed database back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_alone_bring_a_failed_database_back() {
        let dir = tempfile::tempdir().unwrap();
        let failing = Arc::new(AtomicBool::new(false));
        let store = on_flaky_disk(dir.path(), 0, &failing);
        let ws = WorkspaceId::parse("acme").unwrap();
        let kept = outbound_call(&ws);
        store.create_call(&kept).await.unwrap();
        failing.store(true, Ordering::SeqCst);
        assert!(store.create_call(&outbound_call(&ws)).await.is_err());
        failing.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match store.get_call(&ws, &kept.id).await {
                Ok(found) => {
                    assert!(found.is_some());
                    assert!(store.reopens() >= 1, "the database was opened again in place");
                    break;
                }
                Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("reads did not recover: {error:?}"),
            }
        }
    }

    #[tokio::test]
    async fn the_cache_size_is_the_one_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), StoreOptions::with_cache_mb(2)).unwrap();
        let ws = WorkspaceId::parse("acme").unwrap();
        store.create_call(&outbound_call(&ws)).await.unwrap();
        assert_eq!(StoreOptions::with_cache_mb(2).cache_bytes, 2 * 1024 * 1024);
        assert_eq!(StoreOptions::default(), StoreOptions::with_cache_mb(DEFAULT_CACHE_MB));
    }

    #[tokio::test]
    async fn a_closed_store_is_checked_entry_by_entry() {
        let dir = tempfile::tempdir().unwrap();
        let ws = WorkspaceId::parse("acme").unwrap();
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            store.put_workspace(&Workspace::new(ws.clone())).await.unwrap();
            let session = outbound_call(&ws);
            store.create_call(&session).await.unwrap();
            let event = TimelineEvent {
                key: "call:CA1:ringing:1".into(),
                at: Timestamp::now(),
                kind: "customer-ringing".into(),
                detail: BTreeMap::new(),
            };
            assert!(store.append_event(&ws, &session.id, &event).await.unwrap());
            store.remember(&ws, "k", "v", Duration::from_secs(60)).await.unwrap();
        }
        let checked = check_store(dir.path()).unwrap();
        // workspace, call, its change index entry, event, record and its expiry.
        assert_eq!(checked.entries, 6, "{checked:?}");

        // An index entry naming nothing, as a torn write would leave it.
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let txn = store.database().begin_write().unwrap();
            txn.open_table(CALL_SIDS)
                .unwrap()
                .insert(key(&["acme", "CA2"]).as_str(), "01JDQ4ZK8M3V6X2T9B7C5N1P0R")
                .unwrap();
            txn.commit().unwrap();
        }
        let result = check_store(dir.path());
        assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_directory_is_refused_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let _store = EmbeddedStore::open(dir.path()).unwrap();
        let second = EmbeddedStore::open(dir.path());
        assert!(matches!(second, Err(StoreError::Unavailable(_))), "{second:?}");
    }

    #[tokio::test]
    async fn garbage_cursors_are_an_error_not_a_panic_or_a_leak() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let ws = WorkspaceId::parse("acme").unwrap();
        for cursor in ["zz", "00", &hex::encode("not-a-ulid"), &hex::encode([0xff, 0xfe])] {
            let query = CallQuery {
                cursor: Some(cursor.to_owned()),
                limit: 10,
                ..CallQuery::default()
            };
            let result = store.list_calls(&ws, &query).await;
            assert!(
                matches!(result, Err(StoreError::InvalidCursor(_))),
                "{cursor}: {result:?}"
            );
        }
        let query = MessageQuery {
            cursor: Some("xyz".into()),
            limit: 10,
            ..MessageQuery::default()
        };
        let result = store.list_messages(&ws, &query).await;
        assert!(matches!(result, Err(StoreError::InvalidCursor(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_damaged_value_reads_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let ws = WorkspaceId::parse("acme").unwrap();
        let txn = store.database().begin_write().unwrap();
        txn.open_table(WORKSPACES).unwrap().insert("acme", "{not json").unwrap();
        txn.commit().unwrap();
        let result = store.get_workspace(&ws).await;
        assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    }

    #[tokio::test]
    async fn expired_idempotency_records_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let ws = WorkspaceId::parse("acme").unwrap();
        for i in 0..10 {
            store
                .remember(&ws, &format!("old-{i}"), "v", Duration::ZERO)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        store
            .remember(&ws, "fresh", "v", Duration::from_secs(60))
            .await
            .unwrap();
        let txn = store.database().begin_read().unwrap();
        let records = txn.open_table(IDEMPOTENCY).unwrap();
        let expiry = txn.open_table(IDEMPOTENCY_EXPIRY).unwrap();
        assert_eq!(records.len().unwrap(), 1, "only the live record is left");
        assert_eq!(expiry.len().unwrap(), 1);
    }

    #[test]
    fn workspace_keys_are_whole_segments() {
        let (start, end) = prefix_range(&["acme"]);
        let corp = key(&["acme-corp", "01J"]);
        let own = key(&["acme", "01J"]);
        assert!(!(start.as_str()..end.as_str()).contains(&corp.as_str()));
        assert!((start.as_str()..end.as_str()).contains(&own.as_str()));
    }

    #[test]
    fn sortable_times_sort_like_times() {
        // Whole milliseconds: a `Timestamp` holds no finer time.
        let at = |nanos: i128| Timestamp::from_unix_millis((nanos / 1_000_000) as i64).unwrap();
        let times = [
            -2_000_000_000_000_000_000,
            -1_000_000,
            0,
            1_000_000,
            999_000_000,
            1_700_000_000_000_000_000,
            1_700_000_000_001_000_000,
        ];
        for pair in times.windows(2) {
            assert!(sortable_time(&at(pair[0])) < sortable_time(&at(pair[1])), "{pair:?}");
        }
        for nanos in times {
            assert_eq!(unix_nanos(&at(nanos)), nanos, "the sub-second part survives");
        }
    }
}
