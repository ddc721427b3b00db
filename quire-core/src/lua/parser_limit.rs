//! Lua's parser refusing compiled Fennel, told on the Fennel line.
//!
//! A Fennel program the compiler accepts can still be more than Lua's parser
//! takes: about 200 nested blocks and expressions (deeply nested arithmetic,
//! a long `case-try` chain), 200 locals in one function. Lua says so in
//! terms of the Lua it was given ("C stack overflow", with no line, or
//! "too many local variables ... near '='"). The compiled Lua keeps each
//! statement on its form's line, so the line Lua stopped at is the Fennel
//! line to point at.

use std::sync::Arc;

use mlua::Lua;

use crate::fennel::{FennelError, Span, Stage};

/// The Fennel error for a load failure of `compiled` (from `source`, shown as
/// `display`) that is one of Lua's parser limits; None for anything else.
pub(super) fn parser_limit_error(
    lua: &Lua,
    source: &str,
    compiled: &str,
    display: &str,
    message: &str,
) -> Option<FennelError> {
    let (line, message, help) = if message.contains("C stack overflow") {
        (
            overflow_line(lua, compiled)?,
            "nested too deeply for Lua's parser (about 200 levels of blocks and expressions)".to_string(),
            "split it: bind inner parts to locals, or move them into functions of their own",
        )
    } else {
        // "<display>:<line>: too many local variables (limit is 200) in main function near '='"
        let rest = message.strip_prefix(display)?.strip_prefix(':')?;
        let (line, rest) = rest.split_once(": ")?;
        let line = line.parse::<usize>().ok()?;
        if !rest.starts_with("too many") {
            return None;
        }
        // Lua's token is of the compiled code, which the user never wrote.
        let what = rest.rsplit_once(" near ").map_or(rest, |(what, _)| what);
        (
            line,
            format!("more than Lua allows: {what}"),
            "group values in a table, or move part of the code into a function of its own",
        )
    };
    let source: Arc<str> = Arc::from(source);
    let span = line_span(&source, line);
    Some(FennelError::new(Stage::Compile, message, span, display, &source).with_help(help))
}

/// The line where Lua's parser runs out of nesting: the shortest prefix of
/// whole lines that overflows ends there. Loading a prefix only parses it.
fn overflow_line(lua: &Lua, compiled: &str) -> Option<usize> {
    let ends: Vec<usize> = compiled
        .match_indices('\n')
        .map(|(i, _)| i)
        .chain(std::iter::once(compiled.len()))
        .collect();
    let overflows = |lines: usize| match lua.load(&compiled[..ends[lines - 1]]).into_function() {
        Err(err) => err.to_string().contains("C stack overflow"),
        Ok(_) => false,
    };
    let (mut low, mut high) = (1, ends.len());
    if !overflows(high) {
        return None;
    }
    while low < high {
        let mid = low + (high - low) / 2;
        if overflows(mid) { high = mid } else { low = mid + 1 }
    }
    Some(low)
}

/// The span of line `line` (1-based) of `source` without its indentation;
/// the last line when there are fewer.
fn line_span(source: &str, line: usize) -> Span {
    let mut start = 0;
    for _ in 1..line {
        match source[start..].find('\n') {
            Some(i) if start + i + 1 < source.len() => start += i + 1,
            _ => break,
        }
    }
    let end = source[start..].find('\n').map_or(source.len(), |i| start + i);
    let text = &source[start..end];
    let indent = text.len() - text.trim_start().len();
    Span::new(start + indent, end.max(start + indent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_spans_skip_indentation_and_clamp_to_the_last_line() {
        let source = "(a)\n  (b c)\n(d)";
        assert_eq!(line_span(source, 1), Span::new(0, 3));
        assert_eq!(line_span(source, 2), Span::new(6, 11));
        assert_eq!(line_span(source, 3), Span::new(12, 15));
        assert_eq!(line_span(source, 9), Span::new(12, 15));
    }
}
