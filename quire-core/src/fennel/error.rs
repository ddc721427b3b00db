//! Errors of the Fennel front-end, rendered by miette on the source span.

use super::form::Span;

/// Which stage refused the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The reader: unbalanced delimiters, bad strings and numbers, stray characters.
    Parse,
    /// The compiler: unknown forms or globals, malformed special forms.
    Compile,
}

/// One error at one place in one Fennel source file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{line}:{column}: {} error: {message}", .file, match .stage { Stage::Parse => "parse", Stage::Compile => "compile" })]
pub struct FennelError {
    pub stage: Stage,
    pub message: String,
    /// What the user can do about it, if we know.
    pub help: Option<String>,
    pub span: Span,
    /// The file name shown to the user (e.g. `.quire/ci.fnl`).
    pub file: String,
    /// 1-based line and column (in characters) of `span.start`.
    pub line: usize,
    pub column: usize,
    /// The whole source, so the error can be rendered on its own.
    pub source_text: std::sync::Arc<str>,
}

impl FennelError {
    pub fn new(stage: Stage, message: impl Into<String>, span: Span, file: &str, source: &std::sync::Arc<str>) -> Self {
        let (line, column) = line_column(source, span.start);
        FennelError {
            stage,
            message: message.into(),
            help: None,
            span,
            file: file.to_string(),
            line,
            column,
            source_text: source.clone(),
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl miette::Diagnostic for FennelError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(match self.stage {
            Stage::Parse => "fennel::parse",
            Stage::Compile => "fennel::compile",
        }))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.shows_its_line().then_some(self as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        if !self.shows_its_line() {
            return None;
        }
        Some(Box::new(std::iter::once(miette::LabeledSpan::new_primary_with_span(
            Some("here".to_string()),
            self.span,
        ))))
    }
}

/// Past this, a line is not shown under the message (which names its line
/// and column): a minified or generated file can be one line of megabytes.
const LONGEST_SHOWN_LINE: usize = 1000;

impl FennelError {
    /// Whether the snippet is worth showing: none of its lines (the span's,
    /// and one of context before and after) is too long.
    fn shows_its_line(&self) -> bool {
        let text = self.source_text.as_bytes();
        let start = self.span.start.min(text.len());
        let end = self.span.end.clamp(start, text.len());
        let before = text[..start].split(|&b| b == b'\n').rev().take(2);
        let after = text[end..].split(|&b| b == b'\n').take(2);
        let spanned = text[start..end].split(|&b| b == b'\n');
        before
            .chain(spanned)
            .chain(after)
            .all(|line| line.len() <= LONGEST_SHOWN_LINE)
    }
}

impl miette::SourceCode for FennelError {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self
            .source_text
            .read_span(span, context_lines_before, context_lines_after)?;
        // miette counts the column in bytes; the message counts characters.
        let (_, column) = line_column(&self.source_text, span.offset());
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.file.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column - 1,
            inner.line_count(),
        )))
    }
}

/// 1-based line and column (counted in chars) of a byte offset.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snippet_names_the_column_of_the_message_in_characters() {
        let source: std::sync::Arc<str> = "(print \"été\" (nope))".into();
        let start = source.find("nope").unwrap();
        let error = FennelError::new(
            Stage::Compile,
            "unknown identifier: nope",
            Span::new(start, start + 4),
            "t.fnl",
            &source,
        );
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .render_report(&mut out, &error)
            .unwrap();
        assert_eq!(
            out,
            "fennel::compile

  × t.fnl:1:15: compile error: unknown identifier: nope
   ╭─[t.fnl:1:15]
 1 │ (print \"été\" (nope))
   ·               ──┬─
   ·                 ╰── here
   ╰────
"
        );
    }

    #[test]
    fn a_snippet_with_a_line_of_megabytes_is_left_out() {
        let render = |source: &str, at: &str| {
            let source: std::sync::Arc<str> = source.into();
            let start = source.find(at).unwrap();
            let error = FennelError::new(Stage::Parse, "bad", Span::new(start, start + 1), "t.fnl", &source);
            let mut out = String::new();
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .render_report(&mut out, &error)
                .unwrap();
            out
        };
        let long = "x".repeat(LONGEST_SHOWN_LINE + 1);
        // On the line, or on the line of context before it: only the message.
        let on_the_line = format!("(a {long} !)");
        assert_eq!(
            render(&on_the_line, "!"),
            format!("fennel::parse\n\n  × t.fnl:1:{}: parse error: bad\n", long.len() + 5)
        );
        let before_it = format!("({long}\n!)");
        assert_eq!(
            render(&before_it, "!"),
            "fennel::parse\n\n  × t.fnl:2:1: parse error: bad\n"
        );
        // Long enough to read, it is shown.
        let fine = "x".repeat(LONGEST_SHOWN_LINE - 10);
        assert!(render(&format!("(a {fine} !)"), "!").contains("│ (a xxx"));
    }
}
