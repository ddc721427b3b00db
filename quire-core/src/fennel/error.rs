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
        Some(self)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(miette::LabeledSpan::new_primary_with_span(
            Some("here".to_string()),
            self.span,
        ))))
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
}
