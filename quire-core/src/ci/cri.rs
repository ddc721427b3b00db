//! CRI log lines: `<timestamp> <stdout|stderr> <F|P> <text>\n`.
//!
//! The timestamp is RFC 3339 UTC with nine fractional digits. A line of the
//! command's output longer than [`MAX_PIECE`] bytes is written as `P` pieces of
//! exactly `MAX_PIECE` bytes followed by an `F` piece holding the rest, so every
//! logical line ends in exactly one `F` piece. Text is kept byte for byte
//! (it never contains `\n`; anything else, including invalid UTF-8, is as read).

use std::io::{self, Write};

/// Longest text of one CRI piece: 16 KiB, as the kubelet writes them.
pub const MAX_PIECE: usize = 16 * 1024;

/// Which output stream of a command a piece came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

impl OutputStream {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }
}

impl std::fmt::Display for OutputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `2026-11-27T12:00:00.123456789Z`: UTC, always nine fractional digits.
pub fn format_timestamp(ts: jiff::Timestamp) -> String {
    format!("{ts:.9}")
}

/// Write one piece as a CRI line, `timestamp` already formatted.
pub fn write_piece(
    out: &mut impl Write,
    timestamp: &str,
    stream: OutputStream,
    partial: bool,
    text: &[u8],
) -> io::Result<()> {
    out.write_all(timestamp.as_bytes())?;
    out.write_all(b" ")?;
    out.write_all(stream.as_str().as_bytes())?;
    out.write_all(if partial { b" P " } else { b" F " })?;
    out.write_all(text)?;
    out.write_all(b"\n")
}

/// The pieces of one complete line (without its newline): `(partial, text)`.
/// An empty line is one empty `F` piece.
pub fn pieces(line: &[u8]) -> impl Iterator<Item = (bool, &[u8])> {
    let count = line.len().div_ceil(MAX_PIECE).max(1);
    (0..count).map(move |i| {
        let start = i * MAX_PIECE;
        let end = (start + MAX_PIECE).min(line.len());
        (i + 1 < count, &line[start..end])
    })
}

/// Cuts one stream of bytes into CRI pieces as it arrives. Holds at most
/// [`MAX_PIECE`] bytes: once more than that has come without a newline, a `P`
/// piece goes out.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; `emit(partial, text)` gets each piece that is now final.
    pub fn push<E>(&mut self, data: &[u8], mut emit: impl FnMut(bool, &[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut rest = data;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let segment = &rest[..nl];
            if self.buf.is_empty() {
                emit_line(segment, &mut emit)?;
            } else {
                self.buf.extend_from_slice(segment);
                emit_line(&self.buf, &mut emit)?;
                self.buf.clear();
            }
            rest = &rest[nl + 1..];
        }
        if self.buf.is_empty() {
            // Long stretches without a newline go out straight from `data`.
            while rest.len() > MAX_PIECE {
                emit(true, &rest[..MAX_PIECE])?;
                rest = &rest[MAX_PIECE..];
            }
            self.buf.extend_from_slice(rest);
        } else {
            self.buf.extend_from_slice(rest);
            // Exactly MAX_PIECE bytes stay: a newline next would make them an F piece.
            let mut start = 0;
            while self.buf.len() - start > MAX_PIECE {
                emit(true, &self.buf[start..start + MAX_PIECE])?;
                start += MAX_PIECE;
            }
            self.buf.drain(..start);
        }
        Ok(())
    }

    /// The stream ended: a last line without a newline becomes an `F` piece.
    pub fn finish<E>(&mut self, mut emit: impl FnMut(bool, &[u8]) -> Result<(), E>) -> Result<(), E> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.buf);
        emit_line(&line, &mut emit)
    }
}

fn emit_line<E>(line: &[u8], emit: &mut impl FnMut(bool, &[u8]) -> Result<(), E>) -> Result<(), E> {
    for (partial, text) in pieces(line) {
        emit(partial, text)?;
    }
    Ok(())
}

/// One parsed CRI log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriLine<'a> {
    pub timestamp: jiff::Timestamp,
    pub stream: OutputStream,
    /// `P`: the line continues in the next piece of the same stream.
    pub partial: bool,
    pub text: &'a [u8],
}

/// Parse one log line (a trailing `\n` is allowed). `None` if it is not CRI.
pub fn parse_line(line: &[u8]) -> Option<CriLine<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut parts = line.splitn(4, |&b| b == b' ');
    let timestamp = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let stream = match parts.next()? {
        b"stdout" => OutputStream::Stdout,
        b"stderr" => OutputStream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    // A writer may drop the space before empty text.
    let text = parts.next().unwrap_or(b"");
    if text.contains(&b'\n') {
        return None;
    }
    Some(CriLine {
        timestamp,
        stream,
        partial,
        text,
    })
}

/// Rebuild the logical lines of a whole log, in the order their `F` pieces
/// appear; pieces of one stream join even when the other stream's lines come
/// between them. `None` if a line is not CRI or a stream ends on a `P` piece.
pub fn reassemble(log: &[u8]) -> Option<Vec<(OutputStream, Vec<u8>)>> {
    let mut lines = Vec::new();
    let mut open: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut dangling = [false; 2];
    if log.is_empty() {
        return Some(lines);
    }
    let body = log.strip_suffix(b"\n")?;
    for raw in body.split(|&b| b == b'\n') {
        let line = parse_line(raw)?;
        let i = line.stream as usize;
        open[i].extend_from_slice(line.text);
        dangling[i] = line.partial;
        if !line.partial {
            lines.push((line.stream, std::mem::take(&mut open[i])));
        }
    }
    if dangling.iter().any(|&d| d) {
        return None;
    }
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-11-27T12:00:00.123456789Z";

    fn split_all(chunks: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
        let mut sp = LineSplitter::new();
        let mut got = Vec::new();
        for c in chunks {
            sp.push(c, |p, t| {
                got.push((p, t.to_vec()));
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        sp.finish(|p, t| {
            got.push((p, t.to_vec()));
            Ok::<(), ()>(())
        })
        .unwrap();
        got
    }

    fn to_log(stream: OutputStream, got: &[(bool, Vec<u8>)]) -> Vec<u8> {
        let mut log = Vec::new();
        for (p, t) in got {
            write_piece(&mut log, TS, stream, *p, t).unwrap();
        }
        log
    }

    #[test]
    fn timestamp_has_nine_digits() {
        let ts: jiff::Timestamp = "2026-11-27T12:00:00Z".parse().unwrap();
        assert_eq!(format_timestamp(ts), "2026-11-27T12:00:00.000000000Z");
        let ts: jiff::Timestamp = "2026-11-27T13:00:00.5+01:00".parse().unwrap();
        assert_eq!(format_timestamp(ts), "2026-11-27T12:00:00.500000000Z");
    }

    #[test]
    fn exact_lines() {
        let mut log = Vec::new();
        write_piece(&mut log, TS, OutputStream::Stdout, false, b"hello").unwrap();
        write_piece(&mut log, TS, OutputStream::Stderr, true, b"").unwrap();
        write_piece(&mut log, TS, OutputStream::Stderr, false, b"\xff\xfe ok").unwrap();
        assert_eq!(
            log,
            b"2026-11-27T12:00:00.123456789Z stdout F hello\n\
              2026-11-27T12:00:00.123456789Z stderr P \n\
              2026-11-27T12:00:00.123456789Z stderr F \xff\xfe ok\n"
        );
    }

    #[test]
    fn splits_on_newlines_across_chunks() {
        let got = split_all(&[b"ab", b"c\n\nd", b"e\nf"]);
        let want: Vec<(bool, Vec<u8>)> = vec![
            (false, b"abc".to_vec()),
            (false, b"".to_vec()),
            (false, b"de".to_vec()),
            (false, b"f".to_vec()),
        ];
        assert_eq!(got, want);
        assert_eq!(split_all(&[b"x\n"]), vec![(false, b"x".to_vec())]);
        assert!(split_all(&[b""]).is_empty());
    }

    #[test]
    fn long_lines_become_p_pieces() {
        let exact = vec![b'a'; MAX_PIECE];
        let mut input = exact.clone();
        input.push(b'\n');
        // Exactly 16 KiB fits one F piece, even when fed byte by byte.
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(split_all(&bytewise), vec![(false, exact.clone())]);
        assert_eq!(split_all(&[&input]), vec![(false, exact.clone())]);

        let mut long = vec![b'b'; 2 * MAX_PIECE + 5];
        long.push(b'\n');
        long.extend_from_slice(b"tail");
        let want = vec![
            (true, vec![b'b'; MAX_PIECE]),
            (true, vec![b'b'; MAX_PIECE]),
            (false, vec![b'b'; 5]),
            (false, b"tail".to_vec()),
        ];
        for chunk in [1, 7, 4096, MAX_PIECE, MAX_PIECE + 1, long.len()] {
            let chunks: Vec<&[u8]> = long.chunks(chunk).collect();
            assert_eq!(split_all(&chunks), want, "chunk size {chunk}");
        }
        let log = to_log(OutputStream::Stdout, &want);
        let first = log.split(|&b| b == b'\n').next().unwrap();
        assert_eq!(first.len(), TS.len() + " stdout P ".len() + MAX_PIECE);
        assert_eq!(
            reassemble(&log).unwrap(),
            vec![
                (OutputStream::Stdout, vec![b'b'; 2 * MAX_PIECE + 5]),
                (OutputStream::Stdout, b"tail".to_vec())
            ]
        );
    }

    #[test]
    fn parse_line_fields() {
        let l = parse_line(b"2026-11-27T12:00:00.123456789Z stderr P a b \xff\n").unwrap();
        assert_eq!(l.stream, OutputStream::Stderr);
        assert!(l.partial);
        assert_eq!(l.text, b"a b \xff");
        assert_eq!(l.timestamp, TS.parse().unwrap());
        assert_eq!(parse_line(format!("{TS} stdout F").as_bytes()).unwrap().text, b"");
        assert!(parse_line(b"").is_none());
        assert!(parse_line(format!("{TS} stdin F x").as_bytes()).is_none());
        assert!(parse_line(format!("{TS} stdout X x").as_bytes()).is_none());
        assert!(parse_line(b"yesterday stdout F x").is_none());
        assert!(parse_line(format!("{TS} stdout F a\nb").as_bytes()).is_none());
    }

    #[test]
    fn reassemble_interleaved_streams() {
        let mut log = Vec::new();
        write_piece(&mut log, TS, OutputStream::Stdout, true, b"long ").unwrap();
        write_piece(&mut log, TS, OutputStream::Stderr, false, b"err").unwrap();
        write_piece(&mut log, TS, OutputStream::Stdout, false, b"line").unwrap();
        assert_eq!(
            reassemble(&log).unwrap(),
            vec![
                (OutputStream::Stderr, b"err".to_vec()),
                (OutputStream::Stdout, b"long line".to_vec())
            ]
        );
        assert_eq!(reassemble(b"").unwrap(), vec![]);
        let mut dangling = Vec::new();
        write_piece(&mut dangling, TS, OutputStream::Stdout, true, b"x").unwrap();
        assert!(reassemble(&dangling).is_none());
        assert!(reassemble(b"no newline").is_none());
    }

    /// Run lengths that land on, next to, and far from piece boundaries.
    fn run_len() -> impl proptest::strategy::Strategy<Value = usize> {
        proptest::prop_oneof![
            0usize..64,
            (MAX_PIECE - 2)..(MAX_PIECE + 3),
            (2 * MAX_PIECE - 2)..(2 * MAX_PIECE + 3),
            0usize..(3 * MAX_PIECE),
        ]
    }

    proptest::proptest! {
        // Any bytes, cut into any chunks, come back out of the log unchanged.
        // The data is random bytes mixed with long runs of one byte (which may
        // be a newline), so long lines are cheap to generate.
        #[test]
        fn split_then_parse_is_lossless(
            parts in proptest::collection::vec(
                (
                    proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                    run_len(),
                    proptest::prop_oneof![proptest::strategy::Just(b'\n'), proptest::num::u8::ANY],
                ),
                0..6,
            ),
            cuts in proptest::collection::vec(1usize..(2 * MAX_PIECE), 1..6),
        ) {
            let mut data = Vec::new();
            for (noise, run, byte) in &parts {
                data.extend_from_slice(noise);
                // Many empty lines test nothing new and are slow to check.
                let run = if *byte == b'\n' { run % 64 } else { *run };
                data.resize(data.len() + run, *byte);
            }
            let mut chunks = Vec::new();
            let mut rest = &data[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = cuts[i % cuts.len()].min(rest.len());
                chunks.push(&rest[..n]);
                rest = &rest[n..];
                i += 1;
            }
            let got = split_all(&chunks);
            // Canonical pieces: P ones are full, and a line continued by P
            // never ends in an empty F piece.
            let mut after_p = false;
            for (partial, text) in &got {
                proptest::prop_assert!(text.len() <= MAX_PIECE);
                proptest::prop_assert!(!*partial || text.len() == MAX_PIECE);
                proptest::prop_assert!(!after_p || !text.is_empty());
                after_p = *partial;
            }
            let log = to_log(OutputStream::Stderr, &got);
            let lines = reassemble(&log).unwrap();
            let mut rebuilt = Vec::new();
            for (n, (stream, text)) in lines.iter().enumerate() {
                proptest::prop_assert_eq!(*stream, OutputStream::Stderr);
                if n > 0 {
                    rebuilt.push(b'\n');
                }
                rebuilt.extend_from_slice(text);
            }
            // A trailing newline ends the last line rather than starting a new one.
            let mut want = data.clone();
            if want.last() == Some(&b'\n') {
                want.pop();
            }
            proptest::prop_assert_eq!(rebuilt, want);
        }
    }
}
