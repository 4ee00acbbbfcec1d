//! The config file the end-to-end tests start ferrotail with. Every one has the same base: the
//! server on 127.0.0.1 with OS-chosen ports (HTTP 0, gRPC 0), the positions file
//! `positions.yaml` in the test's directory, one client pushing to the mock Loki with a 50 ms
//! `batchwait`. What the tests vary (the sync periods, the client's `backoff_config` and more
//! client keys, more top-level sections such as `ferrotail:`) is set on [`ConfigFile`]; the
//! `scrape_configs` are each test's own.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// A config file being built; [`ConfigFile::write`] writes it and returns its path.
pub struct ConfigFile {
    path: PathBuf,
    positions: PathBuf,
    loki: String,
    positions_sync: Option<String>,
    backoff: Option<(String, String)>,
    max_retries: Option<u32>,
    client: String,
    target_sync: Option<String>,
    top: String,
    scrape: String,
}

impl ConfigFile {
    /// `config.yaml` in `dir`, positions in `dir/positions.yaml`, the client pushing to `loki`;
    /// nothing else set (ferrotail's defaults) and no scrape configs yet.
    pub fn new(dir: &Path, loki: &str) -> ConfigFile {
        ConfigFile {
            path: dir.join("config.yaml"),
            positions: dir.join("positions.yaml"),
            loki: loki.to_owned(),
            positions_sync: None,
            backoff: None,
            max_retries: None,
            client: String::new(),
            target_sync: None,
            top: String::new(),
            scrape: String::new(),
        }
    }

    /// Written to `name` in the same directory (e.g. a second config for one positions file).
    pub fn named(mut self, name: &str) -> ConfigFile {
        self.path.set_file_name(name);
        self
    }

    /// `positions.sync_period`.
    pub fn positions_sync(mut self, period: &str) -> ConfigFile {
        self.positions_sync = Some(period.to_owned());
        self
    }

    /// The client's `backoff_config.min_period` and `max_period`.
    pub fn backoff(mut self, min: &str, max: &str) -> ConfigFile {
        self.backoff = Some((min.to_owned(), max.to_owned()));
        self
    }

    /// The client's `backoff_config.max_retries` (with [`ConfigFile::backoff`]).
    pub fn max_retries(mut self, n: u32) -> ConfigFile {
        self.max_retries = Some(n);
        self
    }

    /// More keys of the client's mapping, written without indentation (`batchsize: 8192`).
    pub fn client(mut self, yaml: &str) -> ConfigFile {
        self.client = yaml.to_owned();
        self
    }

    /// `target_config.sync_period`.
    pub fn target_sync(mut self, period: &str) -> ConfigFile {
        self.target_sync = Some(period.to_owned());
        self
    }

    /// More top-level sections, e.g. `ferrotail:\n  inflight_bytes: 64KB`.
    pub fn top(mut self, yaml: &str) -> ConfigFile {
        self.top = yaml.to_owned();
        self
    }

    /// The items of `scrape_configs`, as they stand in the file (`  - job_name: ...`).
    pub fn scrape(mut self, yaml: &str) -> ConfigFile {
        self.scrape = yaml.to_owned();
        self
    }

    /// The config's text.
    fn text(&self) -> String {
        let mut text = format!(
            "server:
  http_listen_address: 127.0.0.1
  http_listen_port: 0
  grpc_listen_port: 0
positions:
  filename: {}
",
            self.positions.display()
        );
        if let Some(period) = &self.positions_sync {
            text.push_str(&format!("  sync_period: {period}\n"));
        }
        text.push_str(&format!(
            "clients:\n  - url: {}\n    batchwait: 50ms\n",
            self.loki
        ));
        match &self.backoff {
            Some((min, max)) => {
                text.push_str(&format!(
                    "    backoff_config:\n      min_period: {min}\n      max_period: {max}\n"
                ));
                if let Some(n) = self.max_retries {
                    text.push_str(&format!("      max_retries: {n}\n"));
                }
            }
            None => assert!(
                self.max_retries.is_none(),
                "max_retries is set with the backoff periods"
            ),
        }
        for line in self.client.lines() {
            text.push_str(&format!("    {line}\n"));
        }
        if let Some(period) = &self.target_sync {
            text.push_str(&format!("target_config:\n  sync_period: {period}\n"));
        }
        push_block(&mut text, &self.top);
        text.push_str("scrape_configs:\n");
        push_block(&mut text, &self.scrape);
        text
    }

    /// Writes the file; returns its path.
    pub fn write(self) -> PathBuf {
        std::fs::write(&self.path, self.text()).unwrap();
        self.path
    }
}

/// Appends `yaml` to `text`, ending it with a newline.
fn push_block(text: &mut String, yaml: &str) {
    text.push_str(yaml);
    if !yaml.is_empty() && !yaml.ends_with('\n') {
        text.push('\n');
    }
}
