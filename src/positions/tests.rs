//! Tests of the positions file: reading, atomic writing, the identity sidecar, cleanup and the
//! periodic writer.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::metrics::Metrics;

fn settings(path: &Path) -> PositionsSettings {
    PositionsSettings {
        filename: path.to_path_buf(),
        ..PositionsSettings::default()
    }
}

fn open(path: &Path) -> Arc<Positions> {
    Positions::open(&settings(path), Arc::new(Metrics::new())).unwrap()
}

fn dir_and_path() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("positions.yaml");
    (dir, path)
}

fn offset(p: &Positions, key: &str) -> Option<u64> {
    p.get(key).map(|s| s.offset)
}

/// Names in `dir` other than the positions file and its sidecar.
fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "positions.yaml" && n != "positions.yaml.ferrotail")
        .collect()
}

fn ino(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

const ID: FileIdentity = FileIdentity {
    dev: 64769,
    ino: 1234,
};

#[test]
fn reads_appendix_b() {
    let (_d, path) = dir_and_path();
    fs::write(
        &path,
        "positions:\n  /var/log/auth.log: \"5120\"\n  /var/log/syslog: \"1048576\"\n  \
         cursor-journal: s=0123456789abcdef0123456789abcdef;i=1a2b;b=fedcba9876543210fedcba9876543210;m=3c4d;t=5e6f7a8b9c0d1;x=1122334455667788\n",
    )
    .unwrap();
    let p = open(&path);
    assert_eq!(offset(&p, "/var/log/auth.log"), Some(5120));
    assert_eq!(offset(&p, "/var/log/syslog"), Some(1048576));
    assert_eq!(p.get("/var/log/syslog").unwrap().identity, None);
    assert_eq!(
        p.get_opaque("cursor-journal").as_deref(),
        Some(
            "s=0123456789abcdef0123456789abcdef;i=1a2b;b=fedcba9876543210fedcba9876543210;m=3c4d;t=5e6f7a8b9c0d1;x=1122334455667788"
        )
    );
}

#[test]
fn reads_promtail_written_variants() {
    let (_d, path) = dir_and_path();
    let long = format!("/var/log/pods/ns_pod-{}_uid/c/0.log", "x".repeat(150));
    fs::write(
        &path,
        format!(
            "positions:\n  /a.log: 123\n  /b.log: \"456\"\n  ? {long}\n  : \"789\"\n  \
             /weird.log: not-a-number\n  journal-varlogs: s=abc;i=5\n  cursor-0d3f: \"1711111111\"\n"
        ),
    )
    .unwrap();
    let p = open(&path);
    assert_eq!(offset(&p, "/a.log"), Some(123));
    assert_eq!(offset(&p, "/b.log"), Some(456));
    assert_eq!(offset(&p, &long), Some(789));
    // Not an integer: no position for the file, but the value survives a save.
    assert_eq!(p.get("/weird.log"), None);
    assert_eq!(
        p.get_opaque("journal-varlogs").as_deref(),
        Some("s=abc;i=5")
    );
    assert_eq!(p.get_opaque("cursor-0d3f").as_deref(), Some("1711111111"));
    assert_eq!(p.get("cursor-0d3f"), None);
    p.set(
        "/a.log",
        SavedPosition {
            offset: 124,
            identity: None,
            fingerprint: None,
        },
    );
    p.save().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("  /weird.log: \"not-a-number\"\n"), "{text}");
    assert!(
        text.contains("  journal-varlogs: \"s=abc;i=5\"\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("  ? {long}\n  : \"789\"\n")),
        "{text}"
    );
}

#[test]
fn empty_forms_and_missing_file() {
    for text in ["", "positions: {}\n", "positions:\n", "# only a comment\n"] {
        let (_d, path) = dir_and_path();
        fs::write(&path, text).unwrap();
        assert!(open(&path).keys().is_empty(), "{text:?}");
    }
    let (dir, path) = dir_and_path();
    let p = open(&path);
    assert!(p.keys().is_empty());
    assert!(!path.exists(), "open must not create the file");
    p.save().unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "positions: {}\n");
    assert_eq!(mode(&path), 0o600);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn strict_errors_are_fatal_unless_ignored() {
    for text in [
        "positions: {}\nunknown: 1\n",
        "positions:\n  /a.log: [1, 2]\n",
        "positions:\n  /a.log: \"1\"\n  /a.log: \"2\"\n",
        "positions:\n  /a.log: \"12",
    ] {
        let (_d, path) = dir_and_path();
        fs::write(&path, text).unwrap();
        let err = Positions::open(&settings(&path), Arc::new(Metrics::new())).unwrap_err();
        assert!(matches!(err, PositionsError::InvalidYaml { .. }), "{err:?}");
        let prefix = format!("invalid yaml positions file [{}]: ", path.display());
        assert!(err.to_string().starts_with(&prefix), "{err}");

        let lenient = PositionsSettings {
            ignore_invalid_yaml: true,
            ..settings(&path)
        };
        let p = Positions::open(&lenient, Arc::new(Metrics::new())).unwrap();
        assert!(p.keys().is_empty());
        // The invalid content is overwritten at the next save, even though the map is empty.
        p.save().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "positions: {}\n");
    }
}

#[test]
fn unreadable_file_is_a_read_error() {
    let (_d, path) = dir_and_path();
    fs::create_dir(&path).unwrap();
    let err = Positions::open(&settings(&path), Arc::new(Metrics::new())).unwrap_err();
    assert!(matches!(err, PositionsError::Read { .. }), "{err:?}");
}

#[test]
fn nasty_keys_round_trip_through_the_file() {
    let (_d, path) = dir_and_path();
    let keys = [
        "/var/log/a b.log".to_string(),
        "/var/log/a: b #c.log".to_string(),
        "/var/log/\"q\"'s'\\.log".to_string(),
        "/var/log/ünï/日本.log".to_string(),
        "123".to_string(),
        "true".to_string(),
        "null".to_string(),
        "tab\tnl\n".to_string(),
        format!("/var/log/pods/{}/0.log", "p".repeat(300)),
    ];
    let p = open(&path);
    for (i, k) in keys.iter().enumerate() {
        p.set(
            k,
            SavedPosition {
                offset: i as u64 * 7,
                identity: Some(ID),
                fingerprint: None,
            },
        );
    }
    p.set_opaque("cursor-journal", "s=1;i=2: #x".to_string());
    p.save().unwrap();
    let back = open(&path);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            back.get(k),
            Some(SavedPosition {
                offset: i as u64 * 7,
                identity: Some(ID),
                fingerprint: None,
            }),
            "key {k:?}"
        );
    }
    assert_eq!(
        back.get_opaque("cursor-journal").as_deref(),
        Some("s=1;i=2: #x")
    );
    assert_eq!(back.keys().len(), keys.len() + 1);
}

#[test]
fn existing_mode_is_preserved() {
    let (_d, path) = dir_and_path();
    fs::write(&path, "positions: {}\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let p = open(&path);
    p.set(
        "/x",
        SavedPosition {
            offset: 1,
            identity: None,
            fingerprint: None,
        },
    );
    let before = ino(&path);
    p.save().unwrap();
    assert_ne!(ino(&path), before, "the file must have been replaced");
    assert_eq!(mode(&path), 0o640);
    // The sidecar is new: 0600.
    assert_eq!(mode(&settings(&path).sidecar_path()), 0o600);
}

#[test]
fn new_positions_and_sidecar_are_private() {
    // Both files name every tailed log file; only the owner may read them (Promtail: 0600).
    let (dir, path) = dir_and_path();
    let p = open(&path);
    p.set(
        "/var/log/app.log",
        SavedPosition {
            offset: 7,
            identity: Some(ID),
            fingerprint: None,
        },
    );
    p.save().unwrap();
    let sidecar = settings(&path).sidecar_path();
    assert!(sidecar.exists(), "an identity is saved in the sidecar");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&sidecar), 0o600);
    // Rewritten files keep the mode.
    p.set(
        "/var/log/app.log",
        SavedPosition {
            offset: 9,
            identity: Some(ID),
            fingerprint: None,
        },
    );
    let before = ino(&path);
    p.save().unwrap();
    assert_ne!(ino(&path), before, "the file must have been replaced");
    assert_eq!((mode(&path), mode(&sidecar)), (0o600, 0o600));
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn missing_parent_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/positions.yaml");
    let p = open(&path);
    p.save().unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "positions: {}\n");
    assert_eq!(mode(&dir.path().join("a/b")), 0o700);
}

/// Whether directory permissions stop this process (they do not for root).
fn permissions_are_enforced(dir: &Path) -> bool {
    let probe = dir.join("probe");
    fs::create_dir(&probe).unwrap();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o500)).unwrap();
    let blocked = fs::write(probe.join("x"), "x").is_err();
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o700)).unwrap();
    fs::remove_dir_all(&probe).unwrap();
    blocked
}

#[test]
fn failed_write_leaves_no_temporary_and_is_counted_and_retried() {
    // Failure 1 (works as root too): the target path is a directory, so the rename fails after
    // the temporary file was written.
    let (dir, path) = dir_and_path();
    let metrics = Arc::new(Metrics::new());
    let p = Positions::open(&settings(&path), Arc::clone(&metrics)).unwrap();
    fs::create_dir(&path).unwrap();
    p.set(
        "/x",
        SavedPosition {
            offset: 5,
            identity: None,
            fingerprint: None,
        },
    );
    let err = p.save().unwrap_err();
    assert!(matches!(err, PositionsError::Write { .. }), "{err:?}");
    assert_eq!(metrics.positions_write_errors.get(), 1);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
    // Retried (and succeeding) once the obstacle is gone, although the map did not change.
    fs::remove_dir(&path).unwrap();
    p.save().unwrap();
    assert!(fs::read_to_string(&path).unwrap().contains("/x: \"5\""));
    assert_eq!(metrics.positions_write_errors.get(), 1);

    // Failure 2: a read-only directory (only meaningful when permissions are enforced).
    if permissions_are_enforced(dir.path()) {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
        p.set(
            "/x",
            SavedPosition {
                offset: 6,
                identity: None,
                fingerprint: None,
            },
        );
        assert!(p.save().is_err());
        assert_eq!(metrics.positions_write_errors.get(), 2);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
        assert!(fs::read_to_string(&path).unwrap().contains("/x: \"5\""));
        p.save().unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains("/x: \"6\""));
    }
}

#[test]
fn save_is_skipped_when_nothing_changed() {
    let (dir, path) = dir_and_path();
    let sidecar = settings(&path).sidecar_path();
    let p = open(&path);
    p.set(
        "/x",
        SavedPosition {
            offset: 5,
            identity: Some(ID),
            fingerprint: None,
        },
    );
    p.save().unwrap();
    let (a, b) = (ino(&path), ino(&sidecar));
    p.save().unwrap();
    assert_eq!(
        (ino(&path), ino(&sidecar)),
        (a, b),
        "unchanged map rewritten"
    );
    // Reopening an identical file does not rewrite it either.
    let again = open(&path);
    again.save().unwrap();
    assert_eq!(
        (ino(&path), ino(&sidecar)),
        (a, b),
        "reopened map rewritten"
    );
    // A change is written.
    again.set(
        "/x",
        SavedPosition {
            offset: 6,
            identity: Some(ID),
            fingerprint: None,
        },
    );
    again.save().unwrap();
    assert_ne!(ino(&path), a);
    assert_ne!(ino(&sidecar), b);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn sidecar_holds_identities_of_file_keys_only() {
    let (_d, path) = dir_and_path();
    let p = open(&path);
    let (state, _) = p.attach("/tracked", 0);
    let _g = state.add(
        0,
        FileIdentity { dev: 1, ino: 2 },
        Fingerprint::default(),
        10,
        10,
        Phase::Reading,
    );
    p.set(
        "/plain",
        SavedPosition {
            offset: 3,
            identity: Some(ID),
            fingerprint: None,
        },
    );
    p.set(
        "/no-id",
        SavedPosition {
            offset: 4,
            identity: None,
            fingerprint: None,
        },
    );
    p.set_opaque("cursor-x", "c".to_string());
    p.save().unwrap();
    let text = fs::read_to_string(settings(&path).sidecar_path()).unwrap();
    assert!(text.contains("\nversion: 3\nfiles:\n"), "{text}");
    assert!(
        text.contains("  /plain: {dev: 64769, ino: 1234, offset: 3, size: 3, head: 0, hash: 0}\n"),
        "{text}"
    );
    assert!(
        text.contains("  /tracked: {dev: 1, ino: 2, offset: 10, size: 10, head: 0, hash: 0}\n"),
        "{text}"
    );
    assert!(
        !text.contains("/no-id") && !text.contains("cursor-x"),
        "{text}"
    );

    let back = open(&path);
    assert_eq!(
        back.get("/tracked"),
        Some(SavedPosition {
            offset: 10,
            identity: Some(FileIdentity { dev: 1, ino: 2 }),
            fingerprint: None,
        })
    );
    assert_eq!(back.get("/plain").unwrap().identity, Some(ID));
    assert_eq!(
        back.get("/no-id"),
        Some(SavedPosition {
            offset: 4,
            identity: None,
            fingerprint: None,
        })
    );
}

#[test]
fn missing_or_corrupt_sidecar_only_loses_identities() {
    let (_d, path) = dir_and_path();
    let sidecar = settings(&path).sidecar_path();
    let p = open(&path);
    p.set(
        "/a",
        SavedPosition {
            offset: 7,
            identity: Some(ID),
            fingerprint: None,
        },
    );
    p.save().unwrap();

    for junk in [
        "version: 1\nfiles: [oops\n",
        "version: 99\nfiles: {}\n",
        "\u{0}\u{1}",
    ] {
        fs::write(&sidecar, junk).unwrap();
        let back = open(&path);
        assert_eq!(
            back.get("/a"),
            Some(SavedPosition {
                offset: 7,
                identity: None,
                fingerprint: None,
            }),
            "{junk:?}"
        );
    }
    fs::remove_file(&sidecar).unwrap();
    let back = open(&path);
    assert_eq!(
        back.get("/a"),
        Some(SavedPosition {
            offset: 7,
            identity: None,
            fingerprint: None,
        })
    );
    // The next save writes the sidecar again (with what the map knows).
    back.set(
        "/a",
        SavedPosition {
            offset: 8,
            identity: Some(ID),
            fingerprint: None,
        },
    );
    back.save().unwrap();
    assert_eq!(open(&path).get("/a").unwrap().identity, Some(ID));
}

#[test]
fn identity_is_dropped_when_positions_were_rewritten_without_it() {
    // E.g. Go Promtail ran in between (rollback and forward again), or a crash came between the
    // positions write and the sidecar write: the sidecar's offset no longer matches.
    let (_d, path) = dir_and_path();
    let p = open(&path);
    p.set(
        "/a",
        SavedPosition {
            offset: 100,
            identity: Some(ID),
            fingerprint: None,
        },
    );
    p.set(
        "/b",
        SavedPosition {
            offset: 200,
            identity: Some(ID),
            fingerprint: None,
        },
    );
    p.save().unwrap();
    fs::write(&path, "positions:\n  /a: \"150\"\n  /b: \"200\"\n").unwrap();
    let back = open(&path);
    assert_eq!(
        back.get("/a"),
        Some(SavedPosition {
            offset: 150,
            identity: None,
            fingerprint: None,
        })
    );
    assert_eq!(
        back.get("/b"),
        Some(SavedPosition {
            offset: 200,
            identity: Some(ID),
            fingerprint: None,
        })
    );
}

#[test]
fn cleanup_forgets_vanished_untracked_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("positions.yaml");
    let live = dir.path().join("live.log");
    fs::write(&live, "x\n").unwrap();
    let live = live.to_string_lossy().into_owned();
    let gone = dir.path().join("gone.log").to_string_lossy().into_owned();
    let draining = dir
        .path()
        .join("draining.log")
        .to_string_lossy()
        .into_owned();
    let under_file = format!("{live}/child.log"); // ENOTDIR
    let p = open(&path);
    for k in [&live, &gone, &under_file] {
        p.set(
            k,
            SavedPosition {
                offset: 1,
                identity: None,
                fingerprint: None,
            },
        );
    }
    let (state, _) = p.attach(&draining, 0);
    let g = state.add(0, ID, Fingerprint::default(), 4, 4, Phase::Reading);
    let in_flight = g.tracker().chunk(9, None);
    p.set_opaque("cursor-abc", "1711111111".to_string());
    p.set_opaque("journal-old", "s=1".to_string());
    p.set_opaque("/opaque-gone.log", "junk".to_string());
    p.cleanup();
    let mut keys = p.keys();
    keys.sort();
    let mut want = vec![
        live.clone(),
        draining.clone(),
        "cursor-abc".to_string(),
        "journal-old".to_string(),
    ];
    want.sort();
    assert_eq!(keys, want);
    // Once the reader lets it go, the vanished file is kept while lines are in flight, and
    // forgotten once they are delivered.
    state.release(0);
    p.cleanup();
    assert_eq!(p.get(&draining).map(|s| s.offset), Some(4));
    drop(in_flight);
    p.cleanup();
    assert!(p.get(&draining).is_none());
}

#[test]
fn saved_value_is_committed_not_read() {
    let (_d, path) = dir_and_path();
    let p = open(&path);
    let (state, _) = p.attach("/a.log", 0);
    let g = state.add(0, ID, Fingerprint::default(), 0, 0, Phase::Reading);
    let t = g.tracker();
    let first = t.chunk(100, None);
    let second = t.chunk(250, None);
    p.save().unwrap();
    assert!(fs::read_to_string(&path).unwrap().contains("/a.log: \"0\""));
    drop(second); // out of order: still nothing committed
    p.save().unwrap();
    assert!(fs::read_to_string(&path).unwrap().contains("/a.log: \"0\""));
    drop(first);
    p.save().unwrap();
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .contains("/a.log: \"250\"")
    );
    assert_eq!(
        open(&path).get("/a.log"),
        Some(SavedPosition {
            offset: 250,
            identity: Some(ID),
            fingerprint: None,
        })
    );
}

#[test]
fn read_only_never_writes() {
    let (dir, path) = dir_and_path();
    let ro = PositionsSettings {
        read_only: true,
        ..settings(&path)
    };
    let p = Positions::open(&ro, Arc::new(Metrics::new())).unwrap();
    p.set(
        "/x",
        SavedPosition {
            offset: 1,
            identity: None,
            fingerprint: None,
        },
    );
    p.save().unwrap();
    assert!(fs::read_dir(dir.path()).unwrap().next().is_none());

    fs::write(&path, "positions:\n  /y: 9\n").unwrap();
    let p = Positions::open(&ro, Arc::new(Metrics::new())).unwrap();
    assert_eq!(offset(&p, "/y"), Some(9));
    p.set(
        "/y",
        SavedPosition {
            offset: 10,
            identity: None,
            fingerprint: None,
        },
    );
    p.save().unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "positions:\n  /y: 9\n");
}

#[test]
fn stale_temporaries_are_removed_at_open() {
    let (dir, path) = dir_and_path();
    fs::write(
        dir.path().join(".positions.yaml.tmp-abc123"),
        "positions:\n  /half",
    )
    .unwrap();
    fs::write(dir.path().join(".positions.yaml.ferrotail.tmp-x"), "ver").unwrap();
    fs::write(dir.path().join("unrelated.txt"), "keep").unwrap();
    let _p = open(&path);
    assert_eq!(leftovers(dir.path()), vec!["unrelated.txt".to_string()]);
}

#[test]
fn in_memory_save_is_a_no_op() {
    let p = Positions::in_memory();
    p.set(
        "/x",
        SavedPosition {
            offset: 1,
            identity: None,
            fingerprint: None,
        },
    );
    p.save().unwrap();
}

#[test]
fn sidecar_path_is_beside_the_file() {
    let s = settings(Path::new("/var/lib/ferrotail/positions.yaml"));
    assert_eq!(
        s.sidecar_path(),
        PathBuf::from("/var/lib/ferrotail/positions.yaml.ferrotail")
    );
    let d = PositionsSettings::default();
    assert_eq!(d.filename, PathBuf::from("/var/log/positions.yaml"));
    assert_eq!(d.sync_period, Duration::from_secs(10));
    assert!(!d.ignore_invalid_yaml && !d.read_only);
}

#[tokio::test(start_paused = true)]
async fn writer_writes_changes_within_one_period_and_nothing_otherwise() {
    let (dir, path) = dir_and_path();
    // A file that exists, so that the cleanup after each save keeps its key.
    let log = dir.path().join("x.log");
    fs::write(&log, "x\n").unwrap();
    let x = log.to_string_lossy().into_owned();
    let line = |n: u64| format!("positions:\n  {x}: \"{n}\"\n");
    let period = Duration::from_secs(10);
    let p = open(&path);
    p.set(
        &x,
        SavedPosition {
            offset: 1,
            identity: None,
            fingerprint: None,
        },
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(PositionsWriter::new(Arc::clone(&p), period).run(shutdown.clone()));

    tokio::time::sleep(period + Duration::from_millis(1)).await;
    assert_eq!(fs::read_to_string(&path).unwrap(), line(1));
    let written = ino(&path);

    // Several periods without a change: the file is not replaced.
    tokio::time::sleep(period * 3).await;
    assert_eq!(ino(&path), written, "unchanged positions were rewritten");

    // A change is written within one period.
    p.set(
        &x,
        SavedPosition {
            offset: 2,
            identity: None,
            fingerprint: None,
        },
    );
    tokio::time::sleep(period).await;
    assert_eq!(fs::read_to_string(&path).unwrap(), line(2));

    // Shutdown stops the task without a final save (the caller does that).
    p.set(
        &x,
        SavedPosition {
            offset: 3,
            identity: None,
            fingerprint: None,
        },
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("writer did not stop on shutdown")
        .unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), line(2));
}

#[tokio::test(start_paused = true)]
async fn writer_cleans_up_after_saving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("positions.yaml");
    let gone = dir.path().join("gone.log").to_string_lossy().into_owned();
    let p = open(&path);
    p.set(
        &gone,
        SavedPosition {
            offset: 1,
            identity: None,
            fingerprint: None,
        },
    );
    let shutdown = CancellationToken::new();
    let task =
        tokio::spawn(PositionsWriter::new(Arc::clone(&p), Duration::ZERO).run(shutdown.clone()));
    // First period: saved (with the key), then cleaned up from memory.
    tokio::time::sleep(MIN_SYNC_PERIOD + Duration::from_millis(1)).await;
    assert!(p.get(&gone).is_none());
    assert!(fs::read_to_string(&path).unwrap().contains("gone.log"));
    // Next period: the file follows.
    tokio::time::sleep(MIN_SYNC_PERIOD).await;
    assert_eq!(fs::read_to_string(&path).unwrap(), "positions: {}\n");
    shutdown.cancel();
    task.await.unwrap();
}

/// What a reader records while handing on two chunks of `/a.log` and a rotated generation.
fn stamped_path(p: &Positions) -> (GenHandle, GenHandle, Vec<crate::entry::Ack>) {
    let old_id = FileIdentity { dev: 1, ino: 7 };
    let (state, _) = p.attach("/a.log", 0);
    let old = state.add(0, old_id, Fingerprint::default(), 0, 0, Phase::Reading);
    let g = state.add(0, ID, Fingerprint::default(), 0, 0, Phase::Reading);
    let mut acks = Vec::new();
    assert!(old.stamped(Some(Mark { offset: 0, ts: 500 }), 40));
    acks.push(old.tracker().stamped_chunk(40, None, true));
    old.left(40);
    assert!(g.stamped(
        Some(Mark {
            offset: 0,
            ts: 1_000
        }),
        100
    ));
    acks.push(g.tracker().stamped_chunk(100, None, true));
    assert!(g.stamped(
        Some(Mark {
            offset: 100,
            ts: 9_000
        }),
        250
    ));
    acks.push(g.tracker().stamped_chunk(250, None, true));
    (old, g, acks)
}

#[test]
fn stamps_of_lines_in_flight_survive_a_restart() {
    let (_d, path) = dir_and_path();
    let p = open(&path);
    let (_old, _g, mut acks) = stamped_path(&p);
    // The first chunk of the file at the path is acknowledged: its mark is no longer needed.
    acks.remove(1);
    p.save().unwrap();
    let sidecar = fs::read_to_string(settings(&path).sidecar_path()).unwrap();
    assert!(
        sidecar.contains("through: 250, marks: [[100, 9000]]"),
        "{sidecar}"
    );
    let again = open(&path);
    let (_, plan) = again.attach("/a.log", 0);
    assert_eq!(plan.current.map(|c| c.offset), Some(100));
    assert_eq!(plan.current_stamps.replay(100), Some(9_000));
    assert_eq!(plan.current_stamps.replay(180), Some(9_080));
    assert_eq!(plan.current_stamps.replay(250), None, "never handed on");
    let older = &plan.older[0];
    assert_eq!(older.stamps.replay(10), Some(510));
    // Promtail reads the positions file as before: the stamps live in the sidecar only.
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "positions:\n  /a.log: \"100\"\n"
    );
}

#[tokio::test]
async fn a_batch_waits_for_the_save_that_holds_its_stamps() {
    use crate::ack::stamps_saved;
    let (_d, path) = dir_and_path();
    let p = open(&path);
    let (_old, g, acks) = stamped_path(&p);
    let short = Duration::from_millis(50);
    assert!(
        !stamps_saved(&acks, short).await,
        "nothing saved yet: the batch must wait"
    );
    p.save().unwrap();
    assert!(stamps_saved(&acks, Duration::from_secs(30)).await);
    // A chunk recorded after the save waits for the next one, and is let go by it.
    assert!(g.stamped(
        Some(Mark {
            offset: 100,
            ts: 9_000
        }),
        400
    ));
    let later = vec![g.tracker().stamped_chunk(400, None, true)];
    assert!(!stamps_saved(&later, short).await);
    let wait = tokio::spawn(async move { stamps_saved(&later, Duration::from_secs(30)).await });
    // The waiter may or may not be parked yet; a save wakes it either way, and if it was not
    // parked it sees the saved end at once.
    p.save().unwrap();
    assert!(wait.await.unwrap(), "the save let the batch go");
    // Chunks that are not replayable, and positions that are never written, never wait.
    let loose = vec![g.tracker().stamped_chunk(500, None, false)];
    assert!(stamps_saved(&loose, short).await);
    let mem = Positions::in_memory();
    let (_o, _g, acks) = stamped_path(&mem);
    assert!(stamps_saved(&acks, short).await);
}

#[test]
fn a_failed_save_lets_batches_go() {
    let (_d, path) = dir_and_path();
    let p = open(&path);
    assert!(p.gate().waits());
    p.gate().saved(false);
    assert!(
        !p.gate().waits(),
        "a failing disk must not hold up shipping"
    );
    p.save().unwrap();
    assert!(p.gate().waits());
}

#[test]
fn a_removed_targets_position_stays_until_its_file_is_gone() {
    // A pod's target is removed (detach): its position stays, as Promtail keeps it, while the
    // file exists; once the kubelet removed the file, the periodic cleanup forgets it.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("0.log");
    fs::write(&log, "a line\n").unwrap();
    let key = log.to_string_lossy().into_owned();
    let p = open(&dir.path().join("positions.yaml"));
    let (state, _) = p.attach(&key, 7);
    let g = state.add(7, ID, Fingerprint::default(), 0, 7, Phase::Reading);
    let in_flight = g.tracker().chunk(7, None);
    state.detach(7);
    p.cleanup();
    assert_eq!(offset(&p, &key), Some(0), "kept while lines are in flight");
    drop(in_flight);
    p.cleanup();
    // Where it was when its target went: a target that comes back re-sends from there (with
    // the lines' first timestamps, so Loki merges them).
    assert_eq!(offset(&p, &key), Some(0), "kept while the file exists");
    fs::remove_file(&log).unwrap();
    p.cleanup();
    assert_eq!(offset(&p, &key), None, "forgotten once the file is gone");
}
