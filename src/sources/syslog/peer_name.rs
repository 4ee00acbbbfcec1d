//! `__syslog_connection_hostname`: the sender's name by reverse lookup, as Promtail sets it.
//!
//! Promtail asks Go's `net.LookupAddr` for every connection (and every UDP datagram) and joins
//! the names with commas. Here the system resolver (`getnameinfo`, through `dns-lookup`)
//! answers one name, written as Go writes names (a trailing `.` on a name that has a dot).
//!
//! Invariants:
//! - a lookup happens only when the job's relabel rules can see the label (a rule reads it or
//!   maps label names); otherwise the label is absent, which no rule can tell from an empty
//!   one, and no DNS query leaves the host per connection;
//! - a lookup never blocks the runtime (it runs on the blocking pool) and never holds a
//!   connection longer than [`LOOKUP_LIMIT`]: a slow or failing resolver gives an empty name,
//!   as a failed lookup does in Promtail;
//! - UDP senders' names are cached for [`CACHE_TTL`] (at most [`CACHE_SIZE`] of them), so a
//!   busy sender costs one query a minute rather than one per datagram.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::discovery::relabel::{Action, Rule};

/// The label this module fills.
pub const LABEL: &str = "__syslog_connection_hostname";

/// Longest a connection waits for its sender's name.
pub const LOOKUP_LIMIT: Duration = Duration::from_secs(5);

/// How long a UDP sender's name is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// Most UDP senders whose names are kept.
pub const CACHE_SIZE: usize = 1024;

/// Whether `rules` can observe [`LABEL`]: a rule reads it (`source_labels`, or the compared
/// label of `keepequal`/`dropequal`), or copies labels by name (`labelmap`).
pub fn needed_by(rules: &[Rule]) -> bool {
    rules.iter().any(|r| {
        r.source_labels.iter().any(|l| l == LABEL)
            || (matches!(r.action, Action::KeepEqual | Action::DropEqual)
                && r.target_label == LABEL)
            || r.action == Action::LabelMap
    })
}

/// Go's absolute form of a name: a trailing dot once the name has a dot (`host.example.com.`,
/// but `localhost`).
pub fn go_form(name: &str) -> String {
    if name.contains('.') && !name.ends_with('.') {
        format!("{name}.")
    } else {
        name.to_owned()
    }
}

/// The name of `ip`, empty when it has none or the resolver does not answer in time.
pub async fn lookup(ip: IpAddr) -> String {
    // A dual-stack listener sees IPv4 senders as `::ffff:a.b.c.d`; their names are the IPv4
    // address's (the same form `__syslog_connection_ip_address` shows).
    let ip = ip.to_canonical();
    let query = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip));
    match tokio::time::timeout(LOOKUP_LIMIT, query).await {
        Ok(Ok(Ok(name))) if name != ip.to_string() => go_form(&name),
        // No name (getnameinfo answers with the address itself when it finds none).
        Ok(Ok(Ok(_))) => String::new(),
        Ok(Ok(Err(e))) => {
            tracing::debug!(peer = %ip, error = %e, "reverse lookup of the syslog sender failed");
            String::new()
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = %ip, error = %e, "reverse lookup task failed");
            String::new()
        }
        Err(_) => {
            tracing::debug!(peer = %ip, "reverse lookup of the syslog sender timed out");
            String::new()
        }
    }
}

/// Names of recent UDP senders.
#[derive(Debug, Default)]
pub struct Cache {
    names: Mutex<HashMap<IpAddr, (String, Instant)>>,
}

impl Cache {
    /// The name of `ip`, looked up again once [`CACHE_TTL`] has passed.
    pub async fn name(&self, ip: IpAddr) -> String {
        let now = Instant::now();
        if let Some((name, at)) = self.lock().get(&ip)
            && now.duration_since(*at) < CACHE_TTL
        {
            return name.clone();
        }
        let name = lookup(ip).await;
        let mut names = self.lock();
        if names.len() >= CACHE_SIZE {
            names.retain(|_, (_, at)| now.duration_since(*at) < CACHE_TTL);
            if names.len() >= CACHE_SIZE {
                names.clear();
            }
        }
        names.insert(ip, (name.clone(), Instant::now()));
        name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (String, Instant)>> {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_rules(yaml: &str) -> Result<Vec<Rule>, serde_yaml::Error> {
        let configs: Vec<crate::config::RelabelConfig> = serde_yaml::from_str(yaml)?;
        Ok(crate::settings::relabel_rules(&configs))
    }

    #[test]
    fn names_take_go_s_absolute_form() {
        assert_eq!(go_form("localhost"), "localhost");
        assert_eq!(go_form("web-1.prod.example.com"), "web-1.prod.example.com.");
        assert_eq!(
            go_form("web-1.prod.example.com."),
            "web-1.prod.example.com."
        );
        assert_eq!(go_form(""), "");
    }

    #[test]
    fn only_rules_that_can_see_the_label_ask_for_it() {
        let rules = |yaml: &str| parse_rules(yaml).expect("valid rules");
        assert!(!needed_by(&[]));
        assert!(!needed_by(&rules(
            "- source_labels: [__syslog_connection_ip_address]\n  target_label: peer\n- source_labels: [__syslog_message_app_name]\n  regex: noisy\n  action: drop\n"
        )));
        assert!(needed_by(&rules(
            "- source_labels: [__syslog_connection_hostname]\n  target_label: host\n"
        )));
        assert!(needed_by(&rules(
            "- source_labels: [__syslog_message_hostname, __syslog_connection_hostname]\n  separator: '@'\n  target_label: origin\n"
        )));
        assert!(needed_by(&rules(
            "- source_labels: [__syslog_message_hostname]\n  target_label: __syslog_connection_hostname\n  action: keepequal\n"
        )));
        assert!(needed_by(&rules(
            "- regex: __syslog_(.+)\n  action: labelmap\n"
        )));
    }

    #[tokio::test]
    async fn the_loopback_address_has_a_name_or_none_never_the_address() {
        // Whatever /etc/hosts says here, the answer is a name or empty, never the address.
        let name = lookup(IpAddr::from([127, 0, 0, 1])).await;
        assert_ne!(name, "127.0.0.1");
        let cache = Cache::default();
        assert_eq!(cache.name(IpAddr::from([127, 0, 0, 1])).await, name);
        assert_eq!(
            cache.name(IpAddr::from([127, 0, 0, 1])).await,
            name,
            "cached"
        );
    }
}
