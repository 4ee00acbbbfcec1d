//! Loki's push API messages (`pkg/push/push.proto`, spec §8.6), written by hand with prost's
//! derive macros, and the snappy block compression around them.
//!
//! Only the fields a client sends are declared; a decoder skips the others. `line` is `bytes`
//! on our side although Loki declares it `string`: the wire encoding is the same, and it lets
//! invalid UTF-8 pass unchanged, as Promtail does.

use bytes::Bytes;

/// A push request: the streams of one batch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// One element per stream.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// One stream: its label string and its entries in order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// The label string, `{a="b", c="d"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// The stream's entries in arrival order.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
}

/// One log entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// The entry's time (always present on the wire).
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<ProtoTimestamp>,
    /// The line as raw bytes.
    #[prost(bytes = "bytes", tag = "2")]
    pub line: Bytes,
    /// Structured metadata pairs.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ProtoTimestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds in `[0, 1e9)`.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl ProtoTimestamp {
    /// Nanoseconds since the Unix epoch (saturating).
    pub fn unix_nanos(self) -> i64 {
        self.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(self.nanos))
    }
}

/// One name/value pair of structured metadata.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LabelPairAdapter {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// The protobuf-encoded size of one structured-metadata pair, which is what Promtail adds to a
/// batch's size for it (spec §8.2).
pub fn label_pair_size(name: &str, value: &str) -> usize {
    fn field(len: usize) -> usize {
        if len == 0 {
            0
        } else {
            1 + prost::encoding::encoded_len_varint(len as u64) + len
        }
    }
    field(name.len()) + field(value.len())
}

/// Why a push body could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The protobuf body is too large for snappy's block format (about 4 GiB).
    #[error("batch of {0} bytes is too large to compress")]
    TooLarge(usize),
    /// The snappy encoder failed.
    #[error("snappy compression failed: {0}")]
    Snappy(#[from] snap::Error),
}

/// Why a push body could not be read (used by tests and the mock Loki).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body is not a snappy block.
    #[error("body is not snappy block data: {0}")]
    Snappy(#[from] snap::Error),
    /// The decompressed body is not a `PushRequest`.
    #[error("body is not a protobuf PushRequest: {0}")]
    Proto(#[from] prost::DecodeError),
}

/// Encodes push requests into a reused protobuf buffer and compresses them with snappy's block
/// format (not the framed format: Loki wants the block).
pub struct Encoder {
    proto: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("buffer_capacity", &self.proto.capacity())
            .finish()
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// A new encoder with empty buffers.
    pub fn new() -> Self {
        Encoder {
            proto: Vec::new(),
            snappy: snap::raw::Encoder::new(),
        }
    }

    /// The snappy-compressed protobuf body for `req`.
    pub fn encode(&mut self, req: &PushRequest) -> Result<Bytes, EncodeError> {
        use prost::Message as _;
        self.proto.clear();
        self.proto.reserve(req.encoded_len());
        // Encoding into a Vec with enough capacity reserved cannot run out of space.
        if req.encode(&mut self.proto).is_err() {
            return Err(EncodeError::TooLarge(req.encoded_len()));
        }
        let max = snap::raw::max_compress_len(self.proto.len());
        if max == 0 && !self.proto.is_empty() {
            return Err(EncodeError::TooLarge(self.proto.len()));
        }
        let mut out = vec![0u8; max];
        let n = self.snappy.compress(&self.proto, &mut out)?;
        out.truncate(n);
        Ok(Bytes::from(out))
    }
}

/// Decodes a push body: snappy block decompression, then protobuf.
pub fn decode_push(body: &[u8]) -> Result<PushRequest, DecodeError> {
    use prost::Message as _;
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    Ok(PushRequest::decode(raw.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn appendix_b() -> PushRequest {
        PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{job="a"}"#.into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(ProtoTimestamp {
                        seconds: 1_700_000_000,
                        nanos: 5,
                    }),
                    line: Bytes::from_static(b"hi"),
                    structured_metadata: vec![],
                }],
            }],
        }
    }

    #[test]
    fn encodes_the_appendix_b_vector() {
        let expected: [u8; 29] = [
            0x0a, 0x1b, 0x0a, 0x09, 0x7b, 0x6a, 0x6f, 0x62, 0x3d, 0x22, 0x61, 0x22, 0x7d, 0x12,
            0x0e, 0x0a, 0x08, 0x08, 0x80, 0xe2, 0xcf, 0xaa, 0x06, 0x10, 0x05, 0x12, 0x02, 0x68,
            0x69,
        ];
        assert_eq!(appendix_b().encode_to_vec(), expected);
        // The all-literal snappy block given in the spec decodes to the same request.
        let mut block = vec![0x1d, 0x70];
        block.extend_from_slice(&expected);
        assert_eq!(decode_push(&block).unwrap(), appendix_b());
    }

    #[test]
    fn snappy_block_round_trips() {
        let mut enc = Encoder::new();
        let body = enc.encode(&appendix_b()).unwrap();
        // Block format: starts with the varint of the uncompressed length (29), no stream header.
        assert_eq!(body[0], 29);
        assert_eq!(decode_push(&body).unwrap(), appendix_b());
        // The buffer is reused: a second encode gives the same bytes.
        assert_eq!(enc.encode(&appendix_b()).unwrap(), body);
    }

    #[test]
    fn invalid_utf8_line_passes_unchanged() {
        let mut req = appendix_b();
        let raw: &'static [u8] = b"\xff\xfe bad \xc3\x28 utf8 \x00";
        req.streams[0].entries[0].line = Bytes::from_static(raw);
        req.streams[0].entries[0].structured_metadata = vec![LabelPairAdapter {
            name: "trace_id".into(),
            value: "abc".into(),
        }];
        let body = Encoder::new().encode(&req).unwrap();
        let back = decode_push(&body).unwrap();
        assert_eq!(&back.streams[0].entries[0].line[..], raw);
        assert_eq!(back, req);
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(matches!(
            decode_push(b"\x05not snappy"),
            Err(DecodeError::Snappy(_))
        ));
        let block = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff")
            .unwrap();
        assert!(matches!(decode_push(&block), Err(DecodeError::Proto(_))));
    }

    #[test]
    fn label_pair_size_matches_prost() {
        for (n, v) in [
            ("a", "b"),
            ("trace_id", ""),
            ("", ""),
            ("k", &"x".repeat(200)[..]),
        ] {
            let pair = LabelPairAdapter {
                name: n.into(),
                value: v.into(),
            };
            assert_eq!(label_pair_size(n, v), pair.encoded_len(), "{n}={v}");
        }
    }

    #[test]
    fn timestamp_to_nanos() {
        let t = ProtoTimestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        assert_eq!(t.unix_nanos(), 1_700_000_000_000_000_005);
    }
}
