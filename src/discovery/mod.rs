//! Service discovery: discoverers publish target groups (label sets) on watch channels
//! ([`file_sd`] for `file_sd_configs`, [`kubernetes`] for `kubernetes_sd_configs`, every
//! role; [`docker`] for `docker_sd_configs`); [`targets`] turns each file job's groups into
//! file targets through its relabel rules ([`relabel`]) and keeps the tailer's target set
//! current, and a Docker job's groups are its source's containers
//! ([`crate::sources::docker`]).

use std::collections::BTreeMap;

pub mod docker;
pub mod file_sd;
pub mod kubernetes;
pub mod relabel;
pub mod targets;

/// One group of targets as discovery publishes it (Prometheus' targetgroup.Group).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// One target per entry (each becomes `__address__`).
    pub targets: Vec<String>,
    /// Labels shared by the group's targets.
    pub labels: BTreeMap<String, String>,
    /// Where it came from (e.g. the SD file and index), for logs and the /service-discovery page.
    pub source: String,
}
