//! End-to-end benchmark: writes a backlog of JSON log lines, ships it with the real `ferrotail`
//! binary (json + labels pipeline) to a local receiver that only decodes and counts, and prints
//! lines/s, MB/s, CPU seconds per million lines and peak RSS of the ferrotail process.
//!
//! ```text
//! cargo bench --bench e2e                                   # 1,000,000 lines of ~250 bytes
//! FERROTAIL_BENCH_LINES=4200000 cargo bench --bench e2e     # ~1 GB backlog
//! LOKI_URL=http://127.0.0.1:3100 cargo bench --bench e2e    # into a real Loki
//! FERROTAIL_BENCH_INFLIGHT=64MB cargo bench --bench e2e     # another in-flight budget
//! ```
//!
//! With `LOKI_URL`, ferrotail pushes to that Loki (no auth) under a job label of its own, and
//! the run ends when Loki's `count_over_time` for that label reaches the backlog: the figure
//! then includes Loki's ingestion, as a user sees it. `FERROTAIL_BENCH_INFLIGHT` sets
//! `ferrotail.inflight_bytes` (default: ferrotail's own default). `FERROTAIL_BENCH_BINARY` runs
//! another shipper that reads the same config instead (Promtail: the figures compare like for
//! like; leave `FERROTAIL_BENCH_INFLIGHT` unset, Promtail refuses the `ferrotail` block).
//!
//! CPU time and peak RSS come from /proc/<pid>/stat and /proc/<pid>/status (VmHWM) of the
//! ferrotail process, read just before it is asked to stop, so the receiver's own work (snappy
//! and protobuf decoding) is not counted. Linux only.

use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

fn write_backlog(path: &Path, lines: u64) -> std::io::Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let levels = ["info", "debug", "warn", "error"];
    let mut bytes = 0u64;
    for i in 0..lines {
        let line = format!(
            concat!(
                r#"{{"time":"2026-11-20T09:{:02}:{:02}.{:09}Z","level":"{}","msg":"request completed","#,
                r#""method":"GET","path":"/api/v1/orders/{}","status":200,"duration_ms":{},"#,
                r#""user":"user-{}","trace_id":"{:016x}{:016x}"}}"#
            ),
            (i / 60) % 60,
            i % 60,
            i % 1_000_000_000,
            levels[(i % 4) as usize],
            i % 10_000,
            i % 997,
            i % 5_000,
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            i
        );
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")?;
        bytes += line.len() as u64 + 1;
    }
    w.flush()?;
    Ok(bytes)
}

#[derive(Clone)]
struct Counter(Arc<AtomicU64>);

async fn push(State(c): State<Counter>, body: Bytes) -> StatusCode {
    match ferrotail::client::decode_push(&body) {
        Ok(req) => {
            let n: usize = req.streams.iter().map(|s| s.entries.len()).sum();
            c.0.fetch_add(n as u64, Ordering::Relaxed);
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn proc_stats(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" of the command name: state is field 3; utime/stime are 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm_kb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()?;
    let clk_tck = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    Some((ticks / clk_tck, hwm_kb * 1024))
}

/// How many entries of `job` Loki holds (LogQL `count_over_time` over the last hour).
async fn loki_count(url: &str, job: &str) -> u64 {
    let query = format!("sum(count_over_time({{job=\"{job}\"}}[1h]))");
    let res = reqwest::Client::new()
        .get(format!("{url}/loki/api/v1/query"))
        .query(&[("query", query.as_str())])
        .send()
        .await;
    let Ok(res) = res else { return 0 };
    let Ok(body) = res.bytes().await else {
        return 0;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return 0;
    };
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|n| n.parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

fn main() {
    // `cargo test --benches` runs bench targets once as tests; this one is too slow for that.
    if std::env::args().any(|a| a == "--test") || std::env::args().all(|a| a != "--bench") {
        println!("e2e: skipped (run with `cargo bench --bench e2e`)");
        return;
    }
    let lines: u64 = std::env::var("FERROTAIL_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("app.log");
    let bytes = write_backlog(&log, lines).expect("writing the backlog");
    println!("backlog: {lines} lines, {:.1} MB", bytes as f64 / 1e6);

    let loki = std::env::var("LOKI_URL")
        .ok()
        .map(|u| u.trim_end_matches('/').to_owned());
    let job = format!(
        "bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    );
    let counter = Counter(Arc::new(AtomicU64::new(0)));
    let push_url = match &loki {
        Some(url) => format!("{url}/loki/api/v1/push"),
        None => {
            let app = Router::new()
                .route("/loki/api/v1/push", post(push))
                .with_state(counter.clone());
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind receiver");
            let addr: SocketAddr = listener.local_addr().expect("receiver address");
            rt.spawn(async move { axum::serve(listener, app).await });
            format!("http://{addr}/loki/api/v1/push")
        }
    };
    let delivered = || match &loki {
        Some(url) => rt.block_on(loki_count(url, &job)),
        None => counter.0.load(Ordering::Relaxed),
    };
    let inflight = std::env::var("FERROTAIL_BENCH_INFLIGHT")
        .map(|v| format!("ferrotail: {{inflight_bytes: {v}}}\n"))
        .unwrap_or_default();
    println!(
        "receiver: {}; in-flight budget: {}",
        loki.as_deref().unwrap_or("built-in counting receiver"),
        std::env::var("FERROTAIL_BENCH_INFLIGHT").unwrap_or_else(|_| "default".into())
    );

    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server: {{http_listen_port: 0, grpc_listen_port: 0, log_level: warn}}
positions: {{filename: {pos}}}
clients:
  - url: {push_url}
scrape_configs:
  - job_name: bench
    static_configs:
      - labels: {{job: {job}, __path__: {log}}}
    pipeline_stages:
      - json:
          expressions: {{level: level, status: status}}
      - labels:
          level:
{inflight}"#,
            pos = dir.path().join("positions.yaml").display(),
            log = log.display(),
        ),
    )
    .expect("writing the config");

    // Another shipper that reads the same config (Promtail) can be measured the same way.
    let binary = std::env::var("FERROTAIL_BENCH_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferrotail").into());
    println!("shipper: {binary}");
    let start = Instant::now();
    let mut child = Command::new(&binary)
        .arg(format!("-config.file={}", config.display()))
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
    let pid = child.id();
    let mut peak = (0.0, 0);
    let deadline = Instant::now() + Duration::from_secs(600);
    let poll = if loki.is_some() { 200 } else { 20 };
    while delivered() < lines {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ferrotail exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "not all lines arrived within 600 s"
        );
        if let Some(s) = proc_stats(pid) {
            peak = s;
        }
        std::thread::sleep(Duration::from_millis(poll));
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(s) = proc_stats(pid) {
        peak = s;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = child.wait();

    let (cpu, rss) = peak;
    println!("delivered: {} entries in {elapsed:.2} s", delivered());
    println!("lines/s:   {:.0}", lines as f64 / elapsed);
    println!("MB/s:      {:.1}", bytes as f64 / 1e6 / elapsed);
    println!("CPU s per million lines: {:.2}", cpu / (lines as f64 / 1e6));
    println!("peak RSS:  {:.1} MB", rss as f64 / 1e6);
}
