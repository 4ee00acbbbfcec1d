//! `__path__` / `__path_exclude__` globs with Promtail's doublestar v4 semantics (spec §5.1),
//! built on `globset` and `walkdir`.
//!
//! Semantics kept: `*` and `?` never match `/`; `[...]`, `[!...]`, `[^...]`, `{a,b}` and `\x`
//! work as in doublestar; `**` as a whole path segment matches zero or more directories, and
//! anywhere else it is a plain `*`; dot files are not special; matches are whole-path matches;
//! relative patterns are made absolute against the working directory; an existing regular file
//! named by the pattern is used as it is; directories are never matches. Non-regular files
//! (FIFOs, sockets, devices) are left out too: opening a FIFO would block a reader for ever.
//!
//! Walking starts at the pattern's literal directory prefix (never `/` when the pattern has
//! one) and, without `**`, stops at the pattern's depth. Symlinked directories are followed; I/O
//! errors while walking are ignored (the directory is simply not there yet).

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use walkdir::WalkDir;

/// A glob that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GlobError {
    /// The pattern does not parse.
    #[error("invalid glob {pattern:?}: {source}")]
    Invalid {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        source: globset::Error,
    },
    /// A relative pattern cannot be made absolute.
    #[error("cannot make glob {pattern:?} absolute: the working directory is unknown: {source}")]
    NoWorkingDir {
        /// The pattern as written.
        pattern: String,
        /// Why the working directory is unknown.
        source: std::io::Error,
    },
}

/// Checks that `pattern` is a usable `__path__` / `__path_exclude__` glob (for config
/// validation at start, before any file is touched).
pub fn check_glob(pattern: &str) -> Result<(), GlobError> {
    compile(pattern).map(|_| ())
}

/// A compiled include glob with its optional exclude glob.
#[derive(Clone, Debug)]
pub(crate) struct PathMatcher {
    include: GlobMatcher,
    exclude: Option<GlobMatcher>,
    /// The include pattern made absolute, as a path (the fast path checks it as a file name).
    raw: PathBuf,
    /// Literal directory prefix of the include pattern: walking starts here.
    base: PathBuf,
    /// The pattern has no metacharacters at all: it names one file.
    literal: bool,
    /// Deepest level below `base` that can match; `None` with `**`.
    max_depth: Option<usize>,
}

impl PathMatcher {
    /// Compiles `include` and `exclude`, making relative patterns absolute.
    pub(crate) fn new(include: &str, exclude: Option<&str>) -> Result<Self, GlobError> {
        let (abs, glob) = compile(include)?;
        let exclude = exclude.map(|e| compile(e).map(|(_, g)| g)).transpose()?;
        let segments: Vec<&str> = abs.split('/').collect();
        let literal_len = segments.iter().take_while(|s| !has_meta(s)).count();
        let literal = literal_len == segments.len();
        // The last segment is a file name, so a literal prefix of the whole pattern is the
        // pattern itself; otherwise the prefix is a directory.
        let base_segments = &segments[..literal_len.min(segments.len().saturating_sub(1))];
        let mut base = base_segments.join("/");
        if base.is_empty() {
            base.push('/');
        }
        let rest = segments[base_segments.len()..].join("/");
        let max_depth = if rest.contains("**") {
            None
        } else {
            // Counting every '/' (also those inside `{a,b/c}`) bounds the deepest alternative.
            Some(1 + rest.matches('/').count())
        };
        Ok(PathMatcher {
            include: glob,
            exclude,
            raw: PathBuf::from(&abs),
            base: PathBuf::from(base),
            literal,
            max_depth,
        })
    }

    /// Whether `path` (absolute) matches the include glob and not the exclude glob.
    pub(crate) fn matches(&self, path: &Path) -> bool {
        self.include.is_match(path) && !self.excluded(path)
    }

    fn excluded(&self, path: &Path) -> bool {
        self.exclude.as_ref().is_some_and(|e| e.is_match(path))
    }

    /// The directory walking starts from (watched for new files even before anything matches).
    pub(crate) fn base_dir(&self) -> &Path {
        &self.base
    }

    /// Every regular file that matches now (blocking: stats and walks directories).
    pub(crate) fn scan(&self) -> Vec<PathBuf> {
        if std::fs::metadata(&self.raw).is_ok_and(|m| m.is_file()) {
            return if self.excluded(&self.raw) {
                Vec::new()
            } else {
                vec![self.raw.clone()]
            };
        }
        if self.literal {
            return Vec::new();
        }
        let mut walk = WalkDir::new(&self.base).follow_links(true).min_depth(1);
        if let Some(depth) = self.max_depth {
            walk = walk.max_depth(depth);
        }
        walk.into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file() && self.matches(e.path()))
            .map(walkdir::DirEntry::into_path)
            .collect()
    }
}

/// Makes `pattern` absolute and clean, then compiles it.
fn compile(pattern: &str) -> Result<(String, GlobMatcher), GlobError> {
    let abs = if pattern.starts_with('/') {
        clean(pattern)
    } else {
        let cwd = std::env::current_dir().map_err(|source| GlobError::NoWorkingDir {
            pattern: pattern.to_string(),
            source,
        })?;
        let cwd = globset::escape(&cwd.to_string_lossy());
        clean(&format!("{cwd}/{pattern}"))
    };
    let glob = GlobBuilder::new(&abs)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|source| GlobError::Invalid {
            pattern: pattern.to_string(),
            source,
        })?;
    Ok((abs, glob.compile_matcher()))
}

fn has_meta(segment: &str) -> bool {
    segment.contains(['*', '?', '[', '{', '\\'])
}

/// Lexically cleans an absolute pattern like Go's `filepath.Abs` cleans its matches: empty and
/// `.` segments go, `..` removes a literal parent; a `**` that is not a whole segment becomes `*`
/// (doublestar's rule; globset would reject or reinterpret some of those forms).
fn clean(pattern: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for seg in pattern.split('/') {
        match seg {
            "" | "." => {}
            ".." if out.last().is_some_and(|p| p != ".." && !has_meta(p)) => {
                out.pop();
            }
            ".." if out.is_empty() => {} // `/..` is `/`
            "**" => out.push(seg.to_string()),
            _ => out.push(collapse_stars(seg)),
        }
    }
    format!("/{}", out.join("/"))
}

/// Collapses runs of unescaped `*` outside character classes into one `*`.
fn collapse_stars(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    let mut chars = seg.chars();
    let mut prev_star = false;
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
                prev_star = false;
                continue;
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '*' if !in_class => {
                if prev_star {
                    continue;
                }
                out.push(c);
                prev_star = true;
                continue;
            }
            _ => {}
        }
        out.push(c);
        prev_star = false;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn cleaning_and_star_runs() {
        assert_eq!(clean("/var//log/./a/../*.log"), "/var/log/*.log");
        assert_eq!(clean("/var/log/**/x/**.log"), "/var/log/**/x/*.log");
        assert_eq!(clean("/a/\\**b/[**]"), "/a/\\**b/[**]");
        assert_eq!(clean("/../a"), "/a");
    }

    #[test]
    fn base_dir_and_depth() {
        let m = PathMatcher::new("/var/log/nginx/*.log", None).unwrap();
        assert_eq!(m.base_dir(), Path::new("/var/log/nginx"));
        assert_eq!(m.max_depth, Some(1));
        let m = PathMatcher::new("/var/log/**/*.log", None).unwrap();
        assert_eq!(m.base_dir(), Path::new("/var/log"));
        assert_eq!(m.max_depth, None);
        let m = PathMatcher::new("/*/x.log", None).unwrap();
        assert_eq!(m.base_dir(), Path::new("/"));
        let m = PathMatcher::new("/var/log/syslog", None).unwrap();
        assert!(m.literal);
        assert_eq!(m.base_dir(), Path::new("/var/log"));
    }

    #[test]
    fn bad_globs_are_reported() {
        let err = check_glob("/var/log/[a.log").unwrap_err();
        assert!(err.to_string().contains("/var/log/[a.log"), "{err}");
        assert!(check_glob("/var/log/{a,b.log").is_err());
        assert!(check_glob("/var/log/*.log").is_ok());
    }

    #[test]
    fn pattern_matching_table() {
        // (pattern, path, expected)
        let table = [
            ("/l/*.log", "/l/a.log", true),
            ("/l/*.log", "/l/.hidden.log", true),
            ("/l/*.log", "/l/x/a.log", false),
            ("/l/*", "/l/x/a.log", false),
            ("/l/?.log", "/l/a.log", true),
            ("/l/?.log", "/l/ab.log", false),
            ("/l?a.log", "/l/a.log", false),
            ("/l/[ab].log", "/l/b.log", true),
            ("/l/[!ab].log", "/l/b.log", false),
            ("/l/[^ab].log", "/l/c.log", true),
            ("/l/[a-c].log", "/l/c.log", true),
            ("/l/{app,db}.log", "/l/db.log", true),
            ("/l/{app,db}.log", "/l/web.log", false),
            ("/l/{a*,b?}.log", "/l/b1.log", true),
            ("/l/**/*.log", "/l/a.log", true),
            ("/l/**/*.log", "/l/x/y/a.log", true),
            ("/l/**/*.log", "/m/a.log", false),
            ("/l/**", "/l/x/y", true),
            ("/l/x**.log", "/l/xa.log", true),
            ("/l/x**.log", "/l/x/a.log", false),
            ("/l/\\*.log", "/l/*.log", true),
            ("/l/\\*.log", "/l/a.log", false),
            ("/l/a.log", "/l/a.log", true),
            ("/l/a.log", "/l/a.log.1", false),
        ];
        for (pattern, path, want) in table {
            let m = PathMatcher::new(pattern, None).unwrap();
            assert_eq!(m.matches(Path::new(path)), want, "{pattern} vs {path}");
        }
        let m = PathMatcher::new("/l/*.log*", Some("/l/*.gz")).unwrap();
        assert!(m.matches(Path::new("/l/a.log.1")));
        assert!(!m.matches(Path::new("/l/a.log.gz")));
    }

    #[test]
    fn relative_patterns_are_absolute() {
        let cwd = std::env::current_dir().unwrap();
        let m = PathMatcher::new("./logs/*.log", Some("logs/skip*")).unwrap();
        assert!(m.matches(&cwd.join("logs/a.log")));
        assert!(!m.matches(&cwd.join("logs/skip.log")));
        assert_eq!(m.base_dir(), cwd.join("logs"));
    }

    fn touch(root: &Path, rel: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x\n").unwrap();
    }

    fn scan(root: &Path, include: &str, exclude: Option<&str>) -> Vec<String> {
        let esc = globset::escape(&root.to_string_lossy());
        let inc = format!("{esc}/{include}");
        let exc = exclude.map(|e| format!("{esc}/{e}"));
        let m = PathMatcher::new(&inc, exc.as_deref()).unwrap();
        let mut got: Vec<String> = m
            .scan()
            .into_iter()
            .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
            .collect();
        got.sort();
        got
    }

    #[test]
    fn scanning_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "a.log",
            ".hidden.log",
            "b.txt",
            "skip1.log",
            "app.log.1",
            "x/c.log",
            "x/y/d.log",
            "dir.log/inner.log",
        ] {
            touch(root, f);
        }
        assert_eq!(
            scan(root, "*.log", None),
            vec![".hidden.log", "a.log", "skip1.log"],
            "directories (dir.log) are skipped, dot files match"
        );
        assert_eq!(
            scan(root, "*.log", Some("skip*.log")),
            vec![".hidden.log", "a.log"]
        );
        assert_eq!(
            scan(root, "**/*.log", None),
            vec![
                ".hidden.log",
                "a.log",
                "dir.log/inner.log",
                "skip1.log",
                "x/c.log",
                "x/y/d.log"
            ]
        );
        assert_eq!(scan(root, "x/**/*.log", None), vec!["x/c.log", "x/y/d.log"]);
        assert_eq!(scan(root, "{a.log,b.txt}", None), vec!["a.log", "b.txt"]);
        assert_eq!(
            scan(root, "*/*.log", None),
            vec!["dir.log/inner.log", "x/c.log"]
        );
        assert_eq!(scan(root, "a.log", None), vec!["a.log"]);
        assert_eq!(scan(root, "a.log", Some("a.*")), Vec::<String>::new());
        assert_eq!(scan(root, "missing/*.log", None), Vec::<String>::new());
        assert_eq!(scan(root, "dir.log", None), Vec::<String>::new());
    }

    #[test]
    fn existing_file_with_glob_characters_is_used_directly() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "app[1].log");
        let path = dir.path().join("app[1].log");
        let m = PathMatcher::new(&path.to_string_lossy(), None).unwrap();
        assert_eq!(m.scan(), vec![path]);
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_directories_are_followed_and_paths_kept() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "real/a.log");
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        assert_eq!(scan(dir.path(), "link/*.log", None), vec!["link/a.log"]);
    }
}
