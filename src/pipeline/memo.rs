//! Memoisation of deterministic label-set edits (`static_labels`, `labeldrop`, `labelallow`).
//!
//! Entries of one stream arrive with the same shared `LabelSet`; remembering the last
//! input → output pair turns the per-line map copy of a label edit into an `Arc` clone, and
//! makes every entry of the stream share one output map (cheap to compare downstream).

use crate::entry::LabelSet;

/// The last input and output of a label-set edit that depends on nothing but its input.
#[derive(Debug, Default)]
pub struct LastLabels {
    last: Option<(LabelSet, LabelSet)>,
}

impl LastLabels {
    /// Applies `edit` to `labels`, or reuses the previous result when `labels` equals the
    /// previous input (compared by pointer first, then by content).
    pub fn apply(&mut self, labels: &mut LabelSet, edit: impl FnOnce(&mut LabelSet)) {
        if let Some((input, output)) = &self.last {
            if input == labels {
                *labels = output.clone();
                return;
            }
        }
        let input = labels.clone();
        edit(labels);
        self.last = Some((input, labels.clone()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_previous_output() {
        let mut memo = LastLabels::default();
        let input = LabelSet::from_pairs([("a", "1")]);
        let mut first = input.clone();
        memo.apply(&mut first, |l| l.insert("b", "2"));
        let mut second = input.clone();
        let mut called = false;
        memo.apply(&mut second, |_| called = true);
        assert!(!called);
        assert_eq!(first, second);
        let mut other = LabelSet::from_pairs([("a", "2")]);
        memo.apply(&mut other, |l| l.insert("b", "3"));
        assert_eq!(other.get("b"), Some("3"));
    }
}
