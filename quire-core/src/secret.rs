//! Secret redaction: every occurrence of a secret value becomes `***`.
//!
//! Occurrences that overlap or touch through an overlap (two secrets sharing
//! bytes, or a secret overlapping itself) are merged into one `***`, so no
//! byte of any occurrence survives. Redaction works on whole buffers
//! ([`Redactor::redact`]) and on streams ([`StreamRedactor`]), where a secret
//! may arrive split across reads or contain a newline: the stream redactor
//! holds back only a tail that could still be the start of a secret.

use std::borrow::{Borrow, Cow};

/// What a redacted occurrence is replaced with.
pub const MASK: &[u8] = b"***";

/// The shortest line of a multi-line secret that is masked on its own:
/// shorter ones (`}`, `---`) would mask ordinary text everywhere.
pub const MIN_LINE_MASK: usize = 4;

/// A set of secret values to hide.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Distinct non-empty secrets, longest first.
    secrets: Vec<Vec<u8>>,
    /// `starts[b]`: some secret begins with byte `b` (cheap skip while scanning).
    starts: Box<[bool]>,
}

impl Redactor {
    /// A redactor for these values; empty values are ignored.
    pub fn new(values: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let mut secrets: Vec<Vec<u8>> = values.into_iter().filter(|v| !v.is_empty()).collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        let mut starts = vec![false; 256].into_boxed_slice();
        for s in &secrets {
            starts[usize::from(s[0])] = true;
        }
        Redactor { secrets, starts }
    }

    /// A redactor for declared secret values. A value that spans lines also
    /// has each of its lines (trimmed, when at least [`MIN_LINE_MASK`] bytes)
    /// masked on its own: a tool that re-indents a key or changes its line
    /// endings must not reveal it line by line.
    pub fn for_secrets(values: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let mut all = Vec::new();
        for value in values {
            if value.contains(&b'\n') {
                for line in value.split(|&b| b == b'\n') {
                    let line = line.trim_ascii();
                    if line.len() >= MIN_LINE_MASK {
                        all.push(line.to_vec());
                    }
                }
            }
            all.push(value);
        }
        Redactor::new(all)
    }

    /// True when there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Length of the longest secret (0 without secrets).
    pub fn max_len(&self) -> usize {
        self.secrets.first().map_or(0, Vec::len)
    }

    /// `bytes` with every occurrence of every secret replaced by `***`.
    /// Borrows when nothing was found.
    pub fn redact<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if self.is_empty() {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::new();
        let mut state = ScanState::default();
        let stop = self.scan(bytes, true, &mut state, &mut out);
        debug_assert_eq!(stop, bytes.len());
        if !state.found {
            return Cow::Borrowed(bytes);
        }
        Cow::Owned(out)
    }

    /// [`Redactor::redact`] for text. A secret that is not valid UTF-8 on its
    /// own could cut a character in two; such leftovers become U+FFFD.
    pub fn redact_str(&self, s: &str) -> String {
        match self.redact(s.as_bytes()) {
            Cow::Borrowed(_) => s.to_string(),
            Cow::Owned(v) => match String::from_utf8(v) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            },
        }
    }

    /// A redactor for one stream of bytes.
    pub fn stream(&self) -> StreamRedactor<&Redactor> {
        StreamRedactor::new(self)
    }

    /// Length of the longest occurrence starting at `buf[at..]`, or `None`
    /// when one could still start there once more bytes arrive (only when
    /// `last` is false). `Some(0)`: nothing starts here.
    fn match_at(&self, buf: &[u8], at: usize, last: bool) -> Option<usize> {
        let rest = &buf[at..];
        if !self.starts[usize::from(rest[0])] {
            return Some(0);
        }
        let mut undecided = false;
        for s in &self.secrets {
            if rest.starts_with(s) {
                // Longest first: once one matches, only a longer, still
                // incomplete candidate could beat it, and those came earlier.
                return if undecided { None } else { Some(s.len()) };
            }
            if !last && rest.len() < s.len() && s.starts_with(rest) {
                undecided = true;
            }
        }
        if undecided { None } else { Some(0) }
    }

    /// Redact `buf` from the start, appending output to `out`. Returns the
    /// index where scanning stopped: `buf.len()` when `last`, otherwise the
    /// first position that could still begin a secret. Bytes before that index
    /// are dealt with (emitted, or covered by the open mask in `state`).
    fn scan(&self, buf: &[u8], last: bool, state: &mut ScanState, out: &mut Vec<u8>) -> usize {
        let mut plain_from = 0;
        let mut at = 0;
        while at < buf.len() {
            if let Some(end) = state.mask_end
                && at >= end
            {
                out.extend_from_slice(MASK);
                state.mask_end = None;
                plain_from = end;
            }
            let Some(len) = self.match_at(buf, at, last) else {
                break;
            };
            if len > 0 {
                state.found = true;
                match state.mask_end {
                    None => {
                        out.extend_from_slice(&buf[plain_from..at]);
                        state.mask_end = Some(at + len);
                    }
                    Some(end) => state.mask_end = Some(end.max(at + len)),
                }
            }
            at += 1;
        }
        if let Some(end) = state.mask_end
            && (last || at >= end)
        {
            out.extend_from_slice(MASK);
            state.mask_end = None;
            plain_from = end;
        }
        if state.mask_end.is_none() && plain_from < at {
            out.extend_from_slice(&buf[plain_from..at]);
        }
        at
    }
}

#[derive(Debug, Default)]
struct ScanState {
    /// End (exclusive, relative to the scanned buffer) of a mask whose `***`
    /// has not been written yet.
    mask_end: Option<usize>,
    /// Some secret was found.
    found: bool,
}

/// Redacts one stream as it is read, chunk by chunk. `R` is a `&Redactor`,
/// or an owned one for a stream that outlives any borrow (`print` output).
#[derive(Debug)]
pub struct StreamRedactor<R: Borrow<Redactor>> {
    redactor: R,
    /// Raw bytes not yet decided: at most `max_len - 1` of them between calls.
    pending: Vec<u8>,
    state: ScanState,
}

impl<R: Borrow<Redactor>> StreamRedactor<R> {
    pub fn new(redactor: R) -> Self {
        StreamRedactor {
            redactor,
            pending: Vec::new(),
            state: ScanState::default(),
        }
    }

    /// Feed the next chunk; returns the redacted bytes that are now final.
    pub fn push<'a>(&mut self, chunk: &'a [u8], out: &'a mut Vec<u8>) -> &'a [u8] {
        let redactor = self.redactor.borrow();
        if redactor.is_empty() {
            return chunk;
        }
        out.clear();
        self.pending.extend_from_slice(chunk);
        let stop = redactor.scan(&self.pending, false, &mut self.state, out);
        self.pending.drain(..stop);
        if let Some(end) = self.state.mask_end.as_mut() {
            *end -= stop;
        }
        out
    }

    /// The stream ended: returns what was held back, redacted.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let redactor = self.redactor.borrow();
        if !redactor.is_empty() {
            redactor.scan(&self.pending, true, &mut self.state, &mut out);
            self.pending.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(secrets: &[&str]) -> Redactor {
        Redactor::new(secrets.iter().map(|s| s.as_bytes().to_vec()))
    }

    fn red(rd: &Redactor, s: &str) -> String {
        rd.redact_str(s)
    }

    /// Feed `input` to a stream redactor in the given chunk sizes.
    fn streamed(rd: &Redactor, input: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut st = rd.stream();
        let mut got = Vec::new();
        let mut buf = Vec::new();
        let mut rest = input;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].clamp(1, rest.len());
            i += 1;
            got.extend_from_slice(st.push(&rest[..n], &mut buf));
            rest = &rest[n..];
        }
        got.extend_from_slice(&st.finish());
        got
    }

    #[test]
    fn no_secrets_borrows() {
        let rd = r(&[]);
        assert!(matches!(rd.redact(b"abc"), Cow::Borrowed(_)));
        assert!(r(&[""]).is_empty());
    }

    #[test]
    fn replaces_every_occurrence() {
        let rd = r(&["hunter2"]);
        assert_eq!(red(&rd, "pw=hunter2 again hunter2."), "pw=*** again ***.");
        assert_eq!(red(&rd, "hunter"), "hunter");
        assert!(matches!(rd.redact(b"nothing"), Cow::Borrowed(_)));
        assert_eq!(red(&rd, "hunter2hunter2"), "******");
    }

    #[test]
    fn longest_first_and_overlaps_merge() {
        let rd = r(&["sec", "secret"]);
        assert_eq!(red(&rd, "a secret b sec c"), "a *** b *** c");
        // Overlapping different secrets: no byte of either survives.
        let rd = r(&["abc", "cde"]);
        assert_eq!(red(&rd, "xabcdey"), "x***y");
        let rd = r(&["aa"]);
        assert_eq!(red(&rd, "baaab"), "b***b");
    }

    #[test]
    fn redact_str_keeps_text() {
        let rd = r(&["é"]);
        assert_eq!(red(&rd, "café!"), "caf***!");
        // A secret that is half a character leaves an invalid byte behind.
        let rd = Redactor::new([vec![0xC3]]);
        assert_eq!(rd.redact_str("é"), "***\u{FFFD}");
    }

    #[test]
    fn multi_line_secrets_also_mask_each_line() {
        let rd = Redactor::for_secrets([b"-----BEGIN KEY-----\r\n  abcd1234\n}\nxyz".to_vec()]);
        // The whole value, then its long enough lines however they are laid out.
        assert_eq!(red(&rd, "k=-----BEGIN KEY-----\r\n  abcd1234\n}\nxyz."), "k=***.");
        assert_eq!(red(&rd, "    abcd1234\r\n"), "    ***\r\n");
        assert_eq!(red(&rd, "-----BEGIN KEY-----"), "***");
        // Short lines would mask ordinary text, so they are left alone.
        assert_eq!(red(&rd, "} xyz"), "} xyz");
        // A one-line secret is just itself.
        let rd = Redactor::for_secrets([b"  spaced  ".to_vec()]);
        assert_eq!(red(&rd, "a  spaced  b spaced"), "a***b spaced");
    }

    #[test]
    fn stream_matches_whole_buffer() {
        let rd = r(&["secret", "sec", "multi\nline", "ab", "ba"]);
        let input = b"xx secret yy sesecret multi\nline abababa sec\nse";
        let whole = rd.redact(input).into_owned();
        for sizes in [&[1][..], &[2, 3], &[5], &[7, 1], &[100]] {
            assert_eq!(streamed(&rd, input, sizes), whole, "sizes {sizes:?}");
        }
    }

    #[test]
    fn stream_holds_back_only_possible_prefixes() {
        let rd = r(&["topsecret"]);
        let mut st = rd.stream();
        let mut buf = Vec::new();
        assert_eq!(st.push(b"hello\n", &mut buf), b"hello\n");
        assert_eq!(st.push(b"a top", &mut buf), b"a ");
        assert_eq!(st.push(b"sec", &mut buf), b"");
        assert_eq!(st.push(b"ret!", &mut buf), b"***!");
        assert_eq!(st.push(b"tops", &mut buf), b"");
        assert_eq!(st.finish(), b"tops");
    }

    #[test]
    fn stream_long_overlap_chain_is_bounded() {
        // "aa" overlaps itself: a run of a's is one mask, and the stream
        // must not hold the whole run while it lasts.
        let rd = r(&["aa"]);
        let mut st = rd.stream();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        got.extend_from_slice(st.push(b"x", &mut buf));
        for _ in 0..1000 {
            got.extend_from_slice(st.push(&[b'a'; 100], &mut buf));
            assert!(st.pending.len() < 2);
        }
        got.extend_from_slice(st.push(b"y", &mut buf));
        got.extend_from_slice(&st.finish());
        assert_eq!(got, b"x***y");
    }

    proptest::proptest! {
        #[test]
        fn stream_equals_whole(
            input in proptest::collection::vec(proptest::sample::select(b"abc\n".to_vec()), 0..200),
            secrets in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(b"abc\n".to_vec()), 0..5), 0..4),
            sizes in proptest::collection::vec(1usize..9, 1..5),
        ) {
            let rd = Redactor::new(secrets.clone());
            let whole = rd.redact(&input).into_owned();
            proptest::prop_assert_eq!(streamed(&rd, &input, &sizes), whole.clone());
            // No secret survives: '*' is not in the alphabet, so the mask
            // cannot form a new occurrence with its neighbours.
            for s in secrets.iter().filter(|s| !s.is_empty()) {
                proptest::prop_assert!(!whole.windows(s.len()).any(|w| w == &s[..]));
            }
        }
    }
}
