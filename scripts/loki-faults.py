#!/usr/bin/env python3
"""Fault scenarios against a real Loki, counted in Loki.

The fault suite (tests/faults.rs) runs against a mock Loki that keeps entries by Loki's rule.
This script runs the same kinds of scenario with the release binary against a real Loki 3.x and
counts what Loki holds afterwards: every written line carries what makes it countable (a
sequence number, or for the repeated-lines scenarios nothing at all, counted as a multiset),
and all of a run's entries are fetched back with `query_range` (paged) and compared with what
was written: lost = written but not in Loki, duplicated = in Loki more often than written.

Usage:
  scripts/loki-faults.py [options] SCENARIO...      (or `all`)

Scenarios:
  repeated                       5,000 lines cycling through 5 messages, one file
  repeated-two-files             the same in two files, one stream (labeldrop filename)
  rotate-while-down              Loki unreachable; 2,000 JSON lines; mv app.log app.log.1; 2,000
                                 more in a new app.log; kill -9; restart with Loki reachable
  rotate-while-down-copytruncate the same with cp + truncate
  rotate-while-down-compress     the same, app.log.1 gzipped before the restart (its lines are
                                 lost; ferrotail_rotation_lost_bytes_total must count them)
  rename-under-load              --lines per file at --rate lines/s, renamed to .1 every
                                 --rotate-every lines, the previous .1 deleted; --files at once
  copytruncate-under-load        the same with copytruncate
  sd-churn                       --files files (default 3) of --lines lines each at --rate, each
                                 the target of its own file_sd file; while they are written, one
                                 SD file after another is removed for 0.5 s and put back
  docker-kill9                   docker_sd_configs: a container (served by a fake Docker engine on
                                 a Unix socket, as the engine API answers) with a log of --lines
                                 JSON lines (default 200,000), 5,000 a second; SIGKILL at a random
                                 point between 20 % and 80 % (--kills times); restart resumes
                                 from the saved cursor-<container id> (Unix seconds)
  docker-down-kill9              the same log read while Loki is unreachable for 10 s, then
                                 SIGKILL and a restart with Loki reachable
  journal-kill9                  a journal of --lines entries (default 200,000; real journal files
                                 written by systemd-journal-remote, JSON messages), a `journal`
                                 job, SIGKILL at a random point between 20 % and 80 % (--kills
                                 times), restart from the saved cursor-<job>
  kill9                          a backlog of --lines JSON lines, sync_period 1s, SIGKILL at a
                                 random point between 20 % and 80 % of it (--kills times);
                                 `sent_again` is what the restart pushed that Loki held at the
                                 kill (an estimate: a push still in flight at the kill counts
                                 as not held), `duplicated` what Loki kept twice
  syslog-tcp-down                a `syslog` job (TCP, octet counting, RFC 5424, read-time
                                 timestamps); one connection sends --lines JSON messages (default
                                 50,000) as fast as the socket takes them while the shipper's Loki
                                 (a proxy in front of it) resets every connection for 10 s; TCP
                                 holds the sender back (`send_s`: how long its sends took; the
                                 kernel's socket buffers (tcp_rmem, up to 32 MiB on many hosts)
                                 take a lot before the sender blocks; `read_while_down`: the
                                 messages the shipper had read when the outage ended)
  syslog-udp                     the same over UDP, one message a datagram, at --rate (default
                                 5,000/s), Loki reachable; `udp_rcvbuf_errors` is the kernel's
                                 count of datagrams dropped for a full socket buffer meanwhile
                                 (RcvbufErrors in /proc/net/snmp, every socket of the host)
  push-kill9                     a `loki_push_api` job (use_incoming_timestamp, for ferrotail
                                 ack_after_delivery; Promtail refuses the key and answers on
                                 receipt); a pusher sends --lines entries (default 200,000) in
                                 JSON batches of 500, 16 at a time, each sent again every 0.2 s
                                 until answered 204; SIGKILL at a random point between 20 % and
                                 80 % (--kills times), restart on the same port; `sent_again` as
                                 in kill9 (Loki merges an entry pushed again, same timestamp and
                                 line, so it is not `duplicated`)
  push-down                      the same pusher, no kill, the shipper's Loki (the proxy)
                                 resetting every connection for the first 10 s
  gelf-udp                       a `gelf` job; --lines GELF messages (default 50,000) over UDP at
                                 --rate (default 5,000/s), every 5th gzipped, every 7th in 2 or 3
                                 chunks; the line is the message as go-gelf writes it back;
                                 `udp_rcvbuf_errors` as in syslog-udp
  heroku-down                    a `heroku_drain` job; --lines logplex messages (default 50,000)
                                 POSTed in batches of 100, each sent again every 0.2 s until
                                 answered 2xx, the shipper's Loki (the proxy) resetting every
                                 connection for the first 10 s

Options:
  --binary PATH     ferrotail binary (default target/release/ferrotail)
  --promtail        also run the scenario through Promtail (PROMTAIL, default
                    $LOKI_HOME/bin/promtail) and print its figures beside ferrotail's
  --runs N          repeat each scenario N times (default 1)
  --files K         files rotating at once in the *-under-load scenarios (default 1)
  --lines N         lines per file (under-load: 300,000; kill9, push-*: 200,000; syslog-*,
                    gelf-udp, heroku-down: 50,000)
  --rate N          lines/s per file in the under-load scenarios (default 20,000); messages/s
                    in syslog-udp and gelf-udp (default 5,000)
  --rotate-every N  lines between rotations (default 20,000)
  --kills N         kill9, *-kill9: kills, each a fresh run (default 1)
  --seed S          random seed (default 20261204)
  --json            print one JSON object per run too

Env:
  LOKI_URL   a running Loki to use (e.g. http://127.0.0.1:3100); without it the script starts
             its own from $LOKI_HOME/bin/loki (default $HOME/loki-3.4.6) on a free port with
             its own data dir, and stops it at the end.

Each run prints `scenario [shipper] run i: written W, in Loki K, lost L, duplicated D (x %)`.
A failed run's directory is kept, with tally.txt: its first 50 lost and unexpected lines.
Exit code: 0 when ferrotail lost nothing (except the compress scenario, where the loss must
equal what ferrotail counted, and the UDP scenarios syslog-udp and gelf-udp, where UDP may drop:
their loss is reported, not failed), 1 otherwise, 2 when it cannot run.
"""
import argparse, collections, gzip, json, os, random, shutil, signal, socket, subprocess, sys
import tempfile, threading, time, urllib.parse, urllib.request
import http.client, http.server, socketserver, struct

MESSAGES = ["connection reset by peer", "retrying request", "GET /health 200",
            "cache miss for key user:42", "request completed"]
HOME = os.environ.get("LOKI_HOME", os.path.join(os.path.expanduser("~"), "loki-3.4.6"))
WAIT = 180  # seconds a run may take to reach Loki after the last line is written

LOKI_CONFIG = """auth_enabled: false
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {port}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {grpc}
  log_level: warn
  grpc_server_max_recv_msg_size: 268435456
  grpc_server_max_send_msg_size: 268435456
common:
  instance_addr: 127.0.0.1
  path_prefix: {data}
  storage:
    filesystem:
      chunks_directory: {data}/chunks
      rules_directory: {data}/rules
  replication_factor: 1
  ring:
    kvstore:
      store: inmemory
ingester:
  lifecycler:
    join_after: 0s
    min_ready_duration: 0s
    final_sleep: 0s
schema_config:
  configs:
    - from: 2020-10-24
      store: tsdb
      object_store: filesystem
      schema: v13
      index:
        prefix: index_
        period: 24h
limits_config:
  ingestion_rate_mb: 1024
  ingestion_burst_size_mb: 1024
  per_stream_rate_limit: 1GB
  per_stream_rate_limit_burst: 1GB
  max_global_streams_per_user: 0
  reject_old_samples: false
  creation_grace_period: 24h
  max_entries_limit_per_query: 100000
  max_query_length: 0
  max_query_series: 100000
  query_timeout: 5m
  unordered_writes: true
  discover_service_name: []
  discover_log_levels: false
  shard_streams:
    enabled: false
query_range:
  cache_results: false
analytics:
  reporting_enabled: false
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def ready(url):
    try:
        with urllib.request.urlopen(url + "/ready", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def wait_for(what, cond, limit, step=0.1):
    deadline = time.time() + limit
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise SystemExit("loki-faults: timed out after %ds waiting for %s" % (limit, what))
        time.sleep(step)


class Loki:
    """A Loki of our own (or the one at LOKI_URL)."""

    def __init__(self, tmp):
        self.url = os.environ.get("LOKI_URL", "").rstrip("/")
        self.proc = None
        if self.url:
            if not ready(self.url):
                raise SystemExit("loki-faults: LOKI_URL %s is not ready" % self.url)
            return
        binary = os.path.join(HOME, "bin", "loki")
        if not os.access(binary, os.X_OK):
            print("loki-faults: no Loki at %s (build it with build-loki.sh, or set LOKI_URL)" % binary)
            sys.exit(2)
        port = free_port()
        self.url = "http://127.0.0.1:%d" % port
        data = os.path.join(tmp, "loki-data")
        os.makedirs(data)
        cfg = os.path.join(tmp, "loki.yaml")
        with open(cfg, "w") as f:
            f.write(LOKI_CONFIG.format(port=port, grpc=free_port(), data=data))
        self.log = open(os.path.join(tmp, "loki.log"), "w")
        self.proc = subprocess.Popen([binary, "-config.file=" + cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for("Loki to be ready", lambda: self.proc.poll() is None and ready(self.url), 120, 0.5)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def count(self, job):
        now = time.time_ns()
        q = 'sum(count_over_time({job="%s"}[6h]))' % job
        u = self.url + "/loki/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": str(now)})
        res = json.loads(get(u))["data"]["result"]
        return int(float(res[0]["value"][1])) if res else 0

    def entries(self, job):
        """Every entry of `job` in the last 6 h: a list of lines (one per entry Loki holds)."""
        end = time.time_ns() + 60 * 10**9
        start = end - 6 * 3600 * 10**9
        seen = set()
        lines = []
        while True:
            u = self.url + "/loki/api/v1/query_range?" + urllib.parse.urlencode({
                "query": '{job="%s"}' % job, "start": str(start), "end": str(end),
                "limit": "5000", "direction": "forward"})
            result = json.loads(get(u, 120))["data"]["result"]
            page = []
            for stream in result:
                key = json.dumps(stream["stream"], sort_keys=True)
                for v in stream["values"]:
                    page.append((int(v[0]), key, v[1]))
            new = [e for e in page if e not in seen]
            if not new:
                return lines
            for e in new:
                seen.add(e)
                lines.append(e[2])
            # the next page starts at the last timestamp (inclusive; seen entries are skipped)
            start = max(e[0] for e in page)
            if len(page) < 5000:
                return lines


class Shipper:
    """ferrotail or Promtail running one config."""

    def __init__(self, binary, config, log, port):
        self.port = port
        self.log = open(log, "a")
        self.proc = subprocess.Popen([binary, "-config.file=" + config], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def metrics(self):
        try:
            text = get("http://127.0.0.1:%d/metrics" % self.port, 5)
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def metric(self, name, label=""):
        return sum(v for k, v in self.metrics().items()
                   if (k == name or k.startswith(name + "{")) and label in k)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def config(path, d, job, url, glob, sync="10s", stages="", sd=None, targets=None, job_name=None):
    port = free_port()
    custom = targets
    targets = """    static_configs:
      - targets: [localhost]
        labels:
          job: %s
          __path__: %s
""" % (job, glob)
    if sd:
        targets = """    file_sd_configs:
      - files: [%s]
        refresh_interval: 1h
""" % sd
    if custom:
        targets = custom
    with open(path, "w") as f:
        f.write("""server:
  http_listen_address: 127.0.0.1
  http_listen_port: %d
  grpc_listen_port: 0
  log_level: info
positions:
  filename: %s/positions.yaml
  sync_period: %s
clients:
  - url: %s/loki/api/v1/push
scrape_configs:
  - job_name: %s
%s%s""" % (port, d, sync, url, job_name or job, stages, targets))
    return port


def dead_url():
    return "http://127.0.0.1:%d" % free_port()


def write(path, lines, mode="a"):
    with open(path, mode) as f:
        f.write("".join(l + "\n" for l in lines))


def json_lines(job, gen, n, start=0):
    return ['{"ts":"2026-12-04T05:%02d:%02d.%06dZ","level":"info","msg":"%s","job":"%s","gen":%d,"seq":%d}'
            % (gen % 60, (start + i) // 1000 % 60, (start + i) % 1000 * 997, MESSAGES[(start + i) % 5],
               job, gen, start + i) for i in range(n)]


def tally(written, stored):
    w, s = collections.Counter(written), collections.Counter(stored)
    lost = sum(max(0, n - s.get(l, 0)) for l, n in w.items())
    dup = sum(max(0, n - w.get(l, 0)) for l, n in s.items() if l in w)
    unexpected = sum(n for l, n in s.items() if l not in w)
    return {"written": len(written), "in_loki": len(stored), "lost": lost, "duplicated": dup,
            "unexpected": unexpected}


def sample(d, written, stored):
    """Writes up to 50 lost and 50 unexpected lines to d/tally.txt."""
    w, s = collections.Counter(written), collections.Counter(stored)
    with open(os.path.join(d, "tally.txt"), "w") as f:
        f.write("lost (first 50):\n")
        f.write("".join(l + "\n" for l in [l for l in w if s.get(l, 0) < w[l]][:50]))
        f.write("unexpected (first 50):\n")
        f.write("".join(l + "\n" for l in [l for l in s if l not in w][:50]))


def settle(loki, job, want, shipper, limit=WAIT):
    """Waits until Loki holds `want` entries of `job`, or the count stops moving for 20 s."""
    deadline, last, since = time.time() + limit, -1, time.time()
    while time.time() < deadline:
        n = loki.count(job)
        if n >= want:
            # a little longer: duplicates may still be on their way
            time.sleep(2)
            return
        if n != last:
            last, since = n, time.time()
        elif time.time() - since > 20 and shipper.proc.poll() is None:
            return
        time.sleep(0.5)


class Run:
    def __init__(self, args, loki, tmp, scenario, shipper, i):
        self.args, self.loki, self.shipper_name, self.i = args, loki, shipper, i
        self.job = "lf-%s-%s-%d-%d" % (scenario, shipper, i, random.randrange(10**6))
        self.dir = tempfile.mkdtemp(prefix=self.job + ".", dir=tmp)
        self.binary = args.binary if shipper == "ferrotail" else args.promtail_binary
        self.log = os.path.join(self.dir, "shipper.out")  # not matched by *.log
        self.extra = {}

    def start(self, url=None, glob=None, sync="10s", stages="", name="config.yaml", sd=None,
              targets=None, job_name=None):
        cfg = os.path.join(self.dir, name)
        port = config(cfg, self.dir, self.job, url or self.loki.url,
                      glob or os.path.join(self.dir, "*.log"), sync, stages, sd, targets, job_name)
        s = Shipper(self.binary, cfg, self.log, port)
        wait_for("the shipper's /metrics", lambda: s.proc.poll() is not None or s.metrics(), 30)
        if s.proc.poll() is not None:
            raise SystemExit("loki-faults: %s exited at start; its log:\n%s" % (self.binary, open(self.log).read()))
        return s


def repeated(run, two_files=False):
    lines = [MESSAGES[i % 5] for i in range(5000)]
    if two_files:
        write(os.path.join(run.dir, "a.log"), lines[:2500])
        write(os.path.join(run.dir, "b.log"), lines[2500:])
        s = run.start(stages="    pipeline_stages:\n      - labeldrop: [filename]\n")
    else:
        write(os.path.join(run.dir, "app.log"), lines)
        s = run.start()
    settle(run.loki, run.job, len(lines), s)
    s.stop()
    return lines


def rotate_while_down(run, how):
    log, rotated = os.path.join(run.dir, "app.log"), os.path.join(run.dir, "app.log.1")
    first, second = json_lines(run.job, 1, 2000), json_lines(run.job, 2, 2000)
    write(log, first)
    s = run.start(url=dead_url(), name="down.yaml")
    size = os.path.getsize(log)
    wait_for("the first generation read",
             lambda: s.metric("promtail_read_bytes_total", 'path="%s"' % log) >= size, 60)
    time.sleep(1)  # what a shipper writes down of it, it has by now
    if how == "copytruncate":
        shutil.copy(log, rotated)
        os.truncate(log, 0)
    else:
        os.rename(log, rotated)
    write(log, second)
    size2 = os.path.getsize(log)
    wait_for("the second generation read",
             lambda: s.metric("promtail_read_bytes_total", 'path="%s"' % log) >= size2
             and (run.shipper_name != "ferrotail"
                  or s.metric("ferrotail_inflight_bytes") >= size + size2), 60)
    time.sleep(1)
    if how == "compress":
        subprocess.run(["gzip", rotated], check=True)
    s.kill9()
    s = run.start()
    settle(run.loki, run.job, 4000, s, 90)
    if how == "compress":
        lost = s.metric("ferrotail_rotation_lost_bytes_total")
        run.extra["counted_lost_bytes"] = int(lost)
        run.extra["compressed_generation_bytes"] = size
    s.stop()
    return first + second


def writer(path, n, rate, rotate_every, how, rng, out):
    """One service writing `n` lines at `rate`/s, rotated every `rotate_every` lines."""
    f = open(path, "a")
    name = os.path.basename(path)
    burst = max(1, rate // 100)
    t0, written = time.time(), 0
    while written < n:
        k = min(burst, n - written)
        lines = ['level=warn file=%s seq=%07d msg="%s"' % (name, written + j, MESSAGES[(written + j) % 5])
                 for j in range(k)]
        f.write("".join(l + "\n" for l in lines))
        f.flush()
        out.extend(lines)
        before = written
        written += k
        if written // rotate_every != before // rotate_every and written < n:
            rotated = path + ".1"
            if how == "rename":
                try:
                    os.remove(rotated)
                except FileNotFoundError:
                    pass
                os.rename(path, rotated)
                # the service writes a few more lines before it reopens its file
                late = ['level=info file=%s seq=%07d msg="late write"' % (name, written + j)
                        for j in range(rng.randrange(0, 20))]
                f.write("".join(l + "\n" for l in late))
                f.flush()
                out.extend(late)
                written += len(late)
                f.close()
                time.sleep(rng.random() * 0.004)
                f = open(path, "a")
            else:
                shutil.copy(path, rotated)
                os.truncate(path, 0)
        ahead = written / rate - (time.time() - t0)
        if ahead > 0:
            time.sleep(ahead)
    f.close()


def under_load(run, how):
    a = run.args
    s = run.start()
    rng = random.Random(a.seed + run.i)
    outs, threads = [], []
    for k in range(a.files):
        path = os.path.join(run.dir, "app-%d.log" % k)
        open(path, "a").close()
        out = []
        outs.append(out)
        threads.append(threading.Thread(target=writer, args=(
            path, a.lines, a.rate, a.rotate_every, how, random.Random(rng.random()), out)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    written = [l for o in outs for l in o]
    settle(run.loki, run.job, len(written), s)
    s.stop()
    return written


def kill9(run):
    a = run.args
    log = os.path.join(run.dir, "app.log")
    lines = json_lines(run.job, 0, a.lines)
    write(log, lines)
    rng = random.Random(a.seed + run.i)
    at = int(len(lines) * rng.uniform(0.2, 0.8))
    s = run.start(sync="1s")
    wait_for("%d lines in Loki" % at, lambda: run.loki.count(run.job) >= at, WAIT, 0.05)
    s.kill9()
    run.extra["killed_at"] = run.loki.count(run.job)
    s = run.start(sync="1s")
    settle(run.loki, run.job, len(lines), s)
    # What the restarted shipper pushed that Loki already held: pushed again, whether Loki
    # then kept it twice (duplicated) or merged it (same timestamp and line).
    sent = int(s.metric("promtail_sent_entries_total"))
    s.stop()
    run.extra["sent_again"] = max(0, sent - (len(lines) - run.extra["killed_at"]))
    return lines


def sd_churn(run):
    """--files files (3 unless set) written at --rate lines/s each, each the target of its own
    file_sd file; while they are written, one SD file after another is removed for 0.5 s and
    put back (its target stops, keeps its position, and resumes). Every line must arrive
    exactly once."""
    a = run.args
    files = 3 if a.files == 1 else a.files
    n = a.lines
    sd_dir = os.path.join(run.dir, "targets")
    os.makedirs(sd_dir)
    logs = [os.path.join(run.dir, "app-%d.log" % f) for f in range(files)]

    def sd_file(f):
        return os.path.join(sd_dir, "app-%d.yaml" % f)

    def put(f):
        tmp = sd_file(f) + ".tmp"
        with open(tmp, "w") as out:
            out.write("- targets: [localhost]\n  labels: {job: %s, __path__: '%s'}\n" % (run.job, logs[f]))
        os.rename(tmp, sd_file(f))

    for f in range(files):
        open(logs[f], "w").close()
        put(f)
    s = run.start(sd=os.path.join(sd_dir, "*.yaml"))
    wait_for("every file tailed", lambda: s.metric("promtail_files_active_total") >= files, 30)
    written = [[] for _ in range(files)]

    def writer(f):
        lines = json_lines(run.job, f, n)
        step = max(1, a.rate // 100)
        for i in range(0, n, step):
            write(logs[f], lines[i:i + step])
            written[f].extend(lines[i:i + step])
            time.sleep(0.01)

    threads = [threading.Thread(target=writer, args=(f,)) for f in range(files)]
    for t in threads:
        t.start()
    churned, f = 0, 0
    while any(t.is_alive() for t in threads):
        os.remove(sd_file(f))
        time.sleep(0.5)
        put(f)
        time.sleep(0.5)
        churned, f = churned + 1, (f + 1) % files
    for t in threads:
        t.join()
    all_lines = [l for w in written for l in w]
    settle(run.loki, run.job, len(all_lines), s)
    s.stop()
    run.extra["target_removals"] = churned
    return all_lines


def journal_remote():
    for p in ("/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"):
        if os.access(p, os.X_OK):
            return p
    raise SystemExit("loki-faults: journal-kill9 needs systemd-journal-remote (apt-get install systemd-journal-remote)")


def journal_kill9(run):
    """--lines journal entries (real journal files written by systemd-journal-remote from the
    export format; a tenth at priority 3) read by a `journal` job; SIGKILL at a seeded random
    point, restart from the saved cursor."""
    a = run.args
    lines = json_lines(run.job, 0, a.lines)
    jdir = os.path.join(run.dir, "journal")
    os.makedirs(jdir)
    now_us = time.time_ns() // 1000
    t0, boot = now_us - 1800 * 10**6, now_us - 7200 * 10**6
    export = os.path.join(run.dir, "in.export")
    with open(export, "w") as f:
        for i, l in enumerate(lines):
            t = t0 + i * 200
            f.write("__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=6c7c6013a8b34d4e8d6e2e4a1f1a1a1a\n"
                    "_SYSTEMD_UNIT=shop.service\nPRIORITY=%d\nMESSAGE=%s\n\n" % (t, t - boot, 3 if i % 10 == 9 else 6, l))
    subprocess.run([journal_remote(), "--output=" + os.path.join(jdir, "system.journal"), export],
                   check=True, stderr=subprocess.DEVNULL)
    os.remove(export)
    journal = """    journal:
      path: %s
      max_age: 2h
      labels:
        job: %s
    relabel_configs:
      - source_labels: [__journal__systemd_unit]
        target_label: unit
      - source_labels: [__journal_priority_keyword]
        target_label: level
""" % (jdir, run.job)
    rng = random.Random(a.seed + run.i)
    at = int(len(lines) * rng.uniform(0.2, 0.8))
    s = run.start(sync="1s", targets=journal)
    wait_for("%d lines in Loki" % at, lambda: run.loki.count(run.job) >= at, WAIT, 0.05)
    s.kill9()
    run.extra["killed_at"] = run.loki.count(run.job)
    s = run.start(sync="1s", targets=journal)
    settle(run.loki, run.job, len(lines), s)
    sent = int(s.metric("promtail_sent_entries_total"))
    s.stop()
    run.extra["sent_again"] = max(0, sent - (len(lines) - run.extra["killed_at"]))
    return lines


class FakeDocker:
    """A Docker engine answering on a Unix socket as the engine API does, enough for Docker
    discovery and log reading (ferrotail through bollard + hyper, Promtail through the Go
    client): /_ping, /version, /containers/json, /networks, /containers/<id>/json and
    /containers/<id>/logs (multiplexed stream with timestamps, `since` in Unix seconds, at or
    after it). One running container; its log is fixed at start; a followed log stays open
    until the fake stops."""

    API = "1.45"

    def __init__(self, sock, cid, name, labels, log):
        self.sock, self.cid, self.name, self.labels = sock, cid, name, labels
        self.log = log  # [(time_ns, stream 1|2, text)]
        self.stopping = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def address_string(self):
                return "unix"

            def send_json(self, obj, status=200):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Api-Version", FakeDocker.API)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                parts = [x for x in u.path.split("/") if x]
                if parts and parts[0].startswith("v1."):
                    parts = parts[1:]
                if parts == ["_ping"]:
                    self.send_response(200)
                    self.send_header("Api-Version", FakeDocker.API)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    if self.command == "GET":
                        self.wfile.write(b"OK")
                elif parts == ["version"]:
                    self.send_json({"Version": "27.5.1", "ApiVersion": FakeDocker.API,
                                    "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64"})
                elif parts == ["containers", "json"]:
                    self.send_json([fake.summary()])
                elif parts == ["networks"]:
                    self.send_json([{"Name": "bridge", "Id": "net-bridge", "Scope": "local",
                                     "Driver": "bridge", "Internal": False, "Ingress": False,
                                     "Labels": {}}])
                elif parts == ["containers", fake.cid, "json"]:
                    self.send_json({"Id": fake.cid, "Name": fake.name,
                                    "State": {"Status": "running", "Running": True},
                                    "Config": {"Tty": False, "Labels": fake.labels},
                                    "HostConfig": {"NetworkMode": "bridge"}})
                elif parts == ["containers", fake.cid, "logs"]:
                    self.logs(q)
                else:
                    self.send_json({"message": "page not found"}, 404)

            def logs(self, q):
                since = float(q.get("since", "0") or 0) * 1e9
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.docker.multiplexed-stream")
                self.send_header("Api-Version", FakeDocker.API)
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    buf = []
                    for t, stream, text in fake.log:
                        if t < since:
                            continue
                        payload = (docker_time(t) + " " + text + "\n").encode()
                        buf.append(struct.pack(">BxxxI", stream, len(payload)) + payload)
                        if len(buf) >= 512:
                            self.wfile.write(b"".join(buf))
                            buf = []
                    self.wfile.write(b"".join(buf))
                    self.wfile.flush()
                    if q.get("follow") in ("1", "true"):
                        fake.stopping.wait()
                except OSError:
                    pass

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(sock, Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def summary(self):
        return {"Id": self.cid, "Names": [self.name], "Image": "example/app:1.0",
                "ImageID": "sha256:5d1b2c7e0f", "Command": "/app", "Created": 1714550000,
                "Ports": [], "Labels": self.labels, "State": "running", "Status": "Up 2 hours",
                "HostConfig": {"NetworkMode": "bridge"},
                "NetworkSettings": {"Networks": {"bridge": {
                    "NetworkID": "net-bridge", "EndpointID": "ep-1", "Gateway": "172.17.0.1",
                    "IPAddress": "172.17.0.2", "IPPrefixLen": 16, "MacAddress": "02:42:ac:11:00:02"}}},
                "Mounts": []}

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def docker_time(t):
    s, ns = divmod(t, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%09dZ" % ns


def docker_down_kill9(run):
    """The container log of docker-kill9 (--lines, default 200,000) read while Loki is
    unreachable for 10 s (the shipper's retries hold what it read), then SIGKILL and a restart
    with Loki reachable. A shipper that saves its cursor on hand-off loses what it held."""
    return docker_kill9(run, loki_down=True)


def docker_kill9(run, loki_down=False):
    """A container's log of --lines JSON lines (5,000 per second of Docker time, a tenth on
    stderr) behind a fake engine; the shipper reads it through docker_sd_configs, is killed
    at a random point and restarted from its saved cursor."""
    a = run.args
    lines = json_lines(run.job, 0, a.lines)
    t0 = (time.time_ns() // 10**9 - 1800) * 10**9
    log = [(t0 + i * 200000, 2 if i % 10 == 9 else 1, l) for i, l in enumerate(lines)]
    sock = os.path.join(run.dir, "docker.sock")
    cid = "%064x" % random.getrandbits(256)
    fake = FakeDocker(sock, cid, "/shop-web", {"app": "shop"}, log)
    docker = """    docker_sd_configs:
      - host: unix://%s
        refresh_interval: 1s
    relabel_configs:
      - target_label: job
        replacement: %s
      - source_labels: [__meta_docker_container_name]
        regex: '/(.*)'
        target_label: container
      - source_labels: [__meta_docker_container_log_stream]
        target_label: stream
""" % (sock, run.job)
    rng = random.Random(a.seed + run.i)
    at = int(len(lines) * rng.uniform(0.2, 0.8))
    try:
        if loki_down:
            s = run.start(url=dead_url(), sync="1s", targets=docker)
            time.sleep(10)
            positions = os.path.join(run.dir, "positions.yaml")
            saved = open(positions).read() if os.path.exists(positions) else ""
            run.extra["cursor_saved"] = "cursor-" in saved
        else:
            s = run.start(sync="1s", targets=docker)
            wait_for("%d lines in Loki" % at, lambda: run.loki.count(run.job) >= at, WAIT, 0.05)
        s.kill9()
        run.extra["killed_at"] = run.loki.count(run.job)
        s = run.start(sync="1s", targets=docker)
        settle(run.loki, run.job, len(lines), s)
        sent = int(s.metric("promtail_sent_entries_total"))
        s.stop()
    finally:
        fake.stop()
    run.extra["sent_again"] = max(0, sent - (len(lines) - run.extra["killed_at"]))
    return lines


class Proxy:
    """A TCP proxy in front of Loki for the network scenarios: while down (`down(seconds)`),
    every connection is accepted and reset at once (SO_LINGER 0), so the shipper's client sees
    Loki unreachable; otherwise each connection is forwarded to Loki."""

    def __init__(self, target):
        u = urllib.parse.urlsplit(target)
        self.target = (u.hostname, u.port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.until = 0.0
        self.refused = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def down(self, seconds):
        self.until = time.time() + seconds

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if time.time() < self.until:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                self.refused += 1
                continue
            try:
                u = socket.create_connection(self.target, 10)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while True:
                data = a.recv(1 << 16)
                if not data:
                    break
                b.sendall(data)
            b.shutdown(socket.SHUT_WR)
        except OSError:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def syslog_message(line):
    return "<165>1 2026-12-07T10:00:00.000000Z lf-host shop 42 - - %s" % line


def syslog_targets(run, port, protocol):
    return """    syslog:
      listen_address: 127.0.0.1:%d
      listen_protocol: %s
      use_incoming_timestamp: false
      labels:
        job: %s
""" % (port, protocol, run.job)


def connect(port, limit=30):
    """A TCP connection to the shipper's listener on `port`, once it listens."""
    def attempt():
        try:
            return socket.create_connection(("127.0.0.1", port), 2)
        except OSError:
            return None
    c = wait_for("the shipper's listener on port %d" % port, attempt, limit, 0.1)
    c.settimeout(None)
    return c


def syslog_tcp_down(run):
    """--lines RFC 5424 messages (octet counting) on one TCP connection, sent as fast as the
    socket takes them, while the shipper's Loki (a proxy) refuses connections for 10 s."""
    a = run.args
    lines = json_lines(run.job, 0, a.lines)
    proxy = Proxy(run.loki.url)
    port = free_port()
    try:
        s = run.start(url=proxy.url, targets=syslog_targets(run, port, "tcp"))
        c = connect(port)
        proxy.down(10)
        t0 = time.time()

        def sample_read():
            # what the shipper had read off the connection at the end of the outage
            time.sleep(9.5)
            run.extra["read_while_down"] = int(s.metric("promtail_syslog_target_entries_total"))
        sampler = threading.Thread(target=sample_read, daemon=True)
        sampler.start()
        for i in range(0, len(lines), 100):
            c.sendall("".join("%d %s" % (len(m.encode()), m)
                              for m in map(syslog_message, lines[i:i + 100])).encode())
        run.extra["send_s"] = round(time.time() - t0, 1)
        c.close()
        sampler.join()
        settle(run.loki, run.job, len(lines), s)
        run.extra["refused_pushes"] = proxy.refused
        s.stop()
    finally:
        proxy.stop()
    return lines


def paced(n, rate, send):
    """Calls send(i) for i in range(n) at `rate` a second (bursts of a hundredth of it)."""
    burst = max(1, rate // 100)
    t0 = time.time()
    for i in range(n):
        send(i)
        if i % burst == burst - 1:
            ahead = (i + 1) / rate - (time.time() - t0)
            if ahead > 0:
                time.sleep(ahead)


def udp_rcvbuf_errors():
    """The kernel's count of UDP datagrams dropped for a full socket buffer (this network
    namespace, every socket), from /proc/net/snmp; None where it cannot be read."""
    try:
        rows = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
        return int(rows[1][rows[0].index("RcvbufErrors")])
    except (OSError, IndexError, ValueError):
        return None


def udp_send(run, send, n):
    """send(i) for i in range(n) at --rate a second; the kernel's UDP buffer drops meanwhile
    (until the shipper has had 2 s to read what is queued) in run.extra["udp_rcvbuf_errors"]."""
    before = udp_rcvbuf_errors()
    paced(n, run.args.rate, send)
    time.sleep(2)
    after = udp_rcvbuf_errors()
    if before is not None and after is not None:
        run.extra["udp_rcvbuf_errors"] = after - before


def syslog_udp(run):
    """--lines RFC 5424 messages, one a datagram, at --rate a second (default 5,000), Loki
    reachable. UDP may drop: the loss is reported, not failed."""
    a = run.args
    lines = json_lines(run.job, 0, a.lines)
    port = free_port()
    s = run.start(targets=syslog_targets(run, port, "udp"))
    time.sleep(1)  # the UDP listener is bound by now
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_send(run, lambda i: u.sendto(syslog_message(lines[i]).encode(), ("127.0.0.1", port)), len(lines))
    u.close()
    settle(run.loki, run.job, len(lines), s)
    run.extra["parse_errors"] = int(s.metric("promtail_syslog_target_parsing_errors_total"))
    s.stop()
    return lines


def push_targets(run, port, ack):
    # Promtail refuses keys it does not know: ack_after_delivery only for ferrotail
    return """    loki_push_api:
      server:
        http_listen_address: 127.0.0.1
        http_listen_port: %d
        grpc_listen_port: 0
      labels:
        job: %s
      use_incoming_timestamp: true
%s""" % (port, run.job, "      ack_after_delivery: true\n" if ack and run.shipper_name == "ferrotail" else "")


class Pusher:
    """Pushes `lines` to a loki_push_api server on `port` in batches of 500 entries (Loki's
    JSON push format, one stream, timestamps distinct and increasing), 16 batches at a time;
    each batch is sent again every 0.2 s until it is answered 204 (connection errors too)."""

    def __init__(self, port, lines, workers=16, batch=500):
        self.port, self.lines, self.batch = port, lines, batch
        self.t0 = time.time_ns() - 1800 * 10**9
        self.next = 0
        self.lock = threading.Lock()
        self.stats = collections.Counter()
        self.threads = [threading.Thread(target=self.work, daemon=True) for _ in range(workers)]
        for t in self.threads:
            t.start()

    def take(self):
        with self.lock:
            i = self.next
            self.next += self.batch
            return i

    def count(self, key):
        with self.lock:
            self.stats[key] += 1

    def work(self):
        conn = None
        while True:
            i = self.take()
            if i >= len(self.lines):
                return
            body = json.dumps({"streams": [{"stream": {"app": "shop", "source": "pusher"}, "values": [
                [str(self.t0 + j * 1000), self.lines[j]]
                for j in range(i, min(i + self.batch, len(self.lines)))]}]}).encode()
            while True:
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                    conn.request("POST", "/loki/api/v1/push", body, {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    if r.status == 204:
                        break
                    self.count("answered_%d" % r.status)
                except (OSError, http.client.HTTPException):
                    self.count("connection_errors")
                    if conn:
                        conn.close()
                    conn = None
                time.sleep(0.2)
            self.count("batches")

    def join(self, limit=600):
        deadline = time.time() + limit
        for t in self.threads:
            t.join(max(0, deadline - time.time()))
        if any(t.is_alive() for t in self.threads):
            raise SystemExit("loki-faults: the pusher did not finish in %ds" % limit)


def push_kill9(run):
    """--lines entries (default 200,000) pushed to a loki_push_api job with
    ack_after_delivery (ferrotail; Promtail answers on receipt), SIGKILL at a seeded random
    point between 20 % and 80 %, restart on the same port; the pusher retries until 204."""
    a = run.args
    lines = json_lines(run.job, 0, a.lines)
    port = free_port()
    targets = push_targets(run, port, True)
    rng = random.Random(a.seed + run.i)
    at = int(len(lines) * rng.uniform(0.2, 0.8))
    s = run.start(targets=targets)
    p = Pusher(port, lines)
    wait_for("%d lines in Loki" % at, lambda: run.loki.count(run.job) >= at, WAIT, 0.05)
    s.kill9()
    run.extra["killed_at"] = run.loki.count(run.job)
    s = run.start(targets=targets)
    p.join()
    settle(run.loki, run.job, len(lines), s)
    # what the restarted shipper pushed that Loki already held at the kill (as kill9 counts
    # it); Loki merges an entry pushed again with the same timestamp and line
    sent = int(s.metric("promtail_sent_entries_total"))
    s.stop()
    run.extra["sent_again"] = max(0, sent - (len(lines) - run.extra["killed_at"]))
    run.extra.update(sorted(p.stats.items()))
    return lines


def push_down(run):
    """The pusher of push-kill9 (ack_after_delivery for ferrotail) while the shipper's Loki (a
    proxy) refuses connections for 10 s; no kill."""
    lines = json_lines(run.job, 0, run.args.lines)
    proxy = Proxy(run.loki.url)
    port = free_port()
    try:
        s = run.start(url=proxy.url, targets=push_targets(run, port, True))
        proxy.down(10)
        p = Pusher(port, lines)
        p.join()
        settle(run.loki, run.job, len(lines), s)
        s.stop()
        run.extra["refused_pushes"] = proxy.refused
        run.extra.update(sorted(p.stats.items()))
    finally:
        proxy.stop()
    return lines


def gelf_udp(run):
    """--lines GELF messages over UDP at --rate a second (default 5,000): every 5th gzipped,
    every 7th cut into 2 or 3 chunks (chunks of a message sent in a row, in order). The line is
    the message as go-gelf writes it back; the sender writes it in go-gelf's order so that line
    is what was sent. UDP may drop: the loss is reported, not failed."""
    a = run.args
    port = free_port()
    ts0 = int(time.time()) - 1800
    msgs = []
    for i, l in enumerate(json_lines(run.job, 0, a.lines)):
        # go-gelf's order: version, host, short_message, timestamp, level, facility, _ fields
        # sorted; Go writes a float64 as its shortest form, as Python's repr does, but a whole
        # number without ".0"
        ts = repr(round(ts0 + i / 1000.0, 3))
        msgs.append('{"version":"1.1","host":"lf-host","short_message":%s,"timestamp":%s,'
                    '"level":6,"facility":"shop","_seq":%d}'
                    % (json.dumps(l), ts[:-2] if ts.endswith(".0") else ts, i))
    targets = """    gelf:
      listen_address: 127.0.0.1:%d
      labels:
        job: %s
""" % (port, run.job)
    s = run.start(targets=targets)
    time.sleep(1)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stats = collections.Counter()

    def send(i):
        payload = msgs[i].encode()
        if i % 5 == 0:
            payload = gzip.compress(payload)
            stats["gzipped"] += 1
        if i % 7 == 0:
            count = 2 + i % 2
            size = -(-len(payload) // count)
            mid = struct.pack(">Q", i + 1)
            for k in range(count):
                u.sendto(b"\x1e\x0f" + mid + bytes([k, count]) + payload[k * size:(k + 1) * size],
                         ("127.0.0.1", port))
            stats["chunked"] += 1
        else:
            u.sendto(payload, ("127.0.0.1", port))

    udp_send(run, send, len(msgs))
    u.close()
    settle(run.loki, run.job, len(msgs), s)
    run.extra.update(sorted(stats.items()))
    run.extra["parse_errors"] = int(s.metric("promtail_gelf_target_parsing_errors_total"))
    s.stop()
    return msgs


def heroku_down(run):
    """--lines logplex messages (octet-counted RFC 5424) POSTed to a heroku_drain job in
    batches of 100, each sent again every 0.2 s until answered 2xx, while the shipper's Loki (a
    proxy) refuses connections for the first 10 s."""
    a = run.args
    lines = json_lines(run.job, 0, a.lines)
    proxy = Proxy(run.loki.url)
    port = free_port()
    targets = """    heroku_drain:
      server:
        http_listen_address: 127.0.0.1
        http_listen_port: %d
        grpc_listen_port: 0
      labels:
        job: %s
""" % (port, run.job)
    stats = collections.Counter()
    try:
        # Promtail's heroku_drain wants a Prometheus-compatible job_name (no `-`); the job
        # label is still run.job
        s = run.start(url=proxy.url, targets=targets, job_name=run.job.replace("-", "_"))
        proxy.down(10)
        conn = None
        for b, i in enumerate(range(0, len(lines), 100)):
            batch = lines[i:i + 100]
            msgs = ["<190>1 2026-12-07T10:00:00.000000+00:00 host app web.1 - %s" % l for l in batch]
            body = "".join("%d %s" % (len(m.encode()), m) for m in msgs).encode()
            headers = {"Content-Type": "application/logplex-1", "Logplex-Msg-Count": str(len(msgs)),
                       "Logplex-Frame-Id": "frame-%d-%d" % (run.i, b),
                       "Logplex-Drain-Token": "d.5e1c3a2b-0f4d-4b8e-9a61-%012d" % run.i}
            while True:
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    conn.request("POST", "/heroku/api/v1/drain", body, headers)
                    r = conn.getresponse()
                    r.read()
                    if 200 <= r.status < 300:
                        break
                    stats["answered_%d" % r.status] += 1
                except (OSError, http.client.HTTPException):
                    stats["connection_errors"] += 1
                    if conn:
                        conn.close()
                    conn = None
                time.sleep(0.2)
        if conn:
            conn.close()
        settle(run.loki, run.job, len(lines), s)
        s.stop()
        run.extra["refused_pushes"] = proxy.refused
        run.extra.update(sorted(stats.items()))
    finally:
        proxy.stop()
    return lines


SCENARIOS = {
    "repeated": lambda r: repeated(r),
    "repeated-two-files": lambda r: repeated(r, True),
    "rotate-while-down": lambda r: rotate_while_down(r, "rename"),
    "rotate-while-down-copytruncate": lambda r: rotate_while_down(r, "copytruncate"),
    "rotate-while-down-compress": lambda r: rotate_while_down(r, "compress"),
    "rename-under-load": lambda r: under_load(r, "rename"),
    "copytruncate-under-load": lambda r: under_load(r, "copytruncate"),
    "kill9": kill9,
    "docker-kill9": docker_kill9,
    "docker-down-kill9": docker_down_kill9,
    "journal-kill9": journal_kill9,
    "sd-churn": sd_churn,
    "syslog-tcp-down": syslog_tcp_down,
    "syslog-udp": syslog_udp,
    "push-kill9": push_kill9,
    "push-down": push_down,
    "gelf-udp": gelf_udp,
    "heroku-down": heroku_down,
}
KILLS = ("kill9", "docker-kill9", "docker-down-kill9", "journal-kill9", "push-kill9")
UDP = ("syslog-udp", "gelf-udp")  # loss reported, not failed
LINES = {"syslog-tcp-down": 50000, "syslog-udp": 50000, "gelf-udp": 50000, "heroku-down": 50000}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenarios", nargs="+")
    p.add_argument("--binary", default="target/release/ferrotail")
    p.add_argument("--promtail", action="store_true")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--files", type=int, default=1)
    p.add_argument("--lines", type=int)
    p.add_argument("--rate", type=int)
    p.add_argument("--rotate-every", type=int, default=20000)
    p.add_argument("--kills", type=int, default=1)
    p.add_argument("--seed", type=int, default=20261204)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    names = list(SCENARIOS) if a.scenarios == ["all"] else a.scenarios
    for n in names:
        if n not in SCENARIOS:
            p.error("unknown scenario %r (one of: %s, all)" % (n, ", ".join(SCENARIOS)))
    a.binary = os.path.abspath(a.binary)
    if not os.access(a.binary, os.X_OK):
        print("loki-faults: no ferrotail binary at %s (cargo build --release)" % a.binary)
        return 2
    a.promtail_binary = os.environ.get("PROMTAIL", os.path.join(HOME, "bin", "promtail"))
    if a.promtail and not os.access(a.promtail_binary, os.X_OK):
        print("loki-faults: no Promtail at %s" % a.promtail_binary)
        return 2
    random.seed(a.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    tmp = tempfile.mkdtemp(prefix="loki-faults.")
    loki = None
    failed = False
    try:
        loki = Loki(tmp)
        for name in names:
            runs = a.kills if name in KILLS else a.runs
            lines_default, rate_default = a.lines, a.rate
            if a.lines is None:
                a.lines = LINES.get(name, 200000 if name in KILLS or name.startswith("push-") else 300000)
            if a.rate is None:
                a.rate = 5000 if name in UDP else 20000
            for shipper in ["ferrotail"] + (["promtail"] if a.promtail else []):
                totals = collections.Counter()
                dups = []
                for i in range(runs):
                    run = Run(a, loki, tmp, name, shipper, i)
                    written = SCENARIOS[name](run)
                    stored = loki.entries(run.job)
                    t = tally(written, stored)
                    t.update(run.extra)
                    pct = 100.0 * t["duplicated"] / max(1, t["written"])
                    dups.append(pct)
                    print("%s [%s] run %d: written %d, in Loki %d, lost %d, duplicated %d (%.2f %%)%s"
                          % (name, shipper, i, t["written"], t["in_loki"], t["lost"], t["duplicated"],
                             pct, "".join(", %s %s" % kv for kv in run.extra.items())), flush=True)
                    if a.json:
                        print(json.dumps(dict(t, scenario=name, shipper=shipper, run=i)), flush=True)
                    for k in ("written", "in_loki", "lost", "duplicated"):
                        totals[k] += t[k]
                    bad = t["unexpected"] > 0
                    if shipper == "ferrotail":
                        if name == "rotate-while-down-compress":
                            lost_bytes = sum(len(l) + 1 for l in written[:2000])
                            bad |= t["lost"] != 2000 or run.extra.get("counted_lost_bytes") != lost_bytes
                        elif name not in UDP:
                            bad |= t["lost"] > 0
                        failed |= bad
                    if bad:
                        print("  (run kept for a look: %s)" % run.dir)
                        sample(run.dir, written, stored)
                    else:
                        shutil.rmtree(run.dir, ignore_errors=True)
                if runs > 1:
                    dups.sort()
                    print("%s [%s] %d runs: written %d, lost %d, duplicated %d; duplicated %% min %.2f median %.2f max %.2f"
                          % (name, shipper, runs, totals["written"], totals["lost"], totals["duplicated"],
                             dups[0], dups[len(dups) // 2], dups[-1]), flush=True)
            a.lines, a.rate = lines_default, rate_default
    finally:
        if loki:
            loki.stop()
        if not failed:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
