//! Text laid out for a terminal, measured in columns: not bytes (`é` is two)
//! nor chars (`テ` and `🎉` take two columns, a combining accent none).
//! The widths are unicode-width's, the ones terminals and most Rust tools use.

use std::fmt;

use unicode_width::UnicodeWidthStr;

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
}
