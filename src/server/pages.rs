//! `/targets` and `/service-discovery`: HTML for people, JSON for programs
//! (`Accept: application/json`).
//!
//! `/targets` lists each job's active targets (their labels and path globs) and the files
//! tailed for them with their offsets; `/service-discovery` lists each job's discovered
//! targets with their labels before and after relabeling, and why a target was dropped (at
//! most [`crate::discovery::targets::MAX_DROPPED_SHOWN`] dropped targets a job, with their
//! total). Every text from labels or paths is HTML-escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::discovery::targets::{JobReport, TargetReport};
use crate::tail::FileStatus;

/// Whether the request's `Accept` header asks for JSON.
pub(super) fn wants_json(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .any(|t| t.trim().starts_with("application/json"))
    })
}

#[derive(Serialize)]
struct TargetsDoc<'a> {
    jobs: Vec<ActiveJob<'a>>,
    files: &'a [FileStatus],
}

#[derive(Serialize)]
struct ActiveJob<'a> {
    job: &'a str,
    active: &'a [TargetReport],
}

#[derive(Serialize)]
struct DiscoveryDoc<'a> {
    jobs: &'a [JobReport],
}

/// `/targets` as JSON.
pub(super) fn targets_json(jobs: &[JobReport], files: &[FileStatus]) -> String {
    let doc = TargetsDoc {
        jobs: jobs
            .iter()
            .map(|j| ActiveJob {
                job: &j.job,
                active: &j.active,
            })
            .collect(),
        files,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// `/service-discovery` as JSON.
pub(super) fn discovery_json(jobs: &[JobReport]) -> String {
    serde_json::to_string_pretty(&DiscoveryDoc { jobs })
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// `/targets` as HTML.
pub(super) fn targets_html(jobs: &[JobReport], files: &[FileStatus]) -> String {
    let mut out = page_start("Targets");
    for j in jobs {
        let _ = write!(
            out,
            "<h2>{} <small>({} active)</small></h2>\n<table>\n<tr><th>Path</th><th>Labels</th></tr>\n",
            esc(&j.job),
            j.active.len()
        );
        for t in &j.active {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&t.path),
                labels_html(&t.labels)
            );
        }
        out.push_str("</table>\n");
        let mine: Vec<&FileStatus> = files.iter().filter(|f| f.job == j.job).collect();
        if !mine.is_empty() {
            out.push_str(
                "<table>\n<tr><th>File</th><th>Open</th><th>Read</th><th>Committed</th><th>Size</th></tr>\n",
            );
            for f in mine {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&f.path),
                    f.open,
                    f.read_offset,
                    f.committed_offset,
                    f.size
                );
            }
            out.push_str("</table>\n");
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// `/service-discovery` as HTML.
pub(super) fn discovery_html(jobs: &[JobReport]) -> String {
    let mut out = page_start("Service discovery");
    for j in jobs {
        let _ = write!(
            out,
            "<h2>{} <small>({} active, {} dropped)</small></h2>\n<table>\n\
             <tr><th>Discovered labels</th><th>Target labels</th><th>State</th></tr>\n",
            esc(&j.job),
            j.active.len(),
            j.dropped_total
        );
        for t in j.active.iter().chain(&j.dropped) {
            let state = match t.dropped {
                Some(reason) => format!("dropped: {}", esc(reason)),
                None => format!("active: {}", esc(&t.path)),
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{state}</td></tr>",
                labels_html(&t.discovered_labels),
                labels_html(&t.labels)
            );
        }
        if j.dropped_total > j.dropped.len() {
            let _ = writeln!(
                out,
                "<tr><td colspan=\"3\">and {} more dropped targets</td></tr>",
                j.dropped_total - j.dropped.len()
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ferrotail: {title}</title>\
         <style>table{{border-collapse:collapse;margin-bottom:1em}}td,th{{border:1px solid #ccc;\
         padding:2px 6px;text-align:left;vertical-align:top}}</style></head><body>\n<h1>{title}</h1>\n"
    )
}

fn labels_html(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in labels {
        let _ = write!(out, "{}=&quot;{}&quot;<br>", esc(k), esc(v));
    }
    out
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn report() -> Vec<JobReport> {
        let l = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        vec![JobReport {
            job: "pods".into(),
            active: vec![TargetReport {
                source: "k:0".into(),
                discovered_labels: l(&[("__path__", "/var/log/a.log"), ("app", "<web>")]),
                labels: l(&[("app", "<web>")]),
                path: "/var/log/a.log".into(),
                dropped: None,
            }],
            dropped: vec![TargetReport {
                source: "k:1".into(),
                discovered_labels: l(&[("tier", "debug")]),
                dropped: Some("dropped"),
                ..TargetReport::default()
            }],
            dropped_total: 3,
        }]
    }

    fn file() -> FileStatus {
        FileStatus {
            job: "pods".into(),
            path: "/var/log/a.log".into(),
            open: true,
            read_offset: 20,
            committed_offset: 10,
            size: 30,
        }
    }

    #[test]
    fn json_carries_labels_before_and_after_and_drop_reasons() {
        let v: serde_json::Value = serde_json::from_str(&discovery_json(&report())).unwrap();
        let job = &v["jobs"][0];
        assert_eq!(job["active"][0]["labels"]["app"], "<web>");
        assert_eq!(
            job["active"][0]["discovered_labels"]["__path__"],
            "/var/log/a.log"
        );
        assert_eq!(job["dropped"][0]["dropped"], "dropped");
        assert_eq!(job["dropped_total"], 3);
        let v: serde_json::Value =
            serde_json::from_str(&targets_json(&report(), &[file()])).unwrap();
        assert_eq!(v["jobs"][0]["active"][0]["path"], "/var/log/a.log");
        assert_eq!(v["files"][0]["committed_offset"], 10);
        assert!(
            v["jobs"][0].get("dropped").is_none(),
            "targets: active only"
        );
    }

    #[test]
    fn html_is_escaped_and_says_how_many_were_left_out() {
        let h = discovery_html(&report());
        assert!(h.contains("app=&quot;&lt;web&gt;&quot;"), "{h}");
        assert!(!h.contains("<web>"), "{h}");
        assert!(h.contains("dropped: dropped"), "{h}");
        assert!(h.contains("and 2 more dropped targets"), "{h}");
        let t = targets_html(&report(), &[file()]);
        assert!(
            t.contains("<td>/var/log/a.log</td><td>true</td><td>20</td><td>10</td><td>30</td>"),
            "{t}"
        );
    }

    #[test]
    fn accept_header_picks_json() {
        assert!(wants_json(Some("application/json")));
        assert!(wants_json(Some("text/html, application/json;q=0.9")));
        assert!(!wants_json(Some("text/html,*/*")));
        assert!(!wants_json(None));
    }
}
