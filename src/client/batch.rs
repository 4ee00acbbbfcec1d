//! One tenant's open batch: entries grouped into streams by label string, with Promtail's size
//! accounting (spec §8.2), and the sealed, encoded form that the sender retries.
//!
//! Invariants:
//! - the batch holds the [`Ack`] of every entry it accepted until the sealed batch is dropped,
//!   which happens only after a 2xx, a permanent rejection or a counted drop;
//! - entries keep their arrival order within a stream;
//! - adding an entry never allocates unless it starts a new stream (the label string is computed
//!   once per stream, found again through the entry's shared `LabelSet`).

use std::collections::HashMap;

use bytes::Bytes;
use tokio::time::Instant;

use super::proto::{
    EncodeError, Encoder, EntryAdapter, LabelPairAdapter, ProtoTimestamp, PushRequest,
    StreamAdapter, label_pair_size,
};
use crate::entry::{Ack, Entry, LabelSet};

/// What Promtail counts for an entry in a batch: line bytes plus the encoded size of each
/// structured-metadata pair. Labels, timestamps and framing are not counted.
pub fn entry_size(entry: &Entry) -> usize {
    entry.line.len()
        + entry
            .structured_metadata
            .iter()
            .map(|(n, v)| label_pair_size(n, v))
            .sum::<usize>()
}

/// A batch being filled.
#[derive(Debug)]
pub struct Batch {
    streams: Vec<StreamAdapter>,
    /// Stream index by the entry's labels (before external labels are merged in).
    by_labels: HashMap<LabelSet, usize>,
    /// Stream index by label string: two label sets can render to the same stream (an entry
    /// label equal to an external label), and must share it.
    by_key: HashMap<String, usize>,
    /// The last stream used: consecutive entries of one source share their `LabelSet`, and
    /// comparing shared sets is a pointer comparison.
    last: Option<(LabelSet, usize)>,
    acks: Vec<Ack>,
    bytes: usize,
    entries: usize,
    created: Instant,
}

/// Why an entry was not added.
#[derive(Debug)]
pub enum Rejected {
    /// The batch already has `max_streams` streams and the entry belongs to another one.
    StreamLimit(Entry),
}

impl Batch {
    /// An empty batch created at `now` (its `batch_wait` clock starts here).
    pub fn new(now: Instant) -> Self {
        Batch {
            streams: Vec::new(),
            by_labels: HashMap::new(),
            by_key: HashMap::new(),
            last: None,
            acks: Vec::new(),
            bytes: 0,
            entries: 0,
            created: now,
        }
    }

    /// The batch's size as Promtail counts it.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Number of distinct streams.
    #[cfg(test)]
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// When the batch was created.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// Adds `entry` (of size `size`, see [`entry_size`]) to its stream. `external` labels are
    /// merged under the entry's labels when a new stream is created; `max_streams` (0 = off)
    /// limits the distinct streams (the first entry is always accepted).
    pub fn add(
        &mut self,
        entry: Entry,
        size: usize,
        external: &LabelSet,
        max_streams: usize,
    ) -> Result<(), Rejected> {
        let idx = match self.stream_of(&entry.labels) {
            Some(idx) => idx,
            None => {
                let key = merged_key(&entry.labels, external);
                let idx = match self.by_key.get(&key) {
                    Some(&idx) => idx,
                    None => {
                        if max_streams > 0 && self.streams.len() >= max_streams {
                            return Err(Rejected::StreamLimit(entry));
                        }
                        let idx = self.streams.len();
                        self.streams.push(StreamAdapter {
                            labels: key.clone(),
                            entries: Vec::new(),
                        });
                        self.by_key.insert(key, idx);
                        idx
                    }
                };
                self.by_labels.insert(entry.labels.clone(), idx);
                idx
            }
        };
        if !matches!(&self.last, Some((l, i)) if *i == idx && *l == entry.labels) {
            self.last = Some((entry.labels.clone(), idx));
        }
        let Entry {
            timestamp,
            line,
            structured_metadata,
            ack,
            ..
        } = entry;
        let (seconds, nanos) = timestamp.seconds_nanos();
        let structured_metadata = structured_metadata
            .into_iter()
            .map(|(name, value)| LabelPairAdapter { name, value })
            .collect();
        self.streams[idx].entries.push(EntryAdapter {
            timestamp: Some(ProtoTimestamp { seconds, nanos }),
            line,
            structured_metadata,
        });
        self.acks.push(ack);
        self.bytes += size;
        self.entries += 1;
        Ok(())
    }

    fn stream_of(&self, labels: &LabelSet) -> Option<usize> {
        if let Some((l, idx)) = &self.last
            && l == labels
        {
            return Some(*idx);
        }
        self.by_labels.get(labels).copied()
    }

    /// Encodes the batch; the lines are released, the acknowledgements move into the result.
    pub fn seal(self, encoder: &mut Encoder) -> Result<Sealed, (EncodeError, Vec<Ack>, usize)> {
        let req = PushRequest {
            streams: self.streams,
        };
        match encoder.encode(&req) {
            Ok(body) => Ok(Sealed {
                body,
                entries: self.entries,
                acks: self.acks,
            }),
            Err(e) => Err((e, self.acks, self.entries)),
        }
    }
}

/// The label string of `labels` with `external` merged under them (the entry wins), without
/// reserved `__` labels.
fn merged_key(labels: &LabelSet, external: &LabelSet) -> String {
    if external.is_empty() || external.iter().all(|(k, _)| labels.contains(k)) {
        return labels.stream_key();
    }
    let mut merged = external.clone();
    for (k, v) in labels.iter() {
        merged.insert(k, v);
    }
    merged.stream_key()
}

/// An encoded batch, waiting to be sent or being retried.
#[derive(Debug)]
pub struct Sealed {
    /// The snappy-compressed protobuf body.
    pub body: Bytes,
    /// Number of entries in it.
    pub entries: usize,
    /// The acknowledgements of those entries; dropping them acknowledges the entries. Read only
    /// to wait for their stamps to be saved before the first attempt.
    pub acks: Vec<Ack>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::Tracker;
    use crate::client::proto::decode_push;
    use crate::entry::Timestamp;

    fn entry(labels: &LabelSet, line: &'static str) -> Entry {
        Entry::new(
            labels.clone(),
            Timestamp(1_700_000_000_000_000_005),
            Bytes::from_static(line.as_bytes()),
            Ack::none(),
        )
    }

    #[test]
    fn size_counts_lines_and_encoded_metadata_only() {
        let mut e = entry(&LabelSet::from_pairs([("job", "a")]), "hello");
        assert_eq!(entry_size(&e), 5);
        e.structured_metadata = vec![("trace_id".into(), "abc".into()), ("x".into(), "".into())];
        // 1+1+8 + 1+1+3 for the first pair, 1+1+1 for the second (empty value omitted).
        assert_eq!(entry_size(&e), 5 + 15 + 3);

        let mut b = Batch::new(Instant::now());
        let size = entry_size(&e);
        b.add(e, size, &LabelSet::new(), 0).unwrap();
        let e2 = entry(&LabelSet::from_pairs([("job", "b")]), "xy");
        b.add(e2, 2, &LabelSet::new(), 0).unwrap();
        assert_eq!(b.bytes(), 25);
        assert_eq!(b.len(), 2);
        assert_eq!(b.streams(), 2);
    }

    #[test]
    fn streams_keep_order_and_merge_external_labels_under_entry() {
        let external = LabelSet::from_pairs([("cluster", "prod"), ("job", "ext")]);
        let a = LabelSet::from_pairs([("job", "a")]);
        let a_with_cluster = LabelSet::from_pairs([("job", "a"), ("cluster", "prod")]);
        let tenant = LabelSet::from_pairs([("job", "t"), ("__tenant_id__", "t1")]);
        let mut b = Batch::new(Instant::now());
        for (l, line) in [
            (&a, "1"),
            (&tenant, "x"),
            (&a, "2"),
            (&a_with_cluster, "3"),
            (&a, "4"),
        ] {
            b.add(entry(l, line), 1, &external, 0).unwrap();
        }
        assert_eq!(b.streams(), 2, "a and a+cluster render to the same stream");
        let sealed = b.seal(&mut Encoder::new()).unwrap();
        assert_eq!(sealed.entries, 5);
        let req = decode_push(&sealed.body).unwrap();
        let got: Vec<(String, Vec<String>)> = req
            .streams
            .iter()
            .map(|s| {
                let lines = s
                    .entries
                    .iter()
                    .map(|e| String::from_utf8_lossy(&e.line).into_owned())
                    .collect();
                (s.labels.clone(), lines)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    r#"{cluster="prod", job="a"}"#.to_owned(),
                    vec!["1".into(), "2".into(), "3".into(), "4".into()]
                ),
                (r#"{cluster="prod", job="t"}"#.to_owned(), vec!["x".into()]),
            ]
        );
        let e = &req.streams[0].entries[0];
        assert_eq!(e.timestamp.unwrap().unix_nanos(), 1_700_000_000_000_000_005);
    }

    #[test]
    fn max_streams_rejects_a_new_stream_but_not_a_known_one() {
        let mut b = Batch::new(Instant::now());
        let a = LabelSet::from_pairs([("job", "a")]);
        let c = LabelSet::from_pairs([("job", "c")]);
        b.add(entry(&a, "1"), 1, &LabelSet::new(), 1).unwrap();
        let r = b.add(entry(&c, "2"), 1, &LabelSet::new(), 1);
        assert!(matches!(r, Err(Rejected::StreamLimit(e)) if &e.line[..] == b"2"));
        b.add(entry(&a, "3"), 1, &LabelSet::new(), 1).unwrap();
        assert_eq!((b.len(), b.streams(), b.bytes()), (2, 1, 2));
    }

    #[test]
    fn acks_are_held_until_the_sealed_batch_is_dropped() {
        let t = Tracker::new(0);
        let mut b = Batch::new(Instant::now());
        let mut e = entry(&LabelSet::from_pairs([("job", "a")]), "1");
        e.ack = t.chunk(10, None);
        b.add(e, 1, &LabelSet::new(), 0).unwrap();
        let sealed = b.seal(&mut Encoder::new()).unwrap();
        assert_eq!(t.committed(), 0);
        drop(sealed);
        assert_eq!(t.committed(), 10);
    }
}
