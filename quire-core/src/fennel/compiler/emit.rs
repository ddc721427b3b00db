//! Writing Lua text: literals, identifiers, and the line markers that keep
//! every statement on the line of the Fennel form it came from.
//!
//! While compiling, code is plain text with *line markers* embedded: the
//! byte `MARK_START`, a decimal line number, `MARK_END`. A marker says "what
//! follows came from this Fennel line". [`resolve_lines`] replaces each marker
//! by enough newlines to reach that line, or by a space when the output is
//! already there (or past it). Markers cannot clash with program text because
//! string literals escape every control byte.

use std::fmt::Write;

const MARK_START: char = '\u{1}';
const MARK_END: char = '\u{2}';

/// A marker saying that the code after it belongs on `line` (1-based).
pub fn line_mark(line: usize) -> String {
    format!("{MARK_START}{line}{MARK_END}")
}

/// The code with its markers stripped of, for looking at its first real character.
pub fn first_code_char(code: &str) -> Option<char> {
    let mut chars = code.chars();
    while let Some(c) = chars.next() {
        if c == MARK_START {
            for c in chars.by_ref() {
                if c == MARK_END {
                    break;
                }
            }
        } else if !c.is_whitespace() {
            return Some(c);
        }
    }
    None
}

/// Turn marked-up code into final Lua text: each marker becomes newlines (to
/// move down to its line) or a single space.
pub fn resolve_lines(marked: &str) -> String {
    let mut out = String::with_capacity(marked.len() + 64);
    let mut current = 1usize;
    let mut rest = marked;
    while let Some(start) = rest.find(MARK_START) {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find(MARK_END).unwrap_or(after.len());
        let line: usize = after[..end].parse().unwrap_or(current);
        if line > current {
            for _ in current..line {
                out.push('\n');
            }
            current = line;
        } else if !out.is_empty() && !out.ends_with([' ', '\n', '(', '{', '[']) {
            out.push(' ');
        }
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Lua's reserved words: never usable as names or as `t.key` keys.
pub const LUA_KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in", "local", "nil",
    "not", "or", "repeat", "return", "then", "true", "until", "while",
];

/// Whether `name` can be written as a bare Lua name.
pub fn is_lua_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !LUA_KEYWORDS.contains(&name)
}

/// A Lua string literal for arbitrary bytes. Everything outside printable
/// ASCII becomes `\ddd` (always three digits, so a following digit can't join
/// it), which keeps the output valid and free of raw newlines.
pub fn lua_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}

/// A Lua integer literal. The most negative integer has no literal of its own
/// (`9223372036854775808` would read as a float), so it is built by arithmetic.
pub fn lua_integer(n: i64) -> String {
    if n == i64::MIN {
        "(-9223372036854775807 - 1)".to_string()
    } else if n < 0 {
        format!("({n})")
    } else {
        n.to_string()
    }
}

/// A Lua number literal for a float literal of the source. Integral values
/// that fit an integer are written as integers (Fennel does the same); other
/// values are written so that they read back as exactly the same float.
pub fn lua_float(x: f64) -> String {
    if x.is_nan() {
        "(0/0)".to_string()
    } else if x.is_infinite() {
        if x > 0.0 {
            "(1/0)".to_string()
        } else {
            "(-1/0)".to_string()
        }
    } else if x.fract() == 0.0 && x.abs() < 9.2e18 {
        lua_integer(x as i64)
    } else {
        // `{:?}` is Rust's shortest round-trip form (`0.1`, `1e300`, `2.5e-7`),
        // which is also valid Lua and always reads back as a float here.
        let text = format!("{x:?}");
        if x < 0.0 { format!("({text})") } else { text }
    }
}

/// `base.key` when the key is a valid name, else `base["key"]`.
pub fn index_by_string(base: &str, key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(name) if is_lua_identifier(name) => format!("{base}.{name}"),
        _ => format!("{base}[{}]", lua_string(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_newlines_or_spaces() {
        let code = format!("{}a(){}b(){}c()", line_mark(1), line_mark(3), line_mark(2));
        assert_eq!(resolve_lines(&code), "a()\n\nb() c()");
    }

    #[test]
    fn strings_escape_every_unprintable_byte() {
        assert_eq!(lua_string(b"a\"b\\c\n\t"), r#""a\"b\\c\n\t""#);
        assert_eq!(lua_string(&[0, b'1', 255]), r#""\0001\255""#);
        assert_eq!(lua_string("é".as_bytes()), r#""\195\169""#);
    }

    #[test]
    fn numbers_keep_their_type_and_value() {
        assert_eq!(lua_integer(42), "42");
        assert_eq!(lua_integer(-3), "(-3)");
        assert_eq!(lua_integer(i64::MIN), "(-9223372036854775807 - 1)");
        assert_eq!(lua_float(1.0), "1");
        assert_eq!(lua_float(2e3), "2000");
        assert_eq!(lua_float(0.1), "0.1");
        assert_eq!(lua_float(-0.75), "(-0.75)");
        assert_eq!(lua_float(1e300), "1e300");
        assert_eq!(lua_float(f64::INFINITY), "(1/0)");
        assert_eq!(lua_float(f64::NEG_INFINITY), "(-1/0)");
        assert_eq!(lua_float(f64::NAN), "(0/0)");
    }

    #[test]
    fn identifiers_exclude_keywords() {
        assert!(is_lua_identifier("foo_1"));
        assert!(!is_lua_identifier("end"));
        assert!(!is_lua_identifier("a-b"));
        assert!(!is_lua_identifier("1a"));
        assert_eq!(index_by_string("t", b"x"), "t.x");
        assert_eq!(index_by_string("t", b"some-key"), "t[\"some-key\"]");
    }
}
