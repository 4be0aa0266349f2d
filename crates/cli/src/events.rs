//! Event files as the command takes them: a path or `-` for standard input, plain, gzip or zstd (told by
//! their first bytes), and what a file looks like when it yields no event.

use std::{
    fmt,
    io::{self, BufRead, BufReader, Cursor, Read},
    path::PathBuf,
};

use crate::error::{CliError, usage};

/// How much of the (decompressed) start of a file is kept to tell what it looks like.
const SNIFF_BYTES: usize = 64 * 1024;
/// The reader's buffer: large enough that lines rarely straddle a refill.
const BUFFER_BYTES: usize = 1 << 20;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How an event file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// Not compressed.
    None,
    /// gzip (one member or several).
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    fn of(magic: &[u8]) -> Self {
        if magic.starts_with(&GZIP_MAGIC) {
            Self::Gzip
        } else if magic.starts_with(&ZSTD_MAGIC) {
            Self::Zstd
        } else {
            Self::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }
}

/// An event file given on the command line: a path, or `-` for standard input.
#[derive(Debug, Clone)]
pub(crate) struct EventFile {
    /// As given.
    pub(crate) arg: PathBuf,
}

impl EventFile {
    pub(crate) fn new(arg: PathBuf) -> Self {
        Self { arg }
    }

    /// Standard input.
    pub(crate) fn is_stdin(&self) -> bool {
        self.arg.as_os_str() == "-"
    }

    /// The name in messages and in the manager's reasons.
    pub(crate) fn name(&self) -> PathBuf {
        if self.is_stdin() {
            PathBuf::from("(standard input)")
        } else {
            self.arg.clone()
        }
    }

    /// Checks up front that a file can be opened, so a wrong path is a usage error rather than a batch
    /// failed for a reason nobody will read. Standard input needs no check.
    pub(crate) fn check(&self, option: &str) -> Result<(), CliError> {
        if self.is_stdin() {
            return Ok(());
        }
        let path = &self.arg;
        match std::fs::File::open(path).and_then(|f| f.metadata()) {
            Ok(meta) if meta.is_file() => Ok(()),
            Ok(_) => Err(usage(format!("{option} {}: not a file", path.display()))),
            Err(e) => Err(usage(format!(
                "cannot read the event file {} ({option}): {e}",
                path.display()
            ))),
        }
    }

    /// Opens the file (decompressing it when its first bytes say gzip or zstd), reads its start to tell what
    /// it looks like, and refuses one that surely holds no event (empty, binary, a JSON array).
    pub(crate) fn open(&self, option: &str) -> Result<Opened, CliError> {
        let name = self.name();
        let shown = name.display().to_string();
        let cannot = |e: io::Error| {
            usage(format!(
                "cannot read the event file {shown} ({option}): {e}"
            ))
        };
        let raw: Box<dyn Read + Send> = if self.is_stdin() {
            Box::new(io::stdin())
        } else {
            Box::new(std::fs::File::open(&self.arg).map_err(cannot)?)
        };
        let mut raw = raw;
        let magic = read_up_to(&mut raw, 4).map_err(cannot)?;
        let compression = Compression::of(&magic);
        let raw: Box<dyn Read + Send> = Box::new(Cursor::new(magic).chain(raw));
        let mut decoded: Box<dyn Read + Send> = match compression {
            Compression::None => raw,
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw).map_err(cannot)?),
        };
        let start = read_up_to(&mut decoded, SNIFF_BYTES).map_err(|e| {
            if compression == Compression::None {
                cannot(e)
            } else {
                usage(format!(
                    "the event file {shown} ({option}) starts like {} but does not decompress: {e}",
                    compression.name()
                ))
            }
        })?;
        let looks = Looks::of(&start, start.len() < SNIFF_BYTES);
        if looks.holds_no_event() {
            return Err(no_event(&shown, option, compression, &looks));
        }
        let reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(
            BUFFER_BYTES,
            Cursor::new(start).chain(decoded),
        ));
        Ok(Opened {
            name,
            reader,
            compression,
            looks,
        })
    }
}

/// An opened event file, its start read.
pub(crate) struct Opened {
    /// The name in messages.
    pub(crate) name: PathBuf,
    /// The events, decompressed.
    pub(crate) reader: Box<dyn BufRead + Send>,
    /// How it was compressed.
    pub(crate) compression: Compression,
    /// What its start looks like.
    pub(crate) looks: Looks,
}

impl Opened {
    /// What is left of an opened file once its reader went to the upload: enough to describe it.
    pub(crate) fn described(name: PathBuf, compression: Compression, looks: Looks) -> Self {
        Self {
            name,
            reader: Box::new(io::empty()),
            compression,
            looks,
        }
    }

    /// The error for a file that yielded no event: naming it and what it looks like.
    pub(crate) fn no_event_error(&self, option: &str) -> CliError {
        no_event(
            &self.name.display().to_string(),
            option,
            self.compression,
            &self.looks,
        )
    }
}

fn no_event(shown: &str, option: &str, compression: Compression, looks: &Looks) -> CliError {
    let compressed = match compression {
        Compression::None => String::new(),
        other => format!(" (decompressed from {})", other.name()),
    };
    usage(format!(
        "the event file {shown} ({option}) yields no event: it looks like {looks}{compressed}. An event file holds one JSON event per line, {{\"message\": {{\"metadata\": {{\"table\", \"columns\"}}, \"data\"}}, \"metadata\": {{\"job_id\"}}}}, plain, gzip or zstd (see docs/INPUT.md); nothing was sent"
    ))
}

/// Reads until `limit` bytes or the end.
fn read_up_to(reader: &mut dyn Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::with_capacity(limit.min(SNIFF_BYTES));
    reader.take(limit as u64).read_to_end(&mut buffer)?;
    Ok(buffer)
}

/// What the start of a file looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Looks {
    /// Nothing, or only blank lines.
    Empty,
    /// Bytes that are not text.
    Binary,
    /// A JSON array.
    JsonArray,
    /// A first line that is a JSON object but not an event, and why.
    NotAnEvent(String),
    /// A first line that is JSON but not an object.
    JsonValue,
    /// No line break in the first bytes read.
    LongLine,
    /// Comma-separated text.
    Csv,
    /// Other text.
    Text,
    /// A first line that is an event.
    Events,
}

impl Looks {
    /// Tells what `start` looks like; `whole` when it is the whole file.
    pub(crate) fn of(start: &[u8], whole: bool) -> Self {
        let text = start.strip_prefix(b"\xef\xbb\xbf").unwrap_or(start);
        if text.trim_ascii().is_empty() {
            return if whole { Self::Empty } else { Self::Text };
        }
        let utf8_ok = match std::str::from_utf8(text) {
            Ok(_) => true,
            // A character cut at the end of what was read is not a fault of the file.
            Err(e) => e.error_len().is_none() && !whole,
        };
        if !utf8_ok
            || text
                .iter()
                .any(|&b| b == 0 || (b < 0x20 && !b"\t\n\r\x0c".contains(&b)))
        {
            return Self::Binary;
        }
        let trimmed = text.trim_ascii_start();
        if trimmed.starts_with(b"[") {
            return Self::JsonArray;
        }
        let first = trimmed.split(|&b| b == b'\n').next().unwrap_or_default();
        if first.len() == trimmed.len() && !whole {
            return Self::LongLine;
        }
        let first = first.trim_ascii();
        match serde_json::from_slice::<serde_json::Value>(first) {
            Ok(serde_json::Value::Object(_)) => match snowpipe_manager::check_event_line(first) {
                Ok(()) => Self::Events,
                Err(problem) => Self::NotAnEvent(problem),
            },
            Ok(_) => Self::JsonValue,
            Err(_) if first.contains(&b',') && !first.starts_with(b"{") => Self::Csv,
            Err(_) => Self::Text,
        }
    }

    /// Whether a file whose start looks like this surely yields no event, whatever follows.
    fn holds_no_event(&self) -> bool {
        matches!(self, Self::Empty | Self::Binary | Self::JsonArray)
    }
}

impl fmt::Display for Looks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("an empty file (no line holds anything)"),
            Self::Binary => f.write_str("binary data, not text"),
            Self::JsonArray => f.write_str("a JSON array, not one event per line"),
            Self::NotAnEvent(problem) => {
                write!(f, "JSON objects that are not events (line 1: {problem})")
            }
            Self::JsonValue => f.write_str("JSON values that are not objects"),
            Self::LongLine => write!(
                f,
                "text without a line break in its first {} KiB (one event per line is expected)",
                SNIFF_BYTES / 1024
            ),
            Self::Csv => f.write_str("CSV or other comma-separated text, not JSON"),
            Self::Text => f.write_str("text that is not JSON"),
            Self::Events => f.write_str("events, but none could be read"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"message":{"metadata":{"table":"T","columns":{"ID":"string"}},"data":{"ID":"a"}},"metadata":{"job_id":7}}"#;

    #[test]
    fn starts_are_told_apart() {
        let check = |start: &[u8], whole: bool, expect: Looks| {
            assert_eq!(
                Looks::of(start, whole),
                expect,
                "{:?}",
                String::from_utf8_lossy(start)
            );
        };
        check(b"", true, Looks::Empty);
        check(b"\n  \n", true, Looks::Empty);
        check(b"\x00\x01\x02binary", true, Looks::Binary);
        check(b"\xff\xfe\xfd", true, Looks::Binary);
        check(b"[{\"a\": 1}]\n", true, Looks::JsonArray);
        check(b"  [\n", true, Looks::JsonArray);
        check(b"id,name\n1,a\n", true, Looks::Csv);
        check(b"hello world\n", true, Looks::Text);
        check(b"42\n", true, Looks::JsonValue);
        check(b"xxxxxxxx", false, Looks::LongLine);
        check(format!("{EVENT}\n").as_bytes(), true, Looks::Events);
        let Looks::NotAnEvent(problem) = Looks::of(b"{\"a\": 1}\n", true) else {
            panic!("not an event")
        };
        assert!(problem.contains("message"), "{problem}");
        assert!(
            Looks::JsonArray
                .to_string()
                .contains("a JSON array, not one event per line")
        );
        assert!(Looks::Binary.to_string().contains("binary data"));
    }
}
