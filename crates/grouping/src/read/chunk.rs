//! Lines gathered into chunks, so that several threads can decode a file while one thread reads it.
//!
//! Decoding a line (JSON validation, the `UUID_TS` splice) costs far more than finding it, so the reading
//! thread only splits lines and copies them into a chunk; whole chunks go to the decoding threads, and
//! their results are taken back in chunk order, which keeps every table's events in file order.

use std::ops::Range;

use super::lines::Line;

/// About how many bytes of lines a chunk holds before it is handed on: large enough that handing over
/// costs nothing next to decoding, small enough that a few chunks in flight stay a sliver of the batch.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// Consecutive lines of a file, copied back to back.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    bytes: Vec<u8>,
    lines: Vec<Entry>,
}

#[derive(Debug)]
enum Entry {
    Text {
        number: u64,
        text: Range<usize>,
    },
    TooLong {
        number: u64,
        len: u64,
        head: Range<usize>,
        tail: Range<usize>,
    },
}

impl Chunk {
    /// An empty chunk with room for about `bytes` bytes of lines.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            lines: Vec::new(),
        }
    }

    /// Copies in line `number`.
    pub(crate) fn push(&mut self, number: u64, line: Line<'_>) {
        let entry = match line {
            Line::Text(text) => Entry::Text {
                number,
                text: self.copy(text),
            },
            Line::TooLong { len, head, tail } => Entry::TooLong {
                number,
                len,
                head: self.copy(head),
                tail: self.copy(tail),
            },
        };
        self.lines.push(entry);
    }

    fn copy(&mut self, part: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(part);
        start..self.bytes.len()
    }

    /// Empties the chunk, keeping its buffers for the next lines.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.lines.clear();
    }

    /// The bytes held so far.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// How many lines have been pushed.
    pub(crate) fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// Whether no line has been pushed.
    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The lines with their numbers, in the order pushed.
    pub(crate) fn lines(&self) -> impl Iterator<Item = (u64, Line<'_>)> {
        self.lines.iter().map(|entry| match entry {
            Entry::Text { number, text } => (*number, Line::Text(&self.bytes[text.clone()])),
            Entry::TooLong {
                number,
                len,
                head,
                tail,
            } => (
                *number,
                Line::TooLong {
                    len: *len,
                    head: &self.bytes[head.clone()],
                    tail: &self.bytes[tail.clone()],
                },
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Chunk, Line};

    #[test]
    fn lines_come_back_as_pushed() {
        let mut chunk = Chunk::with_capacity(16);
        assert!(chunk.is_empty());
        chunk.push(1, Line::Text(b"ab"));
        chunk.push(
            3,
            Line::TooLong {
                len: 9000,
                head: b"hh",
                tail: b"t",
            },
        );
        chunk.push(4, Line::Text(b""));
        assert_eq!((chunk.len(), chunk.line_count()), (5, 3));
        let back: Vec<String> = chunk
            .lines()
            .map(|(n, line)| match line {
                Line::Text(t) => format!("{n}:{}", String::from_utf8_lossy(t)),
                Line::TooLong { len, head, tail } => format!(
                    "{n}:{len}:{}..{}",
                    String::from_utf8_lossy(head),
                    String::from_utf8_lossy(tail)
                ),
            })
            .collect();
        assert_eq!(back, ["1:ab", "3:9000:hh..t", "4:"]);
        chunk.clear();
        assert_eq!((chunk.is_empty(), chunk.len()), (true, 0));
        chunk.push(9, Line::Text(b"z"));
        assert_eq!(chunk.lines().count(), 1);
    }
}
