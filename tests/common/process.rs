//! Runs the real `ferrotail` binary for integration tests: config files in a temp dir, start,
//! graceful stop (SIGTERM), `kill -9`, and bounded waits.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::config::ConfigFile;

/// A running ferrotail process.
pub struct Ferrotail {
    child: Option<Child>,
    pub stderr_path: PathBuf,
}

impl Ferrotail {
    /// Starts `ferrotail -config.file=<config> <extra...>`, stderr to a file in `dir`.
    pub fn start(dir: &Path, config: &Path, extra: &[&str]) -> Ferrotail {
        Self::start_with_env(dir, config, extra, &[])
    }

    /// [`Ferrotail::start`] with environment variables set for the process.
    pub fn start_with_env(
        dir: &Path,
        config: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Ferrotail {
        let stderr_path = dir.join(format!(
            "ferrotail-{}.stderr",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ferrotail"))
            .arg(format!("-config.file={}", config.display()))
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting ferrotail");
        Ferrotail {
            child: Some(child),
            stderr_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The HTTP server's address, from its "Server listening." log line (bounded wait).
    pub fn http_addr(&self) -> String {
        self.logged_address(
            Duration::from_secs(30),
            "the server's listening log line",
            "msg=\"Server listening.\"",
            None,
        )
    }

    /// Where a listener bound its port 0: the `address=` field of the first log line that
    /// contains `msg` (and has the field `job=<job>` when `job` is given), quotes trimmed.
    /// Waits at most `limit`; the failure names `what` and shows the log.
    pub fn logged_address(
        &self,
        limit: Duration,
        what: &str,
        msg: &str,
        job: Option<&str>,
    ) -> String {
        let job = job.map(|j| format!("job={j}"));
        let mut addr = String::new();
        self.wait_until(limit, what, || {
            addr = self
                .stderr()
                .lines()
                .filter(|l| l.contains(msg))
                .filter(|l| {
                    job.as_ref()
                        .is_none_or(|j| l.split_whitespace().any(|f| f == j))
                })
                .find_map(|l| l.split(" address=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .map(|a| a.trim_matches('"').to_owned())
                .unwrap_or_default();
            !addr.is_empty()
        });
        addr
    }

    /// GET `path` on the HTTP server; returns the whole response (status line, headers, body).
    pub fn http_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.http_addr()).expect("connecting");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(sig)
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {sig} failed");
    }

    /// Like [`wait_until`], with this process's log in the failure message.
    pub fn wait_until(&self, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}; ferrotail's log:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM without waiting: the shutdown runs while the test watches it; `stop` then
    /// waits for the exit (a second SIGTERM changes nothing).
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.signal("-TERM");
        let status = wait_exit(self.child.as_mut().unwrap(), Duration::from_secs(60));
        self.child = None;
        status
    }

    /// SIGKILL: no flush, no final positions write.
    pub fn kill9(mut self) {
        self.signal("-KILL");
        wait_exit(self.child.as_mut().unwrap(), Duration::from_secs(30));
        self.child = None;
    }
}

impl Drop for Ferrotail {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "ferrotail did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs ferrotail to completion with the given arguments (for exit-code tests).
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrotail"))
        .args(args)
        .output()
        .expect("running ferrotail")
}

/// Polls `cond` every 20 ms until it returns true, panicking with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Appends lines (each terminated by `\n`) to a file, creating it if needed.
pub fn append(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = Vec::new();
    for l in lines {
        buf.extend_from_slice(l.as_bytes());
        buf.push(b'\n');
    }
    f.write_all(&buf).unwrap();
    f.sync_all().unwrap();
}

/// A minimal config: one client, one static job tailing `glob` with the pipeline `stages`
/// (YAML list items, 6-space indent), positions in `dir`; `extra` holds more top-level sections.
pub fn config(dir: &Path, loki_url: &str, glob: &str, stages: &str, extra: &str) -> PathBuf {
    ConfigFile::new(dir, loki_url)
        .positions_sync("100ms")
        .backoff("20ms", "200ms")
        .target_sync("200ms")
        .top(extra)
        .scrape(&format!(
            r#"  - job_name: test
    static_configs:
      - targets: [localhost]
        labels:
          job: test
          __path__: {glob}
    pipeline_stages:
{stages}
"#
        ))
        .write()
}

/// The committed offset of `file` in `dir/positions.yaml` (a string or a number), if any.
pub fn positions_offset(dir: &Path, file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("positions.yaml")).ok()?;
    let v: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    match v.get("positions")?.get(file.to_str()?)? {
        serde_yaml::Value::String(s) => s.parse().ok(),
        serde_yaml::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Runs ferrotail with `args` and waits at most `limit` for it to exit (killing it and failing
/// the test otherwise); for configs expected to be refused.
pub fn run_bounded(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrotail"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running ferrotail");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collecting output");
            panic!(
                "ferrotail {args:?} still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collecting output")
}

/// The value of the first `/metrics` sample whose line starts with `name` and contains every
/// one of `labels` (e.g. `reason="ingester_error"`); `None` if there is none.
pub fn metric(ft: &Ferrotail, name: &str, labels: &[&str]) -> Option<f64> {
    let text = ft.http_get("/metrics");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Peak and current resident set size of a process, in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}
