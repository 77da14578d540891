//! `--state FILE`: every API's records in one append-only log, written before a request that
//! changed them is answered, so what a client saw acknowledged survives `kill -9`.
//!
//! - **Format.** Frames of `[length: u32][crc32: u32][payload]` (little-endian), the
//!   payload a JSON object. The first frame names the format and its version; the rest are
//!   changes: a record stored (`put`, its body following the change's object as it is
//!   stored), removed (`del`), a singleton sub-document written, a tenant dropped, an API
//!   reset.
//! - **Group commit.** Requests append their frames to a buffer while they hold the store's
//!   write lock; one writer thread writes and `fdatasync`s whatever has accumulated and then
//!   releases every request whose frames it covered, so many requests share one sync. When
//!   the last sync covered several appends (concurrent writers), the next waits up to a
//!   millisecond for as many to join it; a lone writer is synced at once.
//! - **Recovery.** At start the log is replayed: the frames are cut into batches by their
//!   lengths, threads check and decode the batches in turn, and one thread files the records
//!   in file order; their bodies stay the bytes the log holds. A torn or
//!   corrupt tail (a crash in the middle of a write) is detected by length and checksum,
//!   logged, and cut off; everything before it is loaded. A file that is not a state log is
//!   refused, never overwritten.
//! - **Compaction.** When the log has grown well past the live state, it is rewritten as one
//!   `put` per live record (to a temporary file, then renamed), in the writer thread, while
//!   requests go on appending.
//! - **Older files.** A log of version 2 (bodies inside their changes) and the single JSON
//!   document of format 1 are read and rewritten in this version at start; the old file is
//!   kept beside it as `FILE.v2` or `FILE.v1`. Frames of APIs not being served are carried
//!   over as they are: a frame of either log version reads in any log.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use bytes::Bytes;

use super::store::{
    Body, Dirty, FORMAT_VERSION, Filing, IndexEntries, IndexEntry, IndexMembers, IndexPlan, Meta,
    ParentRef, Shape, Store,
};

/// The log's format version (format 1 was one JSON document).
pub const LOG_VERSION: u32 = 3;

/// The oldest log version this sandbox reads (and rewrites in the current one).
const OLDEST_LOG_VERSION: u32 = 2;
/// What the first frame says the file is.
const FORMAT_NAME: &str = "api-sandbox state log";
/// Frames larger than this are corrupt (a record body is at most the request body limit).
const MAX_FRAME: u32 = 64 * 1024 * 1024;
/// The log is compacted when it is this many times the live state (and at least this big).
const COMPACT_RATIO: u64 = 3;
const COMPACT_MIN_BYTES: u64 = 8 * 1024 * 1024;

/// The longest a sync waits for concurrent writers' appends to join it (see `write_loop`).
const GROUP_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{}: cannot read the state file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a sandbox state file ({reason}); move it away or pass another --state path", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: cannot write the state file: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Data kept outside the store's records (a behaviour's: time-series points, say), written
/// to the state log with the records: each change as it happens (drained after every write,
/// as the store's are) and the whole data when the log is compacted. Defaults: no data.
pub trait OwnData: Send + Sync {
    /// Changes since the last call, in order.
    fn take_changes(&self) -> Vec<Value> {
        Vec::new()
    }

    /// Applies one change read back from the log.
    fn apply(&self, change: &Value) {
        let _ = change;
    }

    /// All of the data (`Value::Null` for none).
    fn export(&self) -> Value {
        Value::Null
    }

    /// Replaces all of the data with an export.
    fn restore(&self, saved: &Value) {
        let _ = saved;
    }
}

/// One change, as a frame's payload: `{"put": {...}}`, `{"del": {...}}`... (the record's
/// body is kept as the stored text, not parsed and written again; names are borrowed from
/// the frame, or from the store when writing, rather than copied).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Change<'a> {
    Header {
        format: String,
        version: u32,
    },
    Put {
        #[serde(borrow)]
        api: Cow<'a, str>,
        #[serde(borrow)]
        tenant: Cow<'a, str>,
        #[serde(borrow)]
        resource: Cow<'a, str>,
        #[serde(borrow)]
        id: Cow<'a, str>,
        seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ParentRef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        meta: Option<Meta>,
        /// The body inside the change (version 2); from version 3 it follows the change's
        /// object in the frame, so reading a frame scans the body once, not twice.
        #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
        body: Option<&'a RawValue>,
    },
    Del {
        #[serde(borrow)]
        api: Cow<'a, str>,
        #[serde(borrow)]
        tenant: Cow<'a, str>,
        #[serde(borrow)]
        resource: Cow<'a, str>,
        #[serde(borrow)]
        id: Cow<'a, str>,
    },
    Singleton {
        #[serde(borrow)]
        api: Cow<'a, str>,
        #[serde(borrow)]
        tenant: Cow<'a, str>,
        #[serde(borrow)]
        slot: Cow<'a, str>,
        #[serde(borrow)]
        owner: Cow<'a, str>,
        value: Option<Value>,
    },
    DropTenant {
        #[serde(borrow)]
        api: Cow<'a, str>,
        #[serde(borrow)]
        tenant: Cow<'a, str>,
    },
    Reset {
        #[serde(borrow)]
        api: Cow<'a, str>,
    },
    /// A change to data a behaviour keeps.
    Own {
        #[serde(borrow)]
        api: Cow<'a, str>,
        #[serde(borrow)]
        name: Cow<'a, str>,
        change: Value,
    },
    /// All of the data a behaviour keeps.
    OwnState {
        #[serde(borrow)]
        api: Cow<'a, str>,
        #[serde(borrow)]
        name: Cow<'a, str>,
        data: Value,
    },
}

impl Change<'_> {
    fn api(&self) -> Option<&str> {
        match self {
            Change::Header { .. } => None,
            Change::Put { api, .. }
            | Change::Del { api, .. }
            | Change::Singleton { api, .. }
            | Change::DropTenant { api, .. }
            | Change::Reset { api }
            | Change::Own { api, .. }
            | Change::OwnState { api, .. } => Some(api),
        }
    }
}

/// One API's share of the state file: its store, and the data its behaviours keep.
pub struct Part<'a> {
    pub api: &'a str,
    pub store: &'a RwLock<Store>,
    pub own: Vec<(&'a str, &'a dyn OwnData)>,
}

/// A frame around `payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    framed(|out| out.extend_from_slice(payload))
}

/// A frame around what `write` puts in it, written in place (no copy of the payload).
fn framed(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = vec![0; 8];
    write(&mut out);
    let payload = &out[8..];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

fn encode(change: &Change<'_>) -> Vec<u8> {
    frame(&serde_json::to_vec(change).unwrap_or_default())
}

fn header() -> Vec<u8> {
    encode(&Change::Header {
        format: FORMAT_NAME.to_owned(),
        version: LOG_VERSION,
    })
}

/// The frame storing record `id` as it is now (or removing it, when it is gone).
fn record_frame(api: &str, store: &Store, tenant: &str, resource: &str, id: &str) -> Vec<u8> {
    let Some(rec) = store.get(tenant, resource, id) else {
        return encode(&Change::Del {
            api: api.into(),
            tenant: tenant.into(),
            resource: resource.into(),
            id: id.into(),
        });
    };
    let meta = rec.meta();
    let head = PutHead {
        api,
        tenant,
        resource,
        id,
        seq: rec.seq,
        parent: rec.parent(),
        meta: (*meta != Meta::default()).then_some(meta),
    };
    // `{"put": {...head}}` then the stored text: the body is the store's own output, so it
    // is copied in as it is, not parsed again to be checked.
    framed(|out| {
        out.extend_from_slice(b"{\"put\":");
        let _ = serde_json::to_writer(&mut *out, &head);
        out.push(b'}');
        rec.body.write_to(out);
    })
}

/// The members of a `put` frame besides the body, as [`Change::Put`] reads them.
#[derive(Serialize)]
struct PutHead<'a> {
    api: &'a str,
    tenant: &'a str,
    resource: &'a str,
    id: &'a str,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<&'a ParentRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<&'a Meta>,
}

/// All the data `own` keeps, as frames.
fn own_snapshot(api: &str, own: &[(&str, &dyn OwnData)], out: &mut Vec<u8>) {
    for (name, data) in own {
        let data = data.export();
        if !data.is_null() {
            out.extend(encode(&Change::OwnState {
                api: api.into(),
                name: (*name).into(),
                data,
            }));
        }
    }
}

/// Every record and singleton of `store`, as frames.
fn snapshot(api: &str, store: &Store, out: &mut Vec<u8>) {
    for (tenant, t) in &store.tenants {
        for (resource, coll) in &t.resources {
            for (id, _) in coll.iter() {
                out.extend(record_frame(api, store, tenant, resource, id));
            }
        }
        for (slot, owners) in &t.singletons {
            for (owner, value) in owners {
                out.extend(encode(&Change::Singleton {
                    api: api.into(),
                    tenant: tenant.as_str().into(),
                    slot: slot.as_str().into(),
                    owner: owner.as_str().into(),
                    value: Some(value.clone()),
                }));
            }
        }
    }
}

/// The frames for what changed in `store`, and in the data `own` keeps, since the last call.
pub(super) fn changes(api: &str, store: &mut Store, own: &[(&str, &dyn OwnData)]) -> Vec<u8> {
    let dirty = store.take_dirty();
    let mut out = Vec::new();
    for (name, data) in own {
        for change in data.take_changes() {
            out.extend(encode(&Change::Own {
                api: api.into(),
                name: (*name).into(),
                change,
            }));
        }
    }
    for d in dirty {
        match d {
            Dirty::Record {
                tenant,
                resource,
                id,
            } => out.extend(record_frame(api, store, &tenant, &resource, &id)),
            Dirty::Singleton {
                tenant,
                slot,
                owner,
            } => {
                let value = store
                    .tenants
                    .get(&tenant)
                    .and_then(|t| t.singletons.get(&slot))
                    .and_then(|o| o.get(&owner))
                    .cloned();
                out.extend(encode(&Change::Singleton {
                    api: api.into(),
                    tenant: tenant.into(),
                    slot: slot.into(),
                    owner: owner.into(),
                    value,
                }));
            }
            Dirty::Tenant(tenant) => out.extend(encode(&Change::DropTenant {
                api: api.into(),
                tenant: tenant.into(),
            })),
            Dirty::All => {
                // A reset or an import: what is there now is all there is.
                out.extend(encode(&Change::Reset { api: api.into() }));
                snapshot(api, store, &mut out);
            }
        }
    }
    out
}

/// Frames written so far, and whether a rewrite is asked for.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// Sequence number of the last append.
    appended: u64,
    /// A full new file to write instead of appending (compaction).
    rewrite: Option<Vec<u8>>,
    stop: bool,
    /// The append that wakes the writer: the next one when it is idle, the one that
    /// completes its group while it gathers one, none while it writes (it looks again
    /// before it waits). Appends that wake nobody cost no system call.
    wake_at: u64,
}

/// The open state log: appends, group commits and compaction.
pub struct StateLog {
    path: PathBuf,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// The last append that is on disk.
    synced: tokio::sync::watch::Sender<u64>,
    /// Bytes in the file now, and frames of APIs not served this time (kept on rewrites).
    size: Mutex<u64>,
    foreign: Vec<u8>,
}

impl std::fmt::Debug for StateLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StateLog {
    /// Adds frames; returns the append's sequence number (0 when there was nothing).
    pub fn append(&self, frames: Vec<u8>) -> u64 {
        if frames.is_empty() {
            return 0;
        }
        let mut p = self.pending.lock();
        p.buf.extend(frames);
        p.appended += 1;
        if p.appended >= p.wake_at {
            self.wake.notify_one();
        }
        p.appended
    }

    /// Waits until append `seq` is on disk.
    pub async fn durable(&self, seq: u64) {
        if seq == 0 {
            return;
        }
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s >= seq).await;
    }

    /// Writes pending frames until told to stop. Runs on its own thread.
    fn write_loop(&self, mut file: File) {
        // A slow disk, for the tests that prove answers wait for their writes.
        let delay = std::env::var("SANDBOX_STATE_WRITE_DELAY_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(std::time::Duration::from_millis);
        // Appends the last sync covered, and the last append it covered.
        let (mut last_group, mut upto) = (0, 0);
        loop {
            let (buf, rewrite, stop) = {
                let mut p = self.pending.lock();
                while p.buf.is_empty() && p.rewrite.is_none() && !p.stop {
                    p.wake_at = p.appended + 1;
                    self.wake.wait(&mut p);
                }
                // Writers are concurrent (the last sync covered several): give as many a
                // moment to join this sync, so fewer, larger syncs carry the load. A lone
                // writer's append is synced at once.
                if last_group > 1 {
                    let until = std::time::Instant::now() + GROUP_WAIT;
                    p.wake_at = upto + last_group;
                    while p.appended - upto < last_group && p.rewrite.is_none() && !p.stop {
                        if self.wake.wait_until(&mut p, until).timed_out() {
                            break;
                        }
                    }
                }
                p.wake_at = u64::MAX;
                last_group = p.appended - upto;
                upto = p.appended;
                (std::mem::take(&mut p.buf), p.rewrite.take(), p.stop)
            };
            if let Some(d) = delay {
                std::thread::sleep(d);
            }
            let written = match rewrite {
                Some(mut all) => {
                    all.extend(buf);
                    self.replace_file(&all).map(|f| {
                        file = f;
                        *self.size.lock() = all.len() as u64;
                    })
                }
                None if buf.is_empty() => Ok(()),
                None => file
                    .write_all(&buf)
                    .and_then(|()| file.sync_data())
                    .map(|()| *self.size.lock() += buf.len() as u64),
            };
            if let Err(e) = written {
                // The answer goes out regardless; say loudly that it is not on disk.
                tracing::error!("{}: cannot write the state file: {e}", self.path.display());
            }
            self.synced.send_replace(upto);
            if stop {
                return;
            }
        }
    }

    /// Writes `contents` to a temporary file, syncs it, and renames it over the log.
    fn replace_file(&self, contents: &[u8]) -> std::io::Result<File> {
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(contents)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename itself is durable once the directory is synced.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        OpenOptions::new().append(true).open(&self.path)
    }

    /// Rewrites the log as the live state when it has grown well past it. Takes every
    /// store's read lock first (as writers take the store before the log), so the new file
    /// is exactly the state plus the frames appended after it.
    pub fn compact_if_large(&self, parts: &[Part<'_>], force: bool) {
        let size = *self.size.lock();
        let guards: Vec<_> = parts.iter().map(|p| p.store.read()).collect();
        let mut contents = header();
        for (part, store) in parts.iter().zip(&guards) {
            snapshot(part.api, store, &mut contents);
            own_snapshot(part.api, &part.own, &mut contents);
        }
        contents.extend_from_slice(&self.foreign);
        let live = contents.len() as u64;
        if !force && (size < COMPACT_MIN_BYTES || size < live * COMPACT_RATIO) {
            return;
        }
        let mut p = self.pending.lock();
        // The frames not yet written describe changes the snapshot already holds.
        p.buf.clear();
        p.rewrite = Some(contents);
        p.appended += 1;
        self.wake.notify_one();
    }

    /// Writes what is pending and stops the writer; returns the append to wait for.
    pub fn close(&self) -> u64 {
        let mut p = self.pending.lock();
        p.stop = true;
        p.appended += 1;
        self.wake.notify_one();
        p.appended
    }
}

/// Opens (or creates) the state log at `path`, loads it into the engines (by API name),
/// and starts its writer thread. Changes the engines make from now on are logged.
/// The state file's bytes, read on a thread of their own (started before the specs load,
/// which takes about as long as reading a large file), so a restart does both at once.
pub struct Prefetch {
    path: PathBuf,
    started: std::time::Instant,
    reading: Option<std::thread::JoinHandle<std::io::Result<Option<Bytes>>>>,
}

/// Starts reading the state file at `path`.
pub fn prefetch(path: &Path) -> Prefetch {
    let owned = path.to_path_buf();
    let reading = std::thread::Builder::new()
        .name("state-read".into())
        .spawn(move || read_if_there(&owned))
        .ok();
    Prefetch {
        path: path.to_path_buf(),
        started: std::time::Instant::now(),
        reading,
    }
}

impl Prefetch {
    /// The file's bytes (`None` when there is no file yet), read here if the thread could
    /// not be started.
    fn bytes(self) -> std::io::Result<Option<Bytes>> {
        match self.reading.map(std::thread::JoinHandle::join) {
            Some(Ok(read)) => read,
            _ => read_if_there(&self.path),
        }
    }
}

/// Keeps the state file at `path`, about to be rewritten in this version, beside it as
/// `FILE.{ext}`: a second name for it where the file system allows (no copy of a large
/// file), else a copy. `what` names its format in the log line.
fn keep_old_file(path: &Path, what: &str, ext: &str) -> Result<(), PersistError> {
    let backup = path.with_extension(ext);
    let kept = match std::fs::remove_file(&backup) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => {
            std::fs::hard_link(path, &backup).or_else(|_| std::fs::copy(path, &backup).map(|_| ()))
        }
    };
    kept.map_err(|source| PersistError::Write {
        path: backup.clone(),
        source,
    })?;
    tracing::info!(
        "{}: state file of {what} rewritten as a log of version {LOG_VERSION}; the old file \
         is kept as {}",
        path.display(),
        backup.display()
    );
    Ok(())
}

/// The state file's bytes, mapped rather than read where the platform allows: a copy of a
/// file of hundreds of megabytes into fresh memory costs more than the rest of a restart
/// (the kernel zeroes every page before copying into it), and the records loaded keep
/// pointing into these bytes.
fn read_if_there(path: &Path) -> std::io::Result<Option<Bytes>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() == 0 {
        return Ok(Some(Bytes::new()));
    }
    map_file(&file).map(Some)
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<Bytes> {
    // SAFETY: the mapping is read-only and private to this process, and the file is this
    // sandbox's own state log: only appended to (past the mapped length), cut at a torn
    // tail (past every byte a record points to), or replaced by a rename (the mapped inode
    // lives on). Truncating the file by hand while the sandbox runs would fault, as it
    // would under any database; the README says to leave it alone.
    match unsafe {
        memmap2::MmapOptions::new()
            .populate()
            .map_copy_read_only(file)
    } {
        Ok(map) => Ok(Bytes::from_owner(map)),
        // A file system that cannot map files (some network and FUSE mounts) is read.
        Err(_) => read_whole(file),
    }
}

fn read_whole(mut file: &File) -> std::io::Result<Bytes> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Bytes::from(bytes))
}

#[cfg(not(unix))]
fn map_file(file: &File) -> std::io::Result<Bytes> {
    read_whole(file)
}

/// Opens the state log whose bytes `read` holds (see [`prefetch`]), loading what it holds
/// into the parts' stores, and starts its writer thread.
pub fn open(read: Prefetch, parts: &[Part<'_>]) -> Result<Arc<StateLog>, PersistError> {
    let path = &read.path.clone();
    let read_err = |source| PersistError::Read {
        path: path.to_path_buf(),
        source,
    };
    let write_err = |source| PersistError::Write {
        path: path.to_path_buf(),
        source,
    };
    let started = read.started;
    let bytes = read.bytes().map_err(read_err)?;
    let (foreign, rewrite) = match bytes {
        None => (Vec::new(), true),
        Some(b) if b.first() == Some(&b'{') => {
            let foreign = migrate(path, &b, parts)?;
            (foreign, true)
        }
        Some(b) => {
            let size = b.len();
            let loaded = replay(path, &b, parts)?;
            tracing::info!(
                "{}: {} changes ({} MB) loaded in {} ms",
                path.display(),
                loaded.frames,
                size / 1_000_000,
                started.elapsed().as_millis()
            );
            if loaded.version < LOG_VERSION {
                // Rewritten in this version below.
                let v = loaded.version;
                keep_old_file(path, &format!("log version {v}"), &format!("v{v}"))?;
                (loaded.foreign, true)
            } else if let Some(at) = loaded.torn_at {
                // Cut the tear off, so new frames follow the last good one.
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(write_err)?;
                f.set_len(at as u64).map_err(write_err)?;
                f.sync_all().map_err(write_err)?;
                (loaded.foreign, false)
            } else {
                (loaded.foreign, false)
            }
        }
    };
    for part in parts {
        part.store.write().tracking = true;
    }
    let (synced, _) = tokio::sync::watch::channel(0);
    let log = Arc::new(StateLog {
        path: path.to_path_buf(),
        pending: Mutex::new(Pending::default()),
        wake: Condvar::new(),
        synced,
        size: Mutex::new(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)),
        foreign,
    });
    let file = if rewrite {
        let mut contents = header();
        for part in parts {
            snapshot(part.api, &part.store.read(), &mut contents);
            own_snapshot(part.api, &part.own, &mut contents);
        }
        contents.extend_from_slice(&log.foreign);
        let f = log.replace_file(&contents).map_err(write_err)?;
        *log.size.lock() = contents.len() as u64;
        f
    } else {
        OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(write_err)?
    };
    let writer = log.clone();
    std::thread::Builder::new()
        .name("state-log".into())
        .spawn(move || writer.write_loop(file))
        .map_err(write_err)?;
    Ok(log)
}

/// What replaying a log found beyond the records it loaded.
struct Loaded {
    /// Frames of APIs not being served, kept for rewrites.
    foreign: Vec<u8>,
    /// Where a torn or corrupt tail starts.
    torn_at: Option<usize>,
    /// Changes applied.
    frames: usize,
    /// The log's format version.
    version: u32,
}

/// Applies every frame of `bytes` to the engines' stores. Frames are read and parsed on a
/// second thread while this one files them in the stores, so a restart uses both cores.
fn replay(path: &Path, bytes: &Bytes, parts: &[Part<'_>]) -> Result<Loaded, PersistError> {
    let corrupt = |reason: String| PersistError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let mut stores: Vec<_> = parts.iter().map(|p| (p, p.store.write())).collect();
    let plans: Vec<(&str, Arc<IndexPlan>)> =
        stores.iter().map(|(p, s)| (p.api, s.plan())).collect();
    let mut foreign = Vec::new();
    let mut torn_at = None;
    let mut first = true;
    let mut frames = 0;
    let mut version = LOG_VERSION;
    let batches = frame_batches(bytes);
    let decoders = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_DECODERS);
    std::thread::scope(|scope| {
        let plans = &plans;
        // Decoders take batches in turn; this thread files them in file order, taking each
        // from the decoder it fell to. Dropping the receivers on an early return stops the
        // decoders at their next batch.
        let mut decoded = Vec::with_capacity(decoders);
        for first_batch in 0..decoders {
            let (tx, rx) = std::sync::mpsc::sync_channel(DECODE_QUEUE);
            decoded.push(rx);
            let mine: Vec<_> = batches
                .iter()
                .skip(first_batch)
                .step_by(decoders)
                .cloned()
                .collect();
            scope.spawn(move || decode_batches(bytes, &mine, plans, &tx));
        }
        let in_order = (0..batches.len()).map_while(|i| decoded[i % decoders].recv().ok());
        for read in in_order.flatten() {
            let frame = match read {
                Read::Frame(frame) => frame,
                Read::Torn(at) => {
                    torn_at = Some(at);
                    break;
                }
                // A whole frame (its checksum holds) that does not read is not a torn write.
                Read::Bad(at, e) => {
                    return Err(corrupt(format!(
                        "the record at byte {at} does not read: {e}"
                    )));
                }
            };
            if first {
                version = check_header(&frame.change).map_err(&corrupt)?;
                first = false;
                continue;
            }
            frames += 1;
            match stores
                .iter_mut()
                .find(|(p, _)| Some(p.api) == frame.change.api())
            {
                Some((part, store)) => {
                    apply(store, &part.own, frame, bytes);
                }
                None => foreign.extend_from_slice(&bytes[frame.at..frame.next]),
            }
        }
        Ok(())
    })?;
    if first {
        return Err(corrupt("the file is empty or its header is damaged".into()));
    }
    if let Some(t) = torn_at {
        tracing::warn!(
            "{}: torn or corrupt record at byte {t} of {} (the end of a write cut short); \
             loading everything before it and dropping the rest",
            path.display(),
            bytes.len()
        );
    }
    for (_, store) in &mut stores {
        store.take_dirty();
    }
    if !foreign.is_empty() {
        tracing::warn!(
            "{}: the state file holds data of APIs not being served; it will be kept",
            path.display()
        );
    }
    Ok(Loaded {
        foreign,
        torn_at,
        frames,
        version,
    })
}

/// The first frame must name this format, in a version this sandbox reads; the version.
fn check_header(change: &Change<'_>) -> Result<u32, String> {
    match change {
        Change::Header { format, version } if format == FORMAT_NAME => {
            if (OLDEST_LOG_VERSION..=LOG_VERSION).contains(version) {
                Ok(*version)
            } else {
                Err(format!(
                    "state log version {version}; this sandbox reads versions \
                     {OLDEST_LOG_VERSION} to {LOG_VERSION}"
                ))
            }
        }
        _ => Err("it does not start with a state log header".into()),
    }
}

/// Frames decoded per message from a decoding thread, messages each may run ahead by, and
/// the most decoding threads a restart uses.
const DECODE_BATCH: usize = 512;
const DECODE_QUEUE: usize = 8;
const MAX_DECODERS: usize = 4;

/// A frame as the reader thread found it.
// Nearly every read is a frame: boxing it would cost an allocation per frame.
#[allow(clippy::large_enum_variant)]
enum Read<'a> {
    Frame(Decoded<'a>),
    /// The frame at this byte is cut short or fails its checksum: the tail is torn.
    Torn(usize),
    /// The frame at this byte is whole but is not a change.
    Bad(usize, String),
}

/// A whole frame: where it lies, its change, and for a `put` the body's text and, when its
/// API is served, the record's index entries (see [`filed`]).
struct Decoded<'a> {
    at: usize,
    next: usize,
    change: Change<'a>,
    body: Option<&'a str>,
    filed: Option<Filed>,
}

/// The change a frame's payload holds; for a `put`, the body's text (inside the change in
/// version 2, after it from version 3) and, when its API is served, its index entries.
fn decode<'a>(
    payload: &'a [u8],
    plans: &[(&str, Arc<IndexPlan>)],
    shapes: &mut Shapes,
) -> Result<(Change<'a>, Option<&'a str>, Option<Filed>), String> {
    let mut stream = serde_json::Deserializer::from_slice(payload).into_iter::<Change>();
    let change = match stream.next() {
        Some(change) => change.map_err(|e| e.to_string())?,
        None => return Err("the record is empty".into()),
    };
    let rest = &payload[stream.byte_offset()..];
    let body = match &change {
        Change::Put { body: None, .. } => {
            Some(std::str::from_utf8(rest).map_err(|e| format!("the body: {e}"))?)
        }
        _ if !rest.is_empty() => return Err("text follows the change".into()),
        Change::Put {
            body: Some(raw), ..
        } => Some(raw.get()),
        _ => None,
    };
    let filed = match (&change, body) {
        (Change::Put { api, resource, .. }, Some(text)) => {
            match plans.iter().find(|(a, _)| a == api) {
                Some((_, plan)) => Some(filed(plan, resource, text, shapes)?),
                None => None,
            }
        }
        _ => None,
    };
    Ok((change, body, filed))
}

/// A stored record's index entries, and its members where a timed lifecycle reads them.
type Filed = (IndexEntries, Option<Map<String, Value>>);

/// `bytes` cut into runs of [`DECODE_BATCH`] whole frames by their lengths alone (their
/// checksums are the decoders' to check); the last run takes whatever follows, a torn
/// tail included.
fn frame_batches(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut at, mut frames) = (0, 0, 0);
    while let Some(next) = frame_end(bytes, at) {
        at = next;
        frames += 1;
        if frames == DECODE_BATCH {
            batches.push(start..at);
            (start, frames) = (at, 0);
        }
    }
    if start < bytes.len() {
        batches.push(start..bytes.len());
    }
    batches
}

/// Decodes the frames of each of `batches` in turn and sends each batch's, up to and
/// including the first frame that is torn or does not read (where it stops).
fn decode_batches<'a>(
    bytes: &'a [u8],
    batches: &[std::ops::Range<usize>],
    plans: &[(&str, Arc<IndexPlan>)],
    tx: &std::sync::mpsc::SyncSender<Vec<Read<'a>>>,
) {
    let mut shapes = Shapes::default();
    for range in batches {
        let mut batch = Vec::with_capacity(DECODE_BATCH);
        let mut at = range.start;
        let mut whole = true;
        while at < range.end {
            let read = match next_frame(bytes, at) {
                None => Read::Torn(at),
                Some((payload, next)) => match decode(payload, plans, &mut shapes) {
                    Err(e) => Read::Bad(at, e),
                    Ok((change, body, filed)) => {
                        let start = at;
                        at = next;
                        Read::Frame(Decoded {
                            at: start,
                            next,
                            change,
                            body,
                            filed,
                        })
                    }
                },
            };
            whole = matches!(read, Read::Frame(_));
            batch.push(read);
            if !whole {
                break;
            }
        }
        if tx.send(batch).is_err() || !whole {
            return;
        }
    }
}

/// A stored body's entries in the store's indexes, worked out here so the thread filing
/// records only inserts them. Of the body only the members an index reads are parsed;
/// other values (an event's whole object) are skipped over, not built. A resource with
/// timed transitions is parsed whole, for its lifecycle. An error when the body is not a
/// JSON object.
fn filed(
    plan: &IndexPlan,
    resource: &str,
    body: &str,
    shapes: &mut Shapes,
) -> Result<Filed, String> {
    let kinds = plan.members.get(resource);
    let wrong = |e: serde_json::Error| format!("the body: {e}");
    if plan.timed.contains(resource) {
        let members: Map<String, Value> = serde_json::from_str(body).map_err(wrong)?;
        return Ok((IndexEntries::of(kinds, &members), Some(members)));
    }
    let mut de = serde_json::Deserializer::from_str(body);
    let sparse = Sparse {
        kinds,
        last: shapes.0.get(resource),
    };
    let (entries, names) =
        serde::de::DeserializeSeed::deserialize(sparse, &mut de).map_err(wrong)?;
    de.end().map_err(wrong)?;
    let names = shapes.share(resource, kinds, names);
    Ok((IndexEntries::from_parts(entries, names), None))
}

/// The members of the last body read per resource, and how each is indexed: most records
/// of a collection have the same members in the same order, so they share one list of
/// names, and a member found where the last body had it is not looked up in the plan.
#[derive(Default)]
struct Shapes(std::collections::HashMap<String, Shape>);

/// A body's member names: those of the last body read (see [`Shapes`]), or its own.
enum Names<'de> {
    Last,
    New(Vec<Cow<'de, str>>),
}

impl Shapes {
    fn share(
        &mut self,
        resource: &str,
        kinds: Option<&IndexMembers>,
        names: Names<'_>,
    ) -> Arc<[String]> {
        let names = match (names, self.0.get(resource)) {
            (Names::Last, Some(last)) => return last.names.clone(),
            (Names::Last, None) => Vec::new(),
            (Names::New(names), _) => names,
        };
        let names: Arc<[String]> = names.into_iter().map(Cow::into_owned).collect();
        self.0
            .insert(resource.to_owned(), Shape::new(names.clone(), kinds));
        names
    }
}

/// Reads an object's members in one pass: the entries of the members `kinds` indexes
/// (whose values alone are parsed) and every member's name (borrowed from the text where
/// it can be), or that they are those of `last`.
struct Sparse<'p> {
    kinds: Option<&'p IndexMembers>,
    last: Option<&'p Shape>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Sparse<'_> {
    type Value = (Vec<IndexEntry>, Names<'de>);

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Sparse<'_> {
    type Value = (Vec<IndexEntry>, Names<'de>);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        // The names read so far, once they part from the last body's.
        let mut own: Option<Vec<Cow<'de, str>>> = self.last.is_none().then(Vec::new);
        let mut at = 0;
        while let Some(name) = map.next_key_seed(Name)? {
            let kind = match self.last {
                Some(last) if own.is_none() && last.names.get(at).is_some_and(|n| *n == *name) => {
                    last.index[at].as_ref().map(|(m, k)| (m, *k))
                }
                _ => {
                    if own.is_none() {
                        own = Some(self.last_names(at));
                    }
                    self.kinds
                        .and_then(|m| m.get_key_value(&*name))
                        .map(|(m, k)| (m, *k))
                }
            };
            match kind {
                Some((member, kind)) => {
                    let value = map.next_value::<Value>()?;
                    let (texts, key) = super::store::index_entry(kind, &value);
                    entries.push((member.clone(), texts, key));
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            if let Some(own) = &mut own {
                own.push(name);
            }
            at += 1;
        }
        if own.is_none() && self.last.is_some_and(|l| l.names.len() != at) {
            // The last body's first members, but not all of them.
            own = Some(self.last_names(at));
        }
        // In the index plan's order, as entries worked out from parsed members come.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((entries, own.map_or(Names::Last, Names::New)))
    }
}

impl Sparse<'_> {
    /// The last body's first `n` member names.
    fn last_names<'de>(&self, n: usize) -> Vec<Cow<'de, str>> {
        self.last.map_or_else(Vec::new, |l| {
            l.names[..n].iter().map(|s| Cow::Owned(s.clone())).collect()
        })
    }
}

/// A member name, borrowed from the text unless it holds escapes.
struct Name;

impl<'de> serde::de::DeserializeSeed<'de> for Name {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Name {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// The payload of the frame at `at` and where the next one starts; `None` when the frame
/// is cut short or its checksum does not match.
fn next_frame(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let end = frame_end(bytes, at)?;
    let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?);
    let payload = &bytes[at + 8..end];
    (crc32fast::hash(payload) == crc).then_some((payload, end))
}

/// Where the frame at `at` ends by its length alone; `None` when its head is cut short,
/// its length is impossible, or it runs past the end of `bytes`.
fn frame_end(bytes: &[u8], at: usize) -> Option<usize> {
    let head = bytes.get(at..at + 8)?;
    let len = u32::from_le_bytes(head[0..4].try_into().ok()?);
    let end = at + 8 + len as usize;
    (len <= MAX_FRAME && end <= bytes.len()).then_some(end)
}

/// Applies one change; a `put` comes with its body's text and index entries, worked out by
/// the reader.
fn apply(store: &mut Store, own: &[(&str, &dyn OwnData)], frame: Decoded<'_>, file: &Bytes) {
    let Decoded {
        change,
        body: text,
        filed,
        ..
    } = frame;
    let holder = |name: &str| own.iter().find(|(n, _)| *n == name).map(|(_, d)| *d);
    match change {
        Change::Header { .. } => {}
        Change::Own { name, change, .. } => {
            if let Some(d) = holder(&name) {
                d.apply(&change);
            }
        }
        Change::OwnState { name, data, .. } => {
            if let Some(d) = holder(&name) {
                d.restore(&data);
            }
        }
        Change::Put {
            tenant,
            resource,
            id,
            seq,
            parent,
            meta,
            ..
        } => {
            // The reader filed every body of a served API, or refused its frame.
            let (Some(text), Some((entries, due))) = (text, filed) else {
                return;
            };
            // The text stays where it lies in the file read until the store packs it once
            // the server is up (`Store::pack_loaded`).
            let body = Body::in_buffer(file.slice_ref(text.as_bytes()));
            let filing = Filing::Entries(entries, due.as_ref());
            store.tenant(&tenant).put_stored(
                &resource,
                &id,
                (body, filing),
                meta.unwrap_or_default(),
                parent,
                seq,
            );
        }
        Change::Del {
            tenant,
            resource,
            id,
            ..
        } => {
            store.tenant(&tenant).remove_cascade(&resource, &id);
        }
        Change::Singleton {
            tenant,
            slot,
            owner,
            value,
            ..
        } => store.tenant(&tenant).put_singleton(&slot, &owner, value),
        Change::DropTenant { tenant, .. } => store.reset(Some(&tenant)),
        Change::Reset { .. } => store.reset(None),
    }
}

/// The state file of format 1 (one JSON document), as it was written.
#[derive(Debug, Deserialize)]
struct LegacyFile {
    version: u32,
    /// API name -> its store.
    apis: BTreeMap<String, Value>,
}

/// Loads a format-1 file into the engines and keeps a copy beside it (`FILE.v1`); returns
/// the frames of APIs not being served.
fn migrate(path: &Path, bytes: &[u8], parts: &[Part<'_>]) -> Result<Vec<u8>, PersistError> {
    let corrupt = |reason: String| PersistError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let file: LegacyFile = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "format version {} is not one this sandbox reads",
            file.version
        )));
    }
    let mut foreign = Vec::new();
    for (name, value) in file.apis {
        let store: Store =
            serde_json::from_value(value).map_err(|e| corrupt(format!("API '{name}': {e}")))?;
        if store.version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "API '{name}' has format version {}",
                store.version
            )));
        }
        match parts.iter().find(|p| p.api == name) {
            Some(part) => part.store.write().replace(store),
            None => {
                let mut plain = store;
                plain.reindex(Arc::default());
                snapshot(&name, &plain, &mut foreign);
            }
        }
    }
    for part in parts {
        part.store.write().take_dirty();
    }
    keep_old_file(path, "format 1", "v1")?;
    Ok(foreign)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::IndexKind;

    /// The entries the reading thread works out from a body's text are those the store
    /// works out from the parsed body, and bodies of one shape share their name list.
    #[test]
    fn entries_read_from_text_match_entries_from_members() {
        let mut plan = IndexPlan::default();
        let both = IndexKind {
            equal: true,
            sorted: true,
        };
        let sorted = IndexKind {
            equal: false,
            sorted: true,
        };
        plan.members.insert(
            "things".into(),
            [("status".into(), both), ("n".into(), sorted)]
                .into_iter()
                .collect(),
        );
        let mut shapes = Shapes::default();
        // Shapes in turn: a first, the same again, fewer members, members in another
        // order, more members, and the first shape again.
        let texts = [
            r#"{"id":"a","status":"new","n":3,"tags":["x",{"deep":[1,2]}],"we\"ird":null}"#,
            r#"{"id":"b","status":["p","q"],"n":1.5,"tags":[],"we\"ird":1}"#,
            r#"{"id":"c","status":"old"}"#,
            r#"{"n":7,"id":"d","status":"new"}"#,
            r#"{"n":7,"id":"d","status":"new","more":true}"#,
            r#"{"id":"e","status":"x","n":0,"tags":null,"we\"ird":2}"#,
        ];
        let mut reads = Vec::new();
        for text in texts {
            let (read, _) = filed(&plan, "things", text, &mut shapes).expect("an object");
            let members: Map<String, Value> = serde_json::from_str(text).expect("object");
            let parsed = IndexEntries::of(plan.members.get("things"), &members);
            assert_eq!(format!("{read:?}"), format!("{parsed:?}"), "{text}");
            reads.push(read);
        }
        assert!(format!("{:?}", reads[0]).contains("we\\\"ird"));
        assert!(
            Arc::ptr_eq(reads[0].names(), reads[1].names()),
            "one shape, one list of names"
        );
        assert!(!Arc::ptr_eq(reads[1].names(), reads[2].names()));
        for not_an_object in ["[1]", "{\"a\":1}x", "{\"a\":"] {
            assert!(filed(&plan, "things", not_an_object, &mut shapes).is_err());
        }
    }

    /// A `put` frame written by hand (the stored text copied in after the change) reads
    /// back as the change serde would have written: names, sequence, parent and the body's
    /// exact text, packed bodies included.
    #[test]
    fn a_record_frame_reads_back_as_the_record() {
        let mut store = Store::new(Arc::new(IndexPlan::default()));
        let long = "y".repeat(200);
        let record: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"id": "c1", "note": long, "x": 1}))
                .expect("object");
        let parent = ParentRef {
            resource: "groups".into(),
            id: "g\"1".into(),
        };
        let mut t = store.tenant("t");
        t.insert("things", "c1", record.clone(), Some(parent.clone()));
        let event = serde_json::json!({"id": "e1", "data": {"object": record}});
        let text = serde_json::to_vec(&event).expect("JSON");
        let members = event.as_object().expect("object");
        let shared = (Body::from_json(Bytes::from(text)), members);
        store
            .tenant("t")
            .insert_body("events", "e1", shared, Meta::default(), None);
        for (resource, id, want) in [("things", "c1", Some(&parent)), ("events", "e1", None)] {
            let bytes = record_frame("api", &store, "t", resource, id);
            let (payload, next) = next_frame(&bytes, 0).expect("a whole frame");
            assert_eq!(next, bytes.len());
            let Ok((
                Change::Put {
                    api,
                    tenant,
                    resource: r,
                    id: i,
                    seq,
                    parent,
                    meta,
                    body: None,
                },
                Some(body),
                None,
            )) = decode(payload, &[], &mut Shapes::default())
            else {
                panic!("a put frame: {}", String::from_utf8_lossy(payload));
            };
            let rec = store.get("t", resource, id).expect("stored");
            assert_eq!((&*api, &*tenant, &*r, &*i), ("api", "t", resource, id));
            assert_eq!((seq, parent.as_ref(), meta), (rec.seq, want, None));
            assert_eq!(body.as_bytes(), &*rec.body.bytes());
        }
    }

    /// A log of many batches (decoded by several threads) is filed in the order it was
    /// written: a record removed or changed late is gone or changed after the load, and a
    /// torn tail loses only the frame it cuts.
    #[test]
    fn a_log_of_many_batches_loads_in_order() {
        let thing = |i: usize, n: usize| -> Map<String, Value> {
            serde_json::from_value(serde_json::json!({"id": format!("r{i}"), "n": n}))
                .expect("object")
        };
        let mut written = Store::new(Arc::new(IndexPlan::default()));
        let count = DECODE_BATCH * 5 + 7;
        for i in 0..count {
            written
                .tenant("t")
                .insert("things", &format!("r{i}"), thing(i, 0), None);
        }
        let mut bytes = header();
        snapshot("api", &written, &mut bytes);
        // Every record changed twice more, each change batches after the one before.
        for n in 1..=2 {
            for i in 0..count {
                let id = format!("r{i}");
                written.tenant("t").insert("things", &id, thing(i, n), None);
                bytes.extend(record_frame("api", &written, "t", "things", &id));
            }
        }
        written.tenant("t").remove_cascade("things", "r7");
        written
            .tenant("t")
            .insert("things", "r8", thing(8, 3), None);
        for id in ["r7", "r8"] {
            bytes.extend(record_frame("api", &written, "t", "things", id));
        }
        let load = |bytes: &[u8]| {
            let store = RwLock::new(Store::new(Arc::new(IndexPlan::default())));
            let parts = [Part {
                api: "api",
                store: &store,
                own: Vec::new(),
            }];
            let loaded = replay(
                Path::new("test.log"),
                &Bytes::copy_from_slice(bytes),
                &parts,
            )
            .expect("loads");
            (store.into_inner(), loaded.torn_at)
        };
        let (store, torn) = load(&bytes);
        assert_eq!(torn, None);
        let ids = |s: &Store| -> Vec<String> {
            s.tenants["t"].resources["things"]
                .iter()
                .map(|(id, _)| id.to_string())
                .collect()
        };
        assert_eq!(ids(&store), ids(&written));
        assert!(store.get("t", "things", "r7").is_none());
        let n = |s: &Store, id: &str| s.get("t", "things", id).expect(id).body.map()["n"].clone();
        assert_eq!(n(&store, "r8"), 3);
        for i in (0..count).filter(|i| *i != 7 && *i != 8) {
            assert_eq!(n(&store, &format!("r{i}")), 2, "r{i} as last written");
        }

        let (store, torn) = load(&bytes[..bytes.len() - 3]);
        assert!(torn.is_some());
        assert_eq!(n(&store, "r8"), 2, "the torn change is not applied");
        assert!(store.get("t", "things", "r7").is_none());
    }

    /// A frame of version 2 (the body inside the change) reads as one of version 3.
    #[test]
    fn a_version_2_frame_reads_with_its_body() {
        let payload = br#"{"put":{"api":"a","tenant":"t","resource":"r","id":"x","seq":4,"body":{"id":"x","n":[1,"}"]}}}"#;
        let Ok((Change::Put { seq, .. }, Some(body), None)) =
            decode(payload, &[], &mut Shapes::default())
        else {
            panic!("a put");
        };
        assert_eq!((seq, body), (4, r#"{"id":"x","n":[1,"}"]}"#));
        let trailing = br#"{"del":{"api":"a","tenant":"t","resource":"r","id":"x"}}{}"#;
        assert!(decode(trailing, &[], &mut Shapes::default()).is_err());
    }
}
