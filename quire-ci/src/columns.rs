//! Text laid out for a terminal, measured in columns: not bytes (`é` is two)
//! nor chars (`テ` and `🎉` take two columns, a combining accent none).
//! The widths are unicode-width's, the ones terminals and most Rust tools use.

use std::fmt;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The columns `text` takes on a terminal.
pub fn width(text: &str) -> usize {
    text.width()
}

/// `text`, then spaces up to `width` columns: a cell of a table's column.
/// (`format!("{:<w$}")` pads to a number of chars, which misaligns `テスト`.)
pub struct Pad<'a>(pub &'a str, pub usize);

impl fmt::Display for Pad<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SPACES: &str = "                                ";
        let Pad(text, width) = *self;
        f.write_str(text)?;
        let mut missing = width.saturating_sub(self::width(text));
        while missing > 0 {
            let n = missing.min(SPACES.len());
            f.write_str(&SPACES[..n])?;
            missing -= n;
        }
        Ok(())
    }
}

/// The longest start of `text` that fits in `columns`, never splitting a
/// character. Measured a character at a time: a sequence that a terminal
/// draws narrower (an emoji joined with ZWJ) counts wider, never narrower.
pub fn cut(text: &str, columns: usize) -> &str {
    let mut used = 0;
    for (at, c) in text.char_indices() {
        used += c.width().unwrap_or(0);
        if used > columns {
            return &text[..at];
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_and_combining_characters_are_measured_as_a_terminal_shows_them() {
        assert_eq!(width("build"), 5);
        assert_eq!(width("テスト"), 6);
        assert_eq!(width("café-🎉"), 7);
        // e + a combining acute accent: one column, three bytes.
        assert_eq!(width("cafe\u{301}"), 4);
    }

    #[test]
    fn pad_fills_to_a_number_of_columns() {
        assert_eq!(format!("{}|", Pad("テスト", 8)), "テスト  |");
        assert_eq!(format!("{}|", Pad("café-🎉", 8)), "café-🎉 |");
        assert_eq!(format!("{}|", Pad("too wide", 3)), "too wide|");
        assert_eq!(format!("{}|", Pad("", 40)), format!("{}|", " ".repeat(40)));
    }

    #[test]
    fn cut_keeps_whole_characters_that_fit() {
        assert_eq!(cut("build", 10), "build");
        assert_eq!(cut("build", 3), "bui");
        // テ takes two columns: three columns hold one of them, not one and a half.
        assert_eq!(cut("テスト", 3), "テ");
        assert_eq!(cut("テスト", 4), "テス");
        assert_eq!(cut("cafe\u{301}s", 4), "cafe\u{301}");
        assert_eq!(cut("🎉", 1), "");
        assert_eq!(cut("", 0), "");
    }
}
