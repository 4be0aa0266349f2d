//! Append bodies: rows as NDJSON, compressed, cut into requests the service accepts.
//!
//! The service takes at most 4,194,304 bytes per request *as sent*, after compression, and answers 413 to
//! one byte more. How well rows compress is only known after compressing them, so the cutting is adaptive:
//! a request takes rows up to an uncompressed budget, is compressed, and if it came out too large it is
//! cut shorter (in proportion to how much it overshot) and compressed again. The budget then follows the
//! ratio seen, so a batch pays for a recompression rarely — typically once at its start. Without
//! compression the size is known in advance and the cut is exact: a body of exactly the limit goes in one
//! request.
//!
//! Rows are written from their bytes as they are ([`Row`] holds a JSON object's text): no row is parsed or
//! serialised again on the way out.

use std::{io::Write, ops::Range};

use snowpipe_api::Row;

/// The most bytes the service takes in one append request, as sent.
pub const MAX_REQUEST_BYTES: usize = 4_194_304;

/// How append bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// zstd at the given level (1–19; 1 is fastest). The default, at level 1: JSON rows shrink several
    /// times even at the fastest level, and an append should cost little more than reading its rows.
    Zstd(i32),
    /// gzip at the given level (0–9).
    Gzip(u32),
    /// No compression.
    None,
}

impl Default for Compression {
    fn default() -> Self {
        Self::Zstd(1)
    }
}

impl Compression {
    /// The `Content-Encoding` a body compressed this way is sent with.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Self::Zstd(_) => Some("zstd"),
            Self::Gzip(_) => Some("gzip"),
            Self::None => None,
        }
    }

    /// The name used in options, logs and metrics: `zstd`, `gzip`, `none`.
    pub fn name(self) -> &'static str {
        self.content_encoding().unwrap_or("none")
    }
}

/// One request's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The rows it holds, as indexes into the append's rows.
    pub rows: Range<usize>,
    /// The body as sent.
    pub body: Vec<u8>,
    /// The body's size before compression (the rows and their newlines).
    pub raw_bytes: usize,
}

/// Why rows could not be cut into requests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// A row does not fit one request even alone.
    #[error(transparent)]
    RowTooLarge(#[from] RowTooLarge),
    /// The compressor failed (it works in memory: only an allocation failure or a bad level does this).
    #[error("cannot compress an append body with {codec}: {source}")]
    Compress {
        /// The codec.
        codec: &'static str,
        /// Its error.
        #[source]
        source: std::io::Error,
    },
}

/// A row that does not fit one request even alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "row {index} takes {size} bytes as sent ({raw} before compression), more than the {limit} one request may hold"
)]
pub struct RowTooLarge {
    /// The row's index in the append's rows.
    pub index: usize,
    /// Its size as sent, alone.
    pub size: usize,
    /// Its size before compression.
    pub raw: usize,
    /// The limit.
    pub limit: usize,
}

/// Cuts rows into request bodies of at most `limit` bytes as sent, in order. An iterator, so a caller can
/// send one body while the next is being compressed.
#[derive(Debug)]
pub struct Splitter<'a> {
    rows: &'a [Row],
    next: usize,
    compression: Compression,
    limit: usize,
    /// Uncompressed bytes to try in the next request.
    budget: usize,
    failed: bool,
}

/// How much smaller than the overshoot's proportion a retried cut aims, so it rarely overshoots twice.
const MARGIN: f64 = 0.95;

impl<'a> Splitter<'a> {
    /// Cuts `rows` into bodies compressed with `compression`, each at most `limit` bytes (at least 64).
    pub fn new(rows: &'a [Row], compression: Compression, limit: usize) -> Self {
        let limit = limit.max(64);
        let budget = match compression {
            Compression::None => limit,
            // JSON rows compress at least four times with either codec; the first cut learns the real ratio.
            Compression::Zstd(_) | Compression::Gzip(_) => limit.saturating_mul(4),
        };
        Self {
            rows,
            next: 0,
            compression,
            limit,
            budget,
            failed: false,
        }
    }

    /// The rows from `start` whose NDJSON fits `budget` bytes; at least one row, at most `max_rows`.
    fn cut_from(&self, start: usize, budget: usize, max_rows: usize) -> (usize, usize) {
        let mut end = start;
        let mut raw = 0;
        while end < self.rows.len() && end - start < max_rows {
            let size = self.rows[end].len() + 1;
            if end > start && raw + size > budget {
                break;
            }
            raw += size;
            end += 1;
        }
        (end, raw)
    }

    fn chunk(&mut self) -> Result<Chunk, SplitError> {
        let start = self.next;
        let mut max_rows = usize::MAX;
        loop {
            let (end, raw) = self.cut_from(start, self.budget, max_rows);
            let body = encode(&self.rows[start..end], raw, self.compression).map_err(|source| {
                SplitError::Compress {
                    codec: self.compression.name(),
                    source,
                }
            })?;
            if body.len() <= self.limit {
                let full = end < self.rows.len();
                if full && self.compression != Compression::None {
                    // Aim the next cut at the ratio this one showed.
                    self.budget = scaled(raw, self.limit, body.len());
                }
                self.next = end;
                return Ok(Chunk {
                    rows: start..end,
                    body,
                    raw_bytes: raw,
                });
            }
            if end - start == 1 {
                return Err(RowTooLarge {
                    index: start,
                    size: body.len(),
                    raw,
                    limit: self.limit,
                }
                .into());
            }
            // Too large: cut in proportion to the overshoot, and by at least one row so this ends.
            self.budget = scaled(raw, self.limit, body.len()).min(raw.saturating_sub(1));
            max_rows = end - start - 1;
        }
    }
}

/// `raw * limit / sent`, a little under, never zero.
fn scaled(raw: usize, limit: usize, sent: usize) -> usize {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an estimate: a few bytes either way only move a cut"
    )]
    let scaled = (raw as f64 * limit as f64 / sent.max(1) as f64 * MARGIN) as usize;
    scaled.max(1)
}

impl Iterator for Splitter<'_> {
    type Item = Result<Chunk, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.rows.len() {
            return None;
        }
        let chunk = self.chunk();
        self.failed = chunk.is_err();
        Some(chunk)
    }
}

/// How many bytes of NDJSON are gathered before they go to the compressor: enough that the codec is called
/// a few times per 100 KB rather than once per row, small enough to stay in cache.
const STAGING_BYTES: usize = 64 * 1024;

/// Writes `rows` as NDJSON (`raw` bytes) compressed as asked.
///
/// The rows stream into the compressor through a small staging buffer: the uncompressed body is never built
/// whole, which would copy every row once more and fault in a fresh buffer as large as the request's rows.
fn encode(rows: &[Row], raw: usize, compression: Compression) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::None => {
            let mut ndjson = Vec::with_capacity(raw);
            write_ndjson(rows, &mut ndjson)?;
            Ok(ndjson)
        }
        Compression::Zstd(level) => {
            let mut encoder =
                zstd::stream::write::Encoder::new(Vec::with_capacity(raw / 4 + 64), level)?;
            // The frame then says its size, as a one-shot compression's does, and the codec sizes its
            // window for it.
            encoder.set_pledged_src_size(Some(raw as u64))?;
            encoder.include_contentsize(true)?;
            staged(rows, encoder)?.finish()
        }
        Compression::Gzip(level) => {
            let encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(raw / 4 + 64),
                flate2::Compression::new(level.min(9)),
            );
            staged(rows, encoder)?.finish()
        }
    }
}

/// Writes `rows` into `codec` through the staging buffer, and hands the codec back to be finished.
fn staged<W: Write>(rows: &[Row], codec: W) -> std::io::Result<W> {
    let mut staging = std::io::BufWriter::with_capacity(STAGING_BYTES, codec);
    write_ndjson(rows, &mut staging)?;
    staging
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)
}

fn write_ndjson(rows: &[Row], out: &mut impl Write) -> std::io::Result<()> {
    for row in rows {
        let bytes = row.as_bytes();
        // JSON strings hold no raw line break, so one in a row is whitespace between tokens (a row written
        // across lines): made a space, the row means the same and stays one NDJSON line, as the service
        // reads lines. Same length, so the cut's sizes hold.
        if memchr::memchr2(b'\n', b'\r', bytes).is_some() {
            let spaced: Vec<u8> = bytes
                .iter()
                .map(|&byte| {
                    if matches!(byte, b'\n' | b'\r') {
                        b' '
                    } else {
                        byte
                    }
                })
                .collect();
            out.write_all(&spaced)?;
        } else {
            out.write_all(bytes)?;
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use proptest::prelude::*;

    use super::*;

    fn row(text: &str) -> Row {
        Row::parse(text.to_owned()).unwrap()
    }

    fn rows_of(sizes: &[usize]) -> Vec<Row> {
        // Each row is `{"V":"xxx…"}`: 8 bytes of frame plus the value.
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let value: String = (0..n.saturating_sub(8))
                    .map(|k| char::from(b'a' + u8::try_from((i * 7 + k * 13) % 26).unwrap()))
                    .collect();
                row(&format!(r#"{{"V":"{value}"}}"#))
            })
            .collect()
    }

    fn decode(body: &[u8], compression: Compression) -> Vec<u8> {
        match compression {
            Compression::None => body.to_vec(),
            Compression::Zstd(_) => zstd::stream::decode_all(body).unwrap(),
            Compression::Gzip(_) => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(body)
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
        }
    }

    #[test]
    fn a_body_of_exactly_the_limit_goes_in_one_request_and_one_byte_more_is_split() {
        // Two rows of 2,097,151 bytes plus their newlines: exactly 4,194,304.
        let exact = rows_of(&[2_097_151, 2_097_151]);
        let chunks: Vec<Chunk> = Splitter::new(&exact, Compression::None, MAX_REQUEST_BYTES)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].body.len(), MAX_REQUEST_BYTES);
        let over = rows_of(&[2_097_151, 2_097_152]);
        let chunks: Vec<Chunk> = Splitter::new(&over, Compression::None, MAX_REQUEST_BYTES)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            chunks.iter().map(|c| c.rows.clone()).collect::<Vec<_>>(),
            [0..1, 1..2]
        );
    }

    #[test]
    fn a_row_too_large_alone_is_named_after_the_requests_before_it() {
        let rows = rows_of(&[100, 100, 5_000, 100]);
        let got: Vec<Result<Chunk, SplitError>> =
            Splitter::new(&rows, Compression::None, 1_000).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap().rows, 0..2);
        let Err(SplitError::RowTooLarge(error)) = &got[1] else {
            panic!("{got:?}");
        };
        assert_eq!((error.index, error.raw, error.limit), (2, 5_001, 1_000));
    }

    #[test]
    fn compressed_bodies_stay_under_the_limit_and_fill_it() {
        // Incompressible-ish rows (varied letters) and a small limit force several cuts.
        let rows = rows_of(&[300; 2_000]);
        for compression in [Compression::Zstd(1), Compression::Gzip(1)] {
            let chunks: Vec<Chunk> = Splitter::new(&rows, compression, 16_384)
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(chunks.iter().all(|c| c.body.len() <= 16_384));
            // All but the last are reasonably full: the budget follows the ratio.
            let full = chunks[..chunks.len() - 1]
                .iter()
                .filter(|c| c.body.len() > 16_384 * 3 / 4)
                .count();
            assert!(full + 1 >= chunks.len() - 1, "{compression:?}: {chunks:?}");
        }
    }

    #[test]
    fn rows_written_across_lines_go_one_line_each_meaning_the_same() {
        let rows = [
            row("{\n  \"ID\": \"a\",\n  \"N\": [1,\r\n 2]\n}"),
            row("{\"ID\":\r\"b\\n\"}"),
            row(r#"{"ID":"c"}"#),
        ];
        for compression in [
            Compression::None,
            Compression::Zstd(1),
            Compression::Gzip(1),
        ] {
            let chunks: Vec<Chunk> = Splitter::new(&rows, compression, MAX_REQUEST_BYTES)
                .collect::<Result<_, _>>()
                .unwrap();
            let ndjson = decode(&chunks[0].body, compression);
            assert_eq!(ndjson.len(), chunks[0].raw_bytes);
            let lines: Vec<&[u8]> = ndjson.split(|b| *b == b'\n').collect();
            assert_eq!(
                lines.len(),
                4,
                "{compression:?}: three rows and the empty rest"
            );
            for (line, row) in lines.iter().zip(&rows) {
                let sent: serde_json::Value = serde_json::from_slice(line).unwrap();
                let given: serde_json::Value = serde_json::from_slice(row.as_bytes()).unwrap();
                assert_eq!(sent, given);
                assert!(!line.contains(&b'\r'));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn requests_hold_the_rows_in_order_under_the_limit(
            sizes in proptest::collection::vec(8_usize..3_000, 0..200),
            limit in 64_usize..20_000,
            codec in 0_u8..3,
        ) {
            let compression = match codec {
                0 => Compression::None,
                1 => Compression::Zstd(1),
                _ => Compression::Gzip(1),
            };
            let rows = rows_of(&sizes);
            let mut expected = Vec::new();
            write_ndjson(&rows, &mut expected).unwrap();
            let mut joined = Vec::new();
            let mut next = 0;
            for chunk in Splitter::new(&rows, compression, limit) {
                match chunk {
                    Ok(chunk) => {
                        prop_assert!(chunk.body.len() <= limit);
                        prop_assert_eq!(chunk.rows.start, next);
                        prop_assert!(!chunk.rows.is_empty());
                        next = chunk.rows.end;
                        let decoded = decode(&chunk.body, compression);
                        prop_assert_eq!(decoded.len(), chunk.raw_bytes);
                        joined.extend(decoded);
                    }
                    Err(SplitError::RowTooLarge(too_large)) => {
                        // Only a row that alone exceeds the limit stops the cut, and only where it stands.
                        prop_assert_eq!(too_large.index, next);
                        prop_assert!(too_large.size > limit);
                        expected.truncate(joined.len());
                        break;
                    }
                    Err(other) => prop_assert!(false, "{other}"),
                }
            }
            prop_assert_eq!(joined, expected);
        }
    }
}
