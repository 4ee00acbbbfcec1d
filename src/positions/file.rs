//! The positions file on disk: [`Positions::open`] reads it, [`Positions::save`] writes it
//! atomically, [`Positions::cleanup`] forgets files that are gone.
//!
//! Two files are kept:
//! - the positions file itself, in Promtail's format (spec §6.1), readable by Go Promtail so a
//!   user can roll back without losing anything;
//! - a sidecar `<positions file>.ferrotail` holding each file's `(dev, inode)`, which Promtail's
//!   format cannot hold, together with the offset it was saved with.
//!
//! Invariants:
//! - A write is atomic: temporary file in the same directory, write, `fsync`, `rename(2)` over the
//!   target, `fsync` of the directory. A crash leaves either the old or the new file, never a
//!   torn one, and no temporary file survives a failed write (stale ones from a crash are removed
//!   at open).
//! - A sidecar identity is only attached to a position when the sidecar's saved offset equals the
//!   positions file's value. The positions file is written first, so a crash between the two
//!   writes, or a run of Go Promtail in between (which rewrites only the positions file), leaves
//!   sidecar entries whose offsets no longer match; those are ignored, and the path's position is
//!   used as Promtail would. Writing the sidecar first would be unsafe: a crash in between could
//!   pair a new file's identity with the old file's offset and skip unread data.
//! - Nothing is written when neither file would change; a failed write is retried at the next
//!   save, counted in `ferrotail_positions_write_errors_total`, and never fatal.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::{debug, error, warn};

use super::generations::{Fingerprint, ResumePlan, SavedGeneration};
use super::stamps::{Mark, Stamps};
use super::store::{FileIdentity, PositionMap, SavedPosition, Snapshot};
use super::yaml::{self, SidecarEntry, SidecarGeneration};
use crate::metrics::Metrics;

/// Runtime settings of the positions file (the `positions` config block, plus `-dry-run`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionsSettings {
    /// Path of the positions file. Default: `/var/log/positions.yaml`.
    pub filename: PathBuf,
    /// How often the file is rewritten (if anything changed). Default: `10s`.
    pub sync_period: Duration,
    /// Start with empty positions instead of failing when the file is not valid YAML. Default:
    /// `false`.
    pub ignore_invalid_yaml: bool,
    /// Read the file but never write it (`-dry-run`). Default: `false`.
    pub read_only: bool,
}

impl Default for PositionsSettings {
    fn default() -> Self {
        PositionsSettings {
            filename: PathBuf::from("/var/log/positions.yaml"),
            sync_period: Duration::from_secs(10),
            ignore_invalid_yaml: false,
            read_only: false,
        }
    }
}

impl PositionsSettings {
    /// The identity sidecar written beside the positions file: `<filename>.ferrotail`.
    pub fn sidecar_path(&self) -> PathBuf {
        let mut name = self.filename.clone().into_os_string();
        name.push(".ferrotail");
        PathBuf::from(name)
    }
}

/// Errors of the positions file.
#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    /// The file exists but could not be read.
    #[error("reading positions file [{}]: {source}", path.display())]
    Read {
        /// The positions file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not a valid positions file (Promtail's message).
    #[error("invalid yaml positions file [{}]: {message}", path.display())]
    InvalidYaml {
        /// The positions file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// Writing the positions file or its sidecar failed.
    #[error("writing positions file [{}]: {source}", path.display())]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// What a file-backed [`Positions`] needs besides the map.
pub(super) struct Backing {
    settings: PositionsSettings,
    sidecar: PathBuf,
    metrics: Arc<Metrics>,
    /// Held for a whole save, so that the periodic and the final save never interleave.
    state: Mutex<WriteState>,
}

/// What is on disk, as far as this process knows. `None` forces the next save to write.
#[derive(Default)]
struct WriteState {
    positions: Option<BTreeMap<String, String>>,
    sidecar: Option<BTreeMap<String, SidecarEntry>>,
    dir_sync_warned: bool,
}

impl fmt::Debug for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backing")
            .field("settings", &self.settings)
            .field("sidecar", &self.sidecar)
            .finish_non_exhaustive()
    }
}

impl Backing {
    fn lock(&self) -> MutexGuard<'_, WriteState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Shared handle to the positions map ([`PositionMap`], which it dereferences to), optionally
/// saved to the positions file ([`Positions::open`], [`Positions::save`]).
#[derive(Debug, Default)]
pub struct Positions {
    map: PositionMap,
    /// The file this map is saved to; `None` for [`Positions::in_memory`].
    backing: Option<Backing>,
}

impl std::ops::Deref for Positions {
    type Target = PositionMap;

    fn deref(&self) -> &PositionMap {
        &self.map
    }
}

impl Positions {
    /// An empty positions map that is never written to disk.
    pub fn in_memory() -> Arc<Self> {
        Arc::new(Positions::default())
    }

    /// Reads the positions file (and its identity sidecar) and returns the handle to share.
    ///
    /// A missing file is an empty map; an invalid one is an error unless
    /// `settings.ignore_invalid_yaml`, in which case it is logged, ignored, and overwritten at the
    /// next save. A missing or invalid sidecar only loses the identities (logged). Values of file
    /// keys that are not integers are kept verbatim but give the file no position. Stale
    /// temporary files of a crashed write are removed (unless `read_only`).
    pub fn open(
        settings: &PositionsSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Positions>, PositionsError> {
        let path = &settings.filename;
        let mut state = WriteState::default();
        let (values, parsed) = match fs::read(path) {
            Ok(bytes) => match decode_positions(&bytes) {
                Ok(values) => (values, true),
                Err(message) if settings.ignore_invalid_yaml => {
                    warn!(path = %path.display(), error = %message,
                            "Ignoring invalid positions file; all sources start from scratch and the file will be overwritten.");
                    (BTreeMap::new(), false)
                }
                Err(message) => {
                    return Err(PositionsError::InvalidYaml {
                        path: path.clone(),
                        message,
                    });
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => (BTreeMap::new(), false),
            Err(source) => {
                return Err(PositionsError::Read {
                    path: path.clone(),
                    source,
                });
            }
        };
        let sidecar_path = settings.sidecar_path();
        let sidecar = read_sidecar(&sidecar_path, !values.is_empty());
        let plans = resume_plans(&values, sidecar.as_ref());
        let positions = Positions::default();
        positions.load_values(values.clone(), &plans);
        // Record what is on disk so an unchanged map is not rewritten; anything that would come
        // out different (or could not be read) is written at the first save.
        let now = positions.snapshot();
        if parsed && now.values == values {
            state.positions = Some(values);
        }
        let now_sidecar = sidecar_entries(&now);
        if sidecar.as_ref() == Some(&now_sidecar) {
            state.sidecar = Some(now_sidecar);
        }
        if !settings.read_only {
            remove_stale_temporaries(path);
            remove_stale_temporaries(&sidecar_path);
        }
        if !settings.read_only {
            positions.gate().require();
        }
        Ok(Arc::new(Positions {
            backing: Some(Backing {
                settings: settings.clone(),
                sidecar: sidecar_path,
                metrics,
                state: Mutex::new(state),
            }),
            ..positions
        }))
    }

    /// An in-memory map holding what a restart would read back from a save of `snapshot`
    /// (both files, through the same conversion as [`Positions::open`]): for tests and the
    /// fuzzers, without the file I/O.
    pub fn restored_from(snapshot: &Snapshot) -> Arc<Positions> {
        let sidecar = sidecar_entries(snapshot);
        let plans = resume_plans(&snapshot.values, Some(&sidecar));
        let positions = Positions::in_memory();
        positions.load_values(snapshot.values.clone(), &plans);
        positions
    }

    /// Writes the positions file and then the identity sidecar, each only if its content
    /// changed since the last successful write. Blocking (file I/O and `fsync`): call it from a
    /// blocking thread. Does nothing for an in-memory map or in read-only (`-dry-run`) mode.
    ///
    /// A failure is logged with the path and the OS error, counted in
    /// `ferrotail_positions_write_errors_total`, and returned; the next save retries. The
    /// parent directory is created (mode 0700) if missing, which Promtail does not do.
    pub fn save(&self) -> Result<(), PositionsError> {
        let Some(backing) = &self.backing else {
            return Ok(());
        };
        if backing.settings.read_only {
            return Ok(());
        }
        let mut state = backing.lock();
        let stamp_ends = self.stamp_ends();
        let snapshot = self.snapshot();
        let sidecar = sidecar_entries(&snapshot);
        let result = backing.write_both(&mut state, snapshot.values, sidecar);
        if result.is_ok() {
            for (tracker, through) in stamp_ends {
                tracker.stamps_saved(through);
            }
        }
        self.gate().saved(result.is_ok());
        if let Err(e) = &result {
            backing.metrics.positions_write_errors.inc();
            match e {
                PositionsError::Write { path, source } => {
                    error!(path = %path.display(), error = %source, "Error writing positions file.");
                }
                other => error!(error = %other, "Error writing positions file."),
            }
        }
        result
    }

    /// Forgets positions of files that no longer exist (spec §6.4): every key that is not a
    /// `cursor-` or `journal-` key is `stat`ed; when the path does not exist the key is removed
    /// from memory (and from the file at the next save), unless a reader is still attached to it
    /// (it may still be draining a deleted file). Other `stat` errors keep the key and log a
    /// warning. Blocking: call it from a blocking thread, after a periodic save.
    pub fn cleanup(&self) {
        for key in self.keys() {
            if key.starts_with("cursor-") || key.starts_with("journal-") {
                continue;
            }
            match fs::metadata(&key) {
                Ok(_) => {}
                // A missing directory component (ENOTDIR) means the file is gone too; Promtail
                // would keep such a key forever, warning every period.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    if self.remove_if_untracked(&key) {
                        debug!(path = %key, "Removed the position of a file that no longer exists.");
                    }
                }
                Err(e) => {
                    warn!(path = %key, error = %e, "Could not stat a file of the positions map; keeping its position.");
                }
            }
        }
    }
}

impl Backing {
    fn write_both(
        &self,
        state: &mut WriteState,
        values: BTreeMap<String, String>,
        sidecar: BTreeMap<String, SidecarEntry>,
    ) -> Result<(), PositionsError> {
        let path = &self.settings.filename;
        if state.positions.as_ref() != Some(&values) {
            let text = yaml::render_positions(&values);
            self.write_atomic(state, path, text.as_bytes())?;
            state.positions = Some(values);
        }
        if state.sidecar.as_ref() != Some(&sidecar) {
            let name = path.display().to_string();
            let text = yaml::render_sidecar(&name, &sidecar);
            self.write_atomic(state, &self.sidecar, text.as_bytes())?;
            state.sidecar = Some(sidecar);
        }
        Ok(())
    }

    fn write_atomic(
        &self,
        state: &mut WriteState,
        path: &Path,
        contents: &[u8],
    ) -> Result<(), PositionsError> {
        let err = |source| PositionsError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = parent_dir(path);
        write_and_rename(path, dir, contents).map_err(err)?;
        // The rename is only durable once the directory entry is; some file systems refuse to
        // fsync a directory, which is not worth failing (or retrying) the save for.
        if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all())
            && !state.dir_sync_warned
        {
            state.dir_sync_warned = true;
            warn!(dir = %dir.display(), error = %e,
                    "Could not fsync the positions directory; a crash right after a save may lose that save.");
        }
        Ok(())
    }
}

/// Writes `contents` to a new temporary file in `dir`, fsyncs it and renames it over `path`.
/// A new file gets mode 0600; an existing file's mode is kept. The temporary file is removed on
/// any error (`NamedTempFile` deletes itself when dropped).
fn write_and_rename(path: &Path, dir: &Path, contents: &[u8]) -> io::Result<()> {
    if !dir.as_os_str().is_empty() && !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let existing_mode = match fs::metadata(path) {
        Ok(m) => Some(m.permissions().mode() & 0o7777),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    if let Some(mode) = existing_mode {
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
    }
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Temporary files are named `.<target name>.tmp-<random>` so that stale ones can be found.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

/// Removes temporary files left by a write that a crash interrupted. They are never used: the
/// target is renamed into place only after a complete write, so the target is always at least as
/// good as a leftover.
fn remove_stale_temporaries(path: &Path) {
    let prefix = temp_prefix(path);
    let dir = parent_dir(path);
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let stale = entry.path();
            match fs::remove_file(&stale) {
                Ok(()) => {
                    debug!(path = %stale.display(), "Removed a stale temporary positions file.")
                }
                Err(e) => {
                    warn!(path = %stale.display(), error = %e, "Could not remove a stale temporary positions file.")
                }
            }
        }
    }
}

/// Decodes the bytes of a positions file (UTF-8, then Promtail's YAML) into its raw map; the
/// error text is what [`PositionsError::InvalidYaml`] carries.
pub(crate) fn decode_positions(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    std::str::from_utf8(bytes)
        .map_err(|e| e.to_string())
        .and_then(yaml::parse_positions)
}

/// Reads the identity sidecar; any problem means "no identities", with a warning. A missing
/// sidecar is only worth a warning when there are positions it should have described
/// (`expected`); on a first start, or after migrating from Promtail, it is simply absent.
fn read_sidecar(path: &Path, expected: bool) -> Option<BTreeMap<String, SidecarEntry>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if expected {
                warn!(path = %path.display(),
                    "No file identity sidecar; positions are matched by path only until the next save.");
            }
            return None;
        }
        Err(e) => {
            warn!(path = %path.display(), error = %e,
                "Could not read the file identity sidecar; positions are matched by path only.");
            return None;
        }
    };
    match yaml::parse_sidecar(&text) {
        Ok(entries) => Some(entries),
        Err(e) => {
            warn!(path = %path.display(), error = %e,
                "Invalid file identity sidecar; positions are matched by path only.");
            None
        }
    }
}

/// The sidecar content for a snapshot: for each file key with an integer value, its current
/// generation (when its identity is known) and its older generations.
fn sidecar_entries(snapshot: &Snapshot) -> BTreeMap<String, SidecarEntry> {
    snapshot
        .files
        .iter()
        .filter_map(|(k, saved)| {
            let current = saved.current.as_ref()?;
            let (through, marks) = sidecar_marks(&current.stamps);
            Some((
                k.clone(),
                SidecarEntry {
                    dev: current.identity.dev,
                    ino: current.identity.ino,
                    offset: saved.offset,
                    size: current.size,
                    head: current.fingerprint.len,
                    hash: current.fingerprint.hash,
                    older: saved.older.iter().map(sidecar_generation).collect(),
                    through,
                    marks,
                },
            ))
        })
        .collect()
}

fn sidecar_generation(g: &SavedGeneration) -> SidecarGeneration {
    let (through, marks) = sidecar_marks(&g.stamps);
    SidecarGeneration {
        dev: g.identity.dev,
        ino: g.identity.ino,
        offset: g.offset,
        size: g.size,
        head: g.fingerprint.len,
        hash: g.fingerprint.hash,
        copied: g.copied,
        through,
        marks,
    }
}

fn sidecar_marks(s: &Stamps) -> (u64, Vec<(u64, i64)>) {
    if s.is_empty() {
        return (0, Vec::new());
    }
    (
        s.through,
        s.marks.iter().map(|m| (m.offset, m.ts)).collect(),
    )
}

/// Stamps as the sidecar had them; marks out of order (a hand-edited file) are not replayed.
fn saved_stamps(through: u64, marks: &[(u64, i64)]) -> Stamps {
    if !marks.windows(2).all(|w| w[0].0 < w[1].0) {
        return Stamps::default();
    }
    Stamps {
        marks: marks
            .iter()
            .map(|&(offset, ts)| Mark { offset, ts })
            .collect(),
        through,
    }
}

fn saved_generation(g: &SidecarGeneration) -> SavedGeneration {
    SavedGeneration {
        identity: FileIdentity {
            dev: g.dev,
            ino: g.ino,
        },
        fingerprint: Fingerprint {
            len: g.head,
            hash: g.hash,
        },
        offset: g.offset,
        size: g.size,
        copied: g.copied,
        stamps: saved_stamps(g.through, &g.marks),
    }
}

/// Where each file key's readers start, from the positions file's values and the sidecar.
///
/// The file at the path gets the sidecar's identity and fingerprint only when the sidecar was
/// saved with the same offset as the positions file (module docs). When they differ (a crash
/// between the two writes, or Go Promtail ran in between), the path's offset is used as
/// Promtail would, and the file the sidecar named becomes one more older generation: if it is
/// still at the path it is skipped, if it was rotated away meanwhile it is read from the
/// sidecar's offset (at worst lines come twice; none are skipped). The sidecar's older
/// generations are always kept: a reader finds them again by identity and fingerprint.
fn resume_plans(
    values: &BTreeMap<String, String>,
    sidecar: Option<&BTreeMap<String, SidecarEntry>>,
) -> HashMap<String, ResumePlan> {
    let mut plans = HashMap::new();
    for (key, e) in sidecar.into_iter().flatten() {
        let Some(value) = values.get(key).and_then(|v| v.trim().parse::<u64>().ok()) else {
            continue;
        };
        let mut older: Vec<SavedGeneration> = e.older.iter().map(saved_generation).collect();
        let at_path = SavedGeneration {
            identity: FileIdentity {
                dev: e.dev,
                ino: e.ino,
            },
            fingerprint: Fingerprint {
                len: e.head,
                hash: e.hash,
            },
            offset: e.offset,
            size: e.size,
            copied: false,
            stamps: saved_stamps(e.through, &e.marks),
        };
        let trusted = e.offset == value;
        let mut current_stamps = Stamps::default();
        let current = if trusted {
            current_stamps = at_path.stamps.clone();
            SavedPosition {
                offset: value,
                identity: Some(at_path.identity),
                fingerprint: at_path.fingerprint.known(),
            }
        } else {
            older.push(at_path);
            SavedPosition::at(value)
        };
        plans.insert(
            key.clone(),
            ResumePlan {
                older,
                current: Some(current),
                current_size: if trusted { e.size } else { 0 },
                current_stamps,
            },
        );
    }
    plans
}
