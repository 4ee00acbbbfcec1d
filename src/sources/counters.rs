//! Counters that a source module registers itself on the process registry
//! ([`Metrics::registry`]), shared by every job of the same kind, as Promtail shares one set
//! per target manager (two `gelf` jobs add to one `promtail_gelf_target_entries_total`).
//!
//! Why a table: the registry refuses a second counter of the same name and cannot hand the
//! first one back, while jobs are bound one by one. The table is keyed by the [`Metrics`]
//! instance (so two `App`s in one process keep their own counters) and forgets the entries of
//! instances that are gone.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use prometheus::IntCounter;

use crate::metrics::Metrics;

type Entry = (Weak<Metrics>, &'static str, IntCounter);

static SHARED: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// The counter `name` of `metrics`' registry, created and registered (with `help`) the first
/// time it is asked for.
pub fn counter(metrics: &Arc<Metrics>, name: &'static str, help: &str) -> IntCounter {
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    shared.retain(|(m, _, _)| m.strong_count() > 0);
    let same = |m: &Weak<Metrics>| std::ptr::eq(m.as_ptr(), Arc::as_ptr(metrics));
    if let Some((_, _, c)) = shared.iter().find(|(m, n, _)| *n == name && same(m)) {
        return c.clone();
    }
    // The names and helps are constants of the source modules: a failure is a bug.
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    if let Err(e) = metrics.registry().register(Box::new(c.clone())) {
        tracing::error!(metric = name, error = %e, "A source's counter cannot be registered; it is not exported.");
    }
    shared.push((Arc::downgrade(metrics), name, c.clone()));
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_counter_per_registry_and_name() {
        let m1 = Arc::new(Metrics::new());
        let m2 = Arc::new(Metrics::new());
        let a = counter(&m1, "ferrotail_test_counter_total", "test");
        let b = counter(&m1, "ferrotail_test_counter_total", "test");
        let c = counter(&m2, "ferrotail_test_counter_total", "test");
        a.inc();
        b.inc();
        c.inc();
        assert_eq!(a.get(), 2);
        assert_eq!(c.get(), 1);
        assert!(m1.render().contains("ferrotail_test_counter_total 2"));
        assert!(m2.render().contains("ferrotail_test_counter_total 1"));
    }
}
