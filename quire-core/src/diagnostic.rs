//! How an error is laid out, on the terminal and in the run record alike.
//!
//! miette draws the diagnostics related to an error (each problem of an
//! invalid pipeline) after it, each under a bare `Error:` line. quire-ci
//! shows each one on its own instead, the way a compiler lists its errors,
//! and the error they belong to last, as their summary, where a terminal
//! leaves it in view.

use std::fmt;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, Severity, SourceCode};

/// `diagnostic` as standalone parts, in the order they are shown: the
/// diagnostics it relates, each with its own parts, then itself.
pub fn parts(diagnostic: &dyn Diagnostic) -> Vec<Alone<'_>> {
    let mut parts = Vec::new();
    for related in diagnostic.related().into_iter().flatten() {
        parts.extend(self::parts(related));
    }
    parts.push(Alone(diagnostic));
    parts
}

/// Render a diagnostic as plain text (no colour), the way `run_finished.error` carries it.
pub fn render_plain(diagnostic: &dyn Diagnostic) -> String {
    // No wrapping: the text is a record, read by tools and at any width.
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_wrap_lines(false);
    let rendered: Vec<String> = parts(diagnostic)
        .iter()
        .map(|part| {
            let mut out = String::new();
            if handler.render_report(&mut out, part).is_err() {
                out = part.to_string();
            }
            out.trim_end().to_string()
        })
        .collect();
    rendered.join("\n\n")
}

/// One diagnostic without the diagnostics it relates, which [`parts`] lists apart.
#[derive(Debug)]
pub struct Alone<'a>(&'a dyn Diagnostic);

impl fmt::Display for Alone<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)
    }
}

impl std::error::Error for Alone<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl Diagnostic for Alone<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.code()
    }
    fn severity(&self) -> Option<Severity> {
        self.0.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.help()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.url()
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.0.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.0.labels()
    }
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.0.diagnostic_source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error, Diagnostic)]
    #[error("{0}")]
    struct Problem(&'static str);

    #[derive(Debug, thiserror::Error, Diagnostic)]
    #[error("{} problems", .0.len())]
    #[diagnostic(code(test::summary), help("fix them"))]
    struct Summary(#[related] Vec<Problem>);

    #[test]
    fn related_diagnostics_come_first_each_alone_and_the_summary_last() {
        let summary = Summary(vec![Problem("first"), Problem("second")]);
        assert_eq!(
            render_plain(&summary),
            "  × first\n\n  × second\n\ntest::summary\n\n  × 2 problems\n  help: fix them"
        );
    }

    #[test]
    fn a_diagnostic_relating_none_is_one_part() {
        assert_eq!(render_plain(&Problem("alone")), "  × alone");
        assert_eq!(parts(&Problem("alone")).len(), 1);
    }
}
