//! The reader's output: Fennel forms, each carrying the byte span it was read from.

/// A half-open byte range `start..end` into the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    pub fn len(self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.start, span.len()).into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub kind: FormKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FormKind {
    /// `nil`
    Nil,
    /// `true` / `false`
    Bool(bool),
    /// An integer literal that fits in an i64.
    Int(i64),
    /// Any other number literal (`1.5`, `1e400`, `.inf` is not syntax; overflow becomes a float as in Lua).
    Float(f64),
    /// A string literal or a `:keyword`, as raw bytes (escapes like `\255` are not UTF-8).
    Str(Vec<u8>),
    /// A symbol, as written: `foo`, `a.b.c`, `obj:method`, `...`, `&`, `&as`, `$1`, `?x`.
    /// Multi-symbols are not split by the reader.
    Sym(String),
    /// `( … )`
    List(Vec<Form>),
    /// `[ … ]`
    Seq(Vec<Form>),
    /// `{ … }` as key/value pairs in source order; `{: x}` is read as `{:x x}`.
    Table(Vec<(Form, Form)>),
}

impl Form {
    pub fn new(kind: FormKind, span: Span) -> Self {
        Form { kind, span }
    }

    /// The symbol's name, if this form is a symbol.
    pub fn as_sym(&self) -> Option<&str> {
        match &self.kind {
            FormKind::Sym(name) => Some(name),
            _ => None,
        }
    }

    pub fn is_sym(&self, name: &str) -> bool {
        self.as_sym() == Some(name)
    }

    /// The elements of a list form.
    pub fn as_list(&self) -> Option<&[Form]> {
        match &self.kind {
            FormKind::List(items) => Some(items),
            _ => None,
        }
    }
}
