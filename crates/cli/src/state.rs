//! The state directory (`--state-dir`): what outlives one process for a destination and instance.
//!
//! The manager keeps one writer per channel; within a process the library sees to it, across processes
//! the command does, with two files per (destination id, instance id) in the state directory:
//!
//! - `<destination>+<instance>.lock`, locked exclusively (an advisory lock, released when the file is
//!   closed or the process dies) by every command that may open a channel — `upload`, `poll` and `run` —
//!   for as long as it runs;
//! - `<destination>+<instance>.json`, `{"destinationId", "instanceId", "tables": {"<TABLE>": TableState}}`:
//!   per table, the channel id written last and the token of its opening, so that the next process waits
//!   for those rows to commit before it reopens the channel instead of discarding them. It holds channel
//!   ids and tokens only, never a secret.
//!
//! Both names percent-encode every byte of the ids outside `[A-Za-z0-9._-]`, so any destination id is a
//! safe file name; `+` (which the encoding never leaves) separates them.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs::{self, File},
    io::{self, Write as _},
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use snowpipe_manager::{StateStore, TableState};

/// The folder's name under the cache directory.
const NAME: &str = "snowpipe-streaming";

/// Longest file name stem; a longer one is cut and ends in a hash of the whole (file systems allow 255
/// bytes, and the suffixes and a temporary file's decoration need a few).
const MAX_STEM: usize = 200;

/// The first wait between two tries of a held lock; doubled up to [`LOCK_POLL_MAX`].
const LOCK_POLL_FIRST: Duration = Duration::from_millis(10);
const LOCK_POLL_MAX: Duration = Duration::from_millis(250);

/// The default state directory: `$XDG_CACHE_HOME/snowpipe-streaming`, else `$HOME/.cache/snowpipe-streaming`
/// (`$HOME/Library/Caches/snowpipe-streaming` on macOS), else the system's temporary folder.
pub(crate) fn default_dir() -> PathBuf {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    if let Some(cache) = absolute("XDG_CACHE_HOME") {
        return cache.join(NAME);
    }
    if let Some(home) = absolute("HOME") {
        let cache = if cfg!(target_os = "macos") {
            home.join("Library").join("Caches")
        } else {
            home.join(".cache")
        };
        return cache.join(NAME);
    }
    std::env::temp_dir().join(NAME)
}

/// The file name stem of a destination and instance: each percent-encoded, joined by `+`.
fn stem(destination_id: &str, instance_id: &str) -> String {
    let stem = format!("{}+{}", encode(destination_id), encode(instance_id));
    if stem.len() <= MAX_STEM {
        return stem;
    }
    // Cut on a character boundary (the stem is ASCII), and tell long ids apart by a hash of both whole.
    // `~` is outside the encoding's alphabet, so no short stem ends like this.
    let hash = fnv1a(destination_id.as_bytes(), instance_id.as_bytes());
    format!("{}~{hash:016x}", &stem[..MAX_STEM - 17])
}

/// Every byte outside `[A-Za-z0-9._-]` as `%XX`.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// FNV-1a over two strings (with a separator no string holds): stable across builds, unlike std's hasher.
fn fnv1a(first: &[u8], second: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in first.iter().chain(&[0xff]).chain(second) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Why the state directory cannot be used (it cannot be created, is not a folder, or its lock file cannot
/// be opened or locked); the caller names the option.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct StateDirError(String);

/// An existing state directory.
#[derive(Debug, Clone)]
pub(crate) struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// Creates the folder if need be (mode 0700 on Unix, with any missing parents) and checks that it is
    /// one.
    pub(crate) fn open(path: &Path) -> Result<Self, StateDirError> {
        let shown = path.display();
        if path.as_os_str().is_empty() {
            return Err(StateDirError("the path is empty; give a folder".to_owned()));
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        if let Err(e) = builder.create(path) {
            return Err(StateDirError(match fs::metadata(path) {
                Ok(meta) if !meta.is_dir() => format!("{shown} is not a folder"),
                _ => format!("cannot create the state directory {shown}: {e}"),
            }));
        }
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Ok(Self {
                path: path.to_owned(),
            }),
            Ok(_) => Err(StateDirError(format!("{shown} is not a folder"))),
            Err(e) => Err(StateDirError(format!(
                "cannot read the state directory {shown}: {e}"
            ))),
        }
    }

    /// The folder.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file of a destination and instance.
    pub(crate) fn lock_path(&self, destination_id: &str, instance_id: &str) -> PathBuf {
        self.path
            .join(format!("{}.lock", stem(destination_id, instance_id)))
    }

    /// The state file of a destination and instance.
    pub(crate) fn state_path(&self, destination_id: &str, instance_id: &str) -> PathBuf {
        self.path
            .join(format!("{}.json", stem(destination_id, instance_id)))
    }

    /// Takes the destination and instance's lock, trying for up to `timeout` (at least once); `None` when
    /// another process held it all that time.
    pub(crate) async fn lock(
        &self,
        destination_id: &str,
        instance_id: &str,
        timeout: Duration,
    ) -> Result<Option<Lock>, StateDirError> {
        let path = self.lock_path(destination_id, instance_id);
        let shown = path.display();
        let mut options = fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .map_err(|e| StateDirError(format!("cannot open the lock file {shown}: {e}")))?;
        let started = Instant::now();
        let mut step = LOCK_POLL_FIRST;
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    tracing::debug!(lock = %shown, waited = ?started.elapsed(), "lock taken");
                    return Ok(Some(Lock { _file: file }));
                }
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => {
                    return Err(StateDirError(format!(
                        "cannot lock {shown} (the state directory must be on a file system with file locks): {e}"
                    )));
                }
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Ok(None);
            }
            if !told {
                told = true;
                tracing::info!(lock = %shown, ?timeout,
                    "another process for this destination and instance holds the lock; waiting for it");
            }
            tokio::time::sleep(step.min(timeout - waited)).await;
            step = (step * 2).min(LOCK_POLL_MAX);
        }
    }
}

/// A destination and instance's lock, held until dropped (or the process ends).
#[derive(Debug)]
pub(crate) struct Lock {
    // Closing the file releases the lock.
    _file: File,
}

/// The state file as written.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateFile {
    /// Whose state it is: a file found under another pair's name (two ids that differ in case only, on a
    /// file system that ignores case) is not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    destination_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance_id: Option<String>,
    /// Per table, its channel as the last writer left it.
    #[serde(default)]
    tables: BTreeMap<String, TableState>,
}

/// Tables' channel states in the state directory, for one destination and instance: read once when
/// opened, kept in memory, and written whole (atomically) on every change. Correctness does not depend on
/// it: a file that cannot be read is taken as empty and a write that fails is logged.
#[derive(Debug)]
pub(crate) struct FileState {
    path: PathBuf,
    destination_id: String,
    instance_id: String,
    tables: Mutex<BTreeMap<String, TableState>>,
}

impl FileState {
    /// Reads the state of `destination_id` and `instance_id` from the folder. Take the lock first, so the
    /// file is the one the previous process left.
    pub(crate) fn open(dir: &StateDir, destination_id: &str, instance_id: &str) -> Self {
        let path = dir.state_path(destination_id, instance_id);
        let tables = Self::read(&path, destination_id, instance_id);
        Self {
            path,
            destination_id: destination_id.to_owned(),
            instance_id: instance_id.to_owned(),
            tables: Mutex::new(tables),
        }
    }

    fn read(path: &Path, destination_id: &str, instance_id: &str) -> BTreeMap<String, TableState> {
        let shown = path.display();
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::debug!(state = %shown, "no state file yet");
                return BTreeMap::new();
            }
            Err(e) => {
                tracing::warn!(state = %shown, error = %e,
                    "cannot read the state file; starting without it");
                return BTreeMap::new();
            }
        };
        let file: StateFile = match serde_json::from_slice(&bytes) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(state = %shown, error = %e,
                    "the state file does not decode; starting without it (it is written anew)");
                return BTreeMap::new();
            }
        };
        let theirs = |id: &Option<String>, ours: &str| id.as_deref().is_some_and(|id| id != ours);
        if theirs(&file.destination_id, destination_id) || theirs(&file.instance_id, instance_id) {
            tracing::warn!(state = %shown, "the state file belongs to another destination or instance; starting without it");
            return BTreeMap::new();
        }
        file.tables
    }

    /// Writes the whole state: to a temporary file in the same folder, synced, then renamed over the file.
    fn write(&self, tables: &BTreeMap<String, TableState>) -> io::Result<()> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            destination_id: &'a str,
            instance_id: &'a str,
            tables: &'a BTreeMap<String, TableState>,
        }
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        let mut text = serde_json::to_vec_pretty(&Out {
            destination_id: &self.destination_id,
            instance_id: &self.instance_id,
            tables,
        })
        .map_err(io::Error::other)?;
        text.push(b'\n');
        // tempfile creates it readable by this user only.
        let mut temp = tempfile::Builder::new()
            .prefix(".state-")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        temp.write_all(&text)?;
        temp.as_file().sync_all()?;
        temp.persist(&self.path).map_err(|e| e.error)?;
        // The rename itself outlives a crash once the folder is synced; where a folder cannot be opened
        // for that (not Unix), the rename stands anyway.
        #[cfg(unix)]
        if let Ok(folder) = File::open(dir) {
            let _ = folder.sync_all();
        }
        Ok(())
    }
}

impl StateStore for FileState {
    fn load(&self, table: &str) -> Option<TableState> {
        self.tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(table)
            .cloned()
    }

    fn save(&self, table: &str, state: &TableState) {
        // Written under the lock, so the file renamed last holds every change.
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        if tables.get(table) == Some(state) {
            return;
        }
        tables.insert(table.to_owned(), state.clone());
        if let Err(e) = self.write(&tables) {
            tracing::warn!(state = %self.path.display(), table, error = %e,
                "cannot write the state file; a later process may not wait for this one's rows to commit");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_state(n: u32) -> TableState {
        TableState {
            channel_id: format!("chan-{n}"),
            opening: format!("v2.epoch-{n}.0.0"),
            ..TableState::default()
        }
    }

    #[test]
    fn names_are_safe_for_any_id() {
        assert_eq!(stem("2JzYQ0dB-x_y.z", "1"), "2JzYQ0dB-x_y.z+1");
        assert_eq!(stem("../a/b c+d", "1"), "..%2Fa%2Fb%20c%2Bd+1");
        assert_eq!(stem("é", "i/2"), "%C3%A9+i%2F2");
        assert_ne!(
            stem("a+b", "c"),
            stem("a", "b+c"),
            "the separator is unambiguous"
        );
        let long = "x".repeat(500);
        let one = stem(&long, "1");
        let two = stem(&long, "2");
        assert!(one.len() <= MAX_STEM, "{}", one.len());
        assert_ne!(one, two, "long ids still apart");
        assert!(one.contains('~'));
    }

    #[test]
    fn the_folder_is_created_private_and_a_file_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a").join("state");
        let dir = StateDir::open(&path).unwrap();
        assert!(dir.path().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        }
        StateDir::open(&path).expect("an existing folder is fine");
        let file = root.path().join("file");
        fs::write(&file, "x").unwrap();
        let error = StateDir::open(&file).unwrap_err().to_string();
        assert!(error.contains("not a folder"), "{error}");
        assert!(StateDir::open(&file.join("below")).is_err());
        assert!(StateDir::open(Path::new("")).is_err());
    }

    #[test]
    fn states_are_kept_between_openings() {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDir::open(root.path()).unwrap();
        let store = FileState::open(&dir, "dest/1", "1");
        assert_eq!(store.load("T"), None);
        store.save("T", &table_state(1));
        store.save("U", &table_state(2));
        store.save("T", &table_state(3));
        assert_eq!(store.load("T"), Some(table_state(3)));

        let again = FileState::open(&dir, "dest/1", "1");
        assert_eq!(again.load("T"), Some(table_state(3)));
        assert_eq!(again.load("U"), Some(table_state(2)));
        let other = FileState::open(&dir, "dest/1", "2");
        assert_eq!(other.load("T"), None, "instances apart");

        let text = fs::read_to_string(dir.state_path("dest/1", "1")).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["tables"]["T"]["channelId"], "chan-3", "{text}");
        assert_eq!(value["destinationId"], "dest/1");
        let leftovers: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.state_path("dest/1", "1"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_taken_as_empty_and_written_anew() {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDir::open(root.path()).unwrap();
        let path = dir.state_path("d", "1");
        fs::write(&path, "{not json").unwrap();
        let store = FileState::open(&dir, "d", "1");
        assert_eq!(store.load("T"), None);
        store.save("T", &table_state(1));
        assert_eq!(
            FileState::open(&dir, "d", "1").load("T"),
            Some(table_state(1))
        );

        let foreign = serde_json::json!({"destinationId": "D", "instanceId": "1",
            "tables": {"T": {"channelId": "x", "opening": "y"}}});
        fs::write(&path, foreign.to_string()).unwrap();
        assert_eq!(FileState::open(&dir, "d", "1").load("T"), None);

        let bare = serde_json::json!({"tables": {"T": {"channelId": "x", "opening": "y"}}});
        fs::write(&path, bare.to_string()).unwrap();
        let kept = FileState::open(&dir, "d", "1").load("T").unwrap();
        assert_eq!(kept.channel_id, "x", "a file without ids is read");
    }

    #[tokio::test]
    async fn the_lock_is_exclusive_and_released_when_dropped() {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDir::open(root.path()).unwrap();
        let held = dir.lock("d", "1", Duration::ZERO).await.unwrap();
        assert!(held.is_some());
        let started = Instant::now();
        let second = dir.lock("d", "1", Duration::from_millis(50)).await.unwrap();
        assert!(second.is_none(), "held by the first");
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(
            dir.lock("d", "2", Duration::ZERO).await.unwrap().is_some(),
            "another instance has its own lock"
        );
        drop(held);
        assert!(dir.lock("d", "1", Duration::ZERO).await.unwrap().is_some());
    }
}
