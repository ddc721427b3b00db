//! The reader: Fennel source text -> forms with byte spans.
//!
//! What comes out, for the compiler:
//! - `nil` `true` `false` -> `Nil` / `Bool`; `:kw` -> `Str(b"kw")`; numbers -> `Int` / `Float`.
//! - Every other token is a `Sym`, unsplit: `a.b.c`, `obj:method`, `...`, `$1`, `:` (alone).
//! - `'x` and `` `x `` -> `List[Sym "quote", x]`; `,x` -> `List[Sym "unquote", x]`;
//!   `#x` -> `List[Sym "hashfn", x]`. The prefix symbol's span is the one prefix
//!   character; the list's span runs from the prefix to the end of `x`.
//!   `#` followed by whitespace, a closer, `;` or the end is the plain symbol `#`.
//! - `{: x}` -> `Table[(Str "x" at the `:`, Sym "x")]`.
//!
//! The parser is a loop over an explicit stack (no recursion), so deeply nested
//! input cannot overflow the native stack; nesting deeper than [`MAX_DEPTH`] is an
//! error, which also keeps recursive consumers of the forms safe.

mod number;
mod string;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use super::error::{FennelError, Stage};
use super::form::{Form, FormKind, Span};

/// How many lists, sequences, tables and prefixes may be open at once.
pub const MAX_DEPTH: usize = 1000;

/// Read every top-level form of `source`. `file` names the source in errors.
pub fn read_all(source: &Arc<str>, file: &str) -> Result<Vec<Form>, FennelError> {
    Reader {
        source,
        file,
        pos: 0,
        stack: Vec::new(),
        top: Vec::new(),
    }
    .run()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delim {
    Paren,
    Bracket,
    Brace,
}

impl Delim {
    fn open(self) -> char {
        match self {
            Delim::Paren => '(',
            Delim::Bracket => '[',
            Delim::Brace => '{',
        }
    }

    fn close(self) -> char {
        match self {
            Delim::Paren => ')',
            Delim::Bracket => ']',
            Delim::Brace => '}',
        }
    }
}

/// Something opened and not yet finished.
enum Frame {
    /// `(`, `[` or `{` at byte `start`, with the forms read inside so far.
    Collection {
        delim: Delim,
        start: usize,
        items: Vec<Form>,
    },
    /// A prefix character at byte `at`, waiting for the form it applies to.
    Prefix { at: usize, symbol: &'static str },
}

struct Reader<'a> {
    source: &'a Arc<str>,
    file: &'a str,
    pos: usize,
    stack: Vec<Frame>,
    top: Vec<Form>,
}

fn is_whitespace(b: u8) -> bool {
    b == b' ' || (0x09..=0x0d).contains(&b)
}

fn is_closer(b: u8) -> bool {
    matches!(b, b')' | b']' | b'}')
}

/// Bytes that continue a symbol (Fennel's rule). Every byte of a non-ASCII
/// character qualifies, so a token always ends on a character boundary.
fn is_symbol_byte(b: u8) -> bool {
    b > b' '
        && b != 0x7f
        && !matches!(
            b,
            b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b'\'' | b'`' | b',' | b';' | b'~' | b'@'
        )
}

/// Shorten text quoted in an error message (a whole multi-line string, say).
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

impl Reader<'_> {
    fn bytes(&self) -> &[u8] {
        self.source.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn error(&self, message: impl Into<String>, span: Span) -> FennelError {
        FennelError::new(Stage::Parse, message, span, self.file, self.source)
    }

    fn run(mut self) -> Result<Vec<Form>, FennelError> {
        self.skip_preamble();
        loop {
            self.skip_whitespace_and_comments();
            let Some(b) = self.peek() else {
                return self.finish();
            };
            let start = self.pos;
            match b {
                b'(' | b'[' | b'{' => {
                    let delim = match b {
                        b'(' => Delim::Paren,
                        b'[' => Delim::Bracket,
                        _ => Delim::Brace,
                    };
                    self.push(
                        Frame::Collection {
                            delim,
                            start,
                            items: Vec::new(),
                        },
                        start,
                    )?;
                    self.pos += 1;
                }
                b')' | b']' | b'}' => {
                    self.pos += 1;
                    let form = self.close(b as char, start)?;
                    self.deliver(form);
                }
                b'"' => {
                    let form = self.string(start)?;
                    self.deliver(form);
                }
                b'\'' | b'`' | b',' | b'#' => self.prefix(b, start)?,
                b if is_symbol_byte(b) || b == b'~' => {
                    let form = self.token(start)?;
                    self.deliver(form);
                }
                // Only ASCII control characters and `@` get here.
                _ => {
                    let shown = match b {
                        b'@' => "@".to_string(),
                        _ => format!("\\x{b:02x}"),
                    };
                    return Err(self.error(format!("invalid character: {shown}"), Span::new(start, start + 1)));
                }
            }
        }
    }

    /// A `#!` line at the very start, and a UTF-8 byte order mark before it.
    fn skip_preamble(&mut self) {
        if self.source.starts_with('\u{feff}') {
            self.pos = '\u{feff}'.len_utf8();
        }
        if self.source[self.pos..].starts_with("#!") {
            self.skip_line();
        }
    }

    fn skip_line(&mut self) {
        while self.peek().is_some_and(|b| b != b'\n') {
            self.pos += 1;
        }
    }

    fn skip_whitespace_and_comments(&mut self) {
        while let Some(b) = self.peek() {
            if is_whitespace(b) {
                self.pos += 1;
            } else if b == b';' {
                self.skip_line();
            } else {
                break;
            }
        }
    }

    fn push(&mut self, frame: Frame, at: usize) -> Result<(), FennelError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(
                format!("nesting too deep: more than {MAX_DEPTH} levels of lists, tables and quotes"),
                Span::new(at, at + 1),
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Hand a finished form to whatever is open: wrap it in pending prefixes,
    /// then add it to the innermost collection (or the top level).
    fn deliver(&mut self, mut form: Form) {
        loop {
            match self.stack.last_mut() {
                Some(Frame::Prefix { at, symbol }) => {
                    let (at, symbol) = (*at, *symbol);
                    self.stack.pop();
                    let span = Span::new(at, form.span.end);
                    let head = Form::new(FormKind::Sym(symbol.to_string()), Span::new(at, at + 1));
                    form = Form::new(FormKind::List(vec![head, form]), span);
                }
                Some(Frame::Collection { items, .. }) => {
                    items.push(form);
                    return;
                }
                None => {
                    self.top.push(form);
                    return;
                }
            }
        }
    }

    /// The end of the source: everything opened must have been closed.
    fn finish(mut self) -> Result<Vec<Form>, FennelError> {
        let end = Span::new(self.pos, self.pos);
        match self.stack.pop() {
            None => Ok(self.top),
            Some(Frame::Prefix { at, .. }) => Err(self.prefix_without_form(at)),
            Some(Frame::Collection { delim, start, .. }) => {
                // Point at the end, where the closer is missing, and say where the opener is.
                let (line, column) = super::error::line_column(self.source, start);
                Err(self
                    .error(format!("expected closing delimiter {}", delim.close()), end)
                    .with_help(format!(
                        "the {} at line {line}, column {column} is never closed",
                        delim.open()
                    )))
            }
        }
    }

    fn prefix_without_form(&self, at: usize) -> FennelError {
        let prefix = self.source[at..].chars().next().unwrap_or('?');
        self.error(
            format!("expected a form after the {prefix} prefix"),
            Span::new(at, at + 1),
        )
        .with_help(format!("write the form right after {prefix}, as in {prefix}x"))
    }

    /// A closing delimiter at `at` (already consumed).
    fn close(&mut self, closer: char, at: usize) -> Result<Form, FennelError> {
        let span = Span::new(at, at + 1);
        match self.stack.pop() {
            None => Err(self.error(format!("unexpected closing delimiter {closer}"), span)),
            Some(Frame::Prefix { at, .. }) => Err(self.prefix_without_form(at)),
            Some(Frame::Collection { delim, start, items }) => {
                if delim.close() != closer {
                    let (line, column) = super::error::line_column(self.source, start);
                    return Err(self
                        .error(
                            format!("mismatched closing delimiter {closer}, expected {}", delim.close()),
                            span,
                        )
                        .with_help(format!(
                            "the {} at line {line}, column {column} is still open",
                            delim.open()
                        )));
                }
                let span = Span::new(start, at + 1);
                let kind = match delim {
                    Delim::Paren => FormKind::List(items),
                    Delim::Bracket => FormKind::Seq(items),
                    Delim::Brace => FormKind::Table(self.pairs(items, span)?),
                };
                Ok(Form::new(kind, span))
            }
        }
    }

    /// The forms of a `{}` as key/value pairs, expanding the `{: x}` shorthand.
    fn pairs(&self, items: Vec<Form>, table: Span) -> Result<Vec<(Form, Form)>, FennelError> {
        if !items.len().is_multiple_of(2) {
            return Err(self
                .error("expected even number of values in table literal", table)
                .with_help("a table literal is written as key/value pairs: {:key value ...}"));
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(mut key), Some(value)) = (items.next(), items.next()) {
            // `{: x}` means `{:x x}`: a lone `:` key before a symbol takes its name.
            if key.is_sym(":")
                && let Some(name) = value.as_sym()
            {
                key.kind = FormKind::Str(name.as_bytes().to_vec());
            }
            pairs.push((key, value));
        }
        Ok(pairs)
    }

    /// A string literal whose opening quote is at `start`.
    fn string(&mut self, start: usize) -> Result<Form, FennelError> {
        let Some(end) = string::find_end(self.bytes(), start) else {
            return Err(self
                .error(
                    "expected closing delimiter \"",
                    Span::new(self.source.len(), self.source.len()),
                )
                .with_help({
                    let (line, column) = super::error::line_column(self.source, start);
                    format!("the string starting at line {line}, column {column} is never closed")
                }));
        };
        self.pos = end;
        let span = Span::new(start, end);
        match string::decode(&self.source[start + 1..end - 1]) {
            Ok(bytes) => Ok(Form::new(FormKind::Str(bytes), span)),
            Err(bad) => {
                let raw = excerpt(&self.source[start..end]);
                Err(self.error(format!("Invalid string: {raw}"), span).with_help(bad.0))
            }
        }
    }

    /// A prefix character at `at`: quote, quasiquote, unquote or hashfn.
    fn prefix(&mut self, b: u8, at: usize) -> Result<(), FennelError> {
        self.pos += 1;
        // The form must follow at once: `' x` is an error, and so is `'` before a closer.
        let stands_alone = match self.peek() {
            None => true,
            Some(next) => is_whitespace(next) || is_closer(next) || next == b';',
        };
        if b == b'#' && stands_alone {
            // The length operator, as in `(# xs)`.
            self.deliver(Form::new(FormKind::Sym("#".to_string()), Span::new(at, at + 1)));
            return Ok(());
        }
        if stands_alone {
            return Err(self.prefix_without_form(at));
        }
        let symbol = match b {
            b'\'' | b'`' => "quote",
            b',' => "unquote",
            _ => "hashfn",
        };
        self.push(Frame::Prefix { at, symbol }, at)
    }

    /// A run of symbol characters starting at `start`: a literal, a keyword,
    /// a number or a symbol.
    fn token(&mut self, start: usize) -> Result<Form, FennelError> {
        // The first byte may be `~` (for `~=`), which cannot continue a symbol.
        self.pos += 1;
        while self.peek().is_some_and(is_symbol_byte) {
            self.pos += 1;
        }
        let span = Span::new(start, self.pos);
        let text = &self.source[start..self.pos];
        let kind = match text {
            "nil" => FormKind::Nil,
            "true" => FormKind::Bool(true),
            "false" => FormKind::Bool(false),
            _ if text.len() > 1 && text.starts_with(':') => FormKind::Str(text.as_bytes()[1..].to_vec()),
            _ => match number::parse(text) {
                Some(number::Number::Int(n)) => FormKind::Int(n),
                Some(number::Number::Float(x)) => FormKind::Float(x),
                None if number::looks_numeric(text) => {
                    return Err(self.error(format!("could not read number \"{}\"", excerpt(text)), span));
                }
                None => {
                    self.check_symbol(text, span)?;
                    FormKind::Sym(text.to_string())
                }
            },
        };
        Ok(Form::new(kind, span))
    }

    /// Symbols Fennel refuses at read time: a stray `~`, and malformed multi-symbols.
    fn check_symbol(&self, text: &str, span: Span) -> Result<(), FennelError> {
        if text.starts_with('~') && text != "~=" {
            return Err(self
                .error("invalid character: ~", Span::new(span.start, span.start + 1))
                .with_help("~ only appears in ~= (not equal); bitwise not is bnot"));
        }
        let separator = |b: &u8| *b == b'.' || *b == b':';
        let bytes = text.as_bytes();
        let doubled = bytes.windows(2).any(|w| separator(&w[0]) && separator(&w[1]));
        let exempt = matches!(text, "..." | ".." | "$..." | "?.");
        if (doubled && !exempt) || (text != ":" && text.ends_with(':')) {
            return Err(self.error(format!("malformed multisym: {}", excerpt(text)), span));
        }
        // After `obj:method` nothing more may follow: `a:b.c` is an error.
        if let Some(colon) = text.find(':')
            && bytes[colon + 1..].iter().skip(1).any(separator)
        {
            return Err(self.error(
                format!("method must be last component of multisym: {}", excerpt(text)),
                span,
            ));
        }
        Ok(())
    }
}
