//! Splitting a byte stream into lines with a maximum length, without ever holding an over-long line.

use std::io::{self, BufRead};

use memchr::memchr;

/// How much of an over-long line's start and end is kept, to look for its job id.
const KEEP: usize = 4096;

/// One line, without its `\n`.
#[derive(Clone, Copy)]
pub(crate) enum Line<'a> {
    /// A line within the limit.
    Text(&'a [u8]),
    /// A line over the limit: its length and its first and last few KiB.
    TooLong {
        len: u64,
        head: &'a [u8],
        tail: &'a [u8],
    },
}

/// The start and end of an over-long line being skipped.
struct Overflow {
    len: u64,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Overflow {
    fn new(first: &[u8]) -> Self {
        let mut this = Self {
            len: 0,
            head: Vec::new(),
            tail: Vec::new(),
        };
        this.push(first);
        this
    }

    fn push(&mut self, part: &[u8]) {
        self.len += part.len() as u64;
        let room = KEEP.saturating_sub(self.head.len());
        self.head.extend_from_slice(&part[..room.min(part.len())]);
        self.tail
            .extend_from_slice(&part[part.len().saturating_sub(KEEP)..]);
        let excess = self.tail.len().saturating_sub(KEEP);
        self.tail.drain(..excess);
    }

    fn emit(&self) -> Line<'_> {
        Line::TooLong {
            len: self.len,
            head: &self.head,
            tail: &self.tail,
        }
    }
}

/// Calls `f` with each line's 1-based number and contents; a final line without `\n` counts.
///
/// Lines that fit in the reader's buffer are passed without copying.
///
/// # Errors
/// The number of the line being read and the error, when reading fails.
pub(crate) fn for_each_line<R: BufRead>(
    reader: &mut R,
    max: usize,
    mut f: impl FnMut(u64, Line<'_>),
) -> Result<(), (u64, io::Error)> {
    let mut number = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    let mut overflow: Option<Overflow> = None;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((number + 1, e)),
        };
        if chunk.is_empty() {
            if let Some(over) = overflow.take() {
                f(number + 1, over.emit());
            } else if !pending.is_empty() {
                f(number + 1, Line::Text(&pending));
            }
            return Ok(());
        }
        let Some(newline) = memchr(b'\n', chunk) else {
            let taken = chunk.len();
            if let Some(over) = &mut overflow {
                over.push(chunk);
            } else if pending.len() + taken > max {
                let mut over = Overflow::new(&pending);
                over.push(chunk);
                overflow = Some(over);
                pending = Vec::new();
            } else {
                pending.extend_from_slice(chunk);
            }
            reader.consume(taken);
            continue;
        };
        number += 1;
        let part = &chunk[..newline];
        if let Some(mut over) = overflow.take() {
            over.push(part);
            f(number, over.emit());
        } else if pending.len() + part.len() > max {
            let mut over = Overflow::new(&pending);
            over.push(part);
            f(number, over.emit());
            pending.clear();
        } else if pending.is_empty() {
            f(number, Line::Text(part));
        } else {
            pending.extend_from_slice(part);
            f(number, Line::Text(&pending));
            pending.clear();
        }
        reader.consume(newline + 1);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Read};

    use super::{Line, for_each_line};

    #[derive(Debug, PartialEq)]
    enum Got {
        Text(u64, String),
        TooLong(u64, u64, String, String),
    }

    fn lines(input: &[u8], max: usize, capacity: usize) -> Vec<Got> {
        let mut reader = BufReader::with_capacity(capacity, input);
        let mut got = Vec::new();
        for_each_line(&mut reader, max, |n, line| {
            got.push(match line {
                Line::Text(t) => Got::Text(n, String::from_utf8_lossy(t).into_owned()),
                Line::TooLong { len, head, tail } => Got::TooLong(
                    n,
                    len,
                    String::from_utf8_lossy(head).into_owned(),
                    String::from_utf8_lossy(tail).into_owned(),
                ),
            });
        })
        .unwrap();
        got
    }

    #[test]
    fn splits_on_newlines_whatever_the_buffer_size() {
        let input = b"ab\n\ncd\r\nlast";
        for capacity in [1, 2, 3, 5, 64] {
            assert_eq!(
                lines(input, 100, capacity),
                vec![
                    Got::Text(1, "ab".into()),
                    Got::Text(2, String::new()),
                    Got::Text(3, "cd\r".into()),
                    Got::Text(4, "last".into()),
                ],
                "capacity {capacity}"
            );
        }
    }

    #[test]
    fn the_limit_is_inclusive_and_long_lines_are_reported_with_their_length() {
        for capacity in [1, 4, 64] {
            assert_eq!(
                lines(b"abcd\nabcde\nxy\n", 4, capacity),
                vec![
                    Got::Text(1, "abcd".into()),
                    Got::TooLong(2, 5, "abcde".into(), "abcde".into()),
                    Got::Text(3, "xy".into()),
                ],
                "capacity {capacity}"
            );
        }
        assert_eq!(
            lines(b"abcdef", 4, 2),
            vec![Got::TooLong(1, 6, "abcdef".into(), "abcdef".into())]
        );
    }

    #[test]
    fn over_long_lines_keep_only_their_ends() {
        let long = format!("H{}T", "x".repeat(20_000));
        let got = lines(format!("{long}\nok").as_bytes(), 100, 1000);
        let Got::TooLong(1, len, head, tail) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(*len, 20_002);
        assert!(head.starts_with('H') && head.len() == 4096);
        assert!(tail.ends_with('T') && tail.len() == 4096);
        assert_eq!(got[1], Got::Text(2, "ok".into()));
    }

    #[test]
    fn read_errors_name_the_line() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("disk gone"));
                }
                self.0 -= 1;
                buf[..2].copy_from_slice(b"a\n");
                Ok(2)
            }
        }
        let mut reader = BufReader::with_capacity(2, Failing(2));
        let err = for_each_line(&mut reader, 10, |_, _| {}).unwrap_err();
        assert_eq!(err.0, 3);
        assert_eq!(err.1.to_string(), "disk gone");
    }
}
