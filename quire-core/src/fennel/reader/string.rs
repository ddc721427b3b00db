//! String literals: finding where one ends, and decoding its escapes the way
//! Lua 5.4 does. Raw newlines (and other raw bytes) are kept as they are.

/// Given the index of an opening `"`, the index just past the closing `"`, or
/// `None` if the source ends first. A backslash always consumes the next byte.
pub(super) fn find_end(src: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < src.len() {
        match src[i] {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// Why a string body could not be decoded: a short description of the escape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BadEscape(pub String);

/// Decode the text between the quotes into bytes.
pub(super) fn decode(body: &str) -> Result<Vec<u8>, BadEscape> {
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&escape) = bytes.get(i + 1) else {
            return Err(BadEscape("a lone \\ ends the string".into()));
        };
        i += 2;
        match escape {
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'\\' | b'"' | b'\'' => out.push(escape),
            b'\n' | b'\r' => {
                // A backslash before a line break keeps one '\n'; "\r\n" and "\n\r" count as one break.
                out.push(b'\n');
                if let Some(&next) = bytes.get(i)
                    && (next == b'\n' || next == b'\r')
                    && next != escape
                {
                    i += 1;
                }
            }
            b'z' => {
                while bytes.get(i).is_some_and(|&c| is_lua_space(c)) {
                    i += 1;
                }
            }
            b'x' => {
                let digits = bytes.get(i..i + 2).filter(|d| d.iter().all(u8::is_ascii_hexdigit));
                let Some(digits) = digits else {
                    return Err(BadEscape("\\x must be followed by exactly two hex digits".into()));
                };
                out.push(hex(digits[0]) * 16 + hex(digits[1]));
                i += 2;
            }
            b'0'..=b'9' => {
                // Up to three decimal digits, the first already consumed.
                let mut value = u32::from(escape - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(&d) if d.is_ascii_digit() => {
                            value = value * 10 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                let Ok(byte) = u8::try_from(value) else {
                    return Err(BadEscape(format!("decimal escape \\{value} is larger than 255")));
                };
                out.push(byte);
            }
            b'u' => {
                let (code, next) = unicode_escape(bytes, i)?;
                push_utf8(&mut out, code);
                i = next;
            }
            _ => {
                // Name the whole character, which may be more than one byte.
                let shown = body[i - 1..].chars().next().unwrap_or('?');
                return Err(BadEscape(format!("unknown escape sequence \\{shown}")));
            }
        }
    }
    Ok(out)
}

/// `{XXX}` starting at `i` (just after `\u`): the code point and the index past `}`.
fn unicode_escape(bytes: &[u8], mut i: usize) -> Result<(u32, usize), BadEscape> {
    let malformed = || BadEscape("\\u must be followed by hex digits in braces, as in \\u{20AC}".into());
    if bytes.get(i) != Some(&b'{') {
        return Err(malformed());
    }
    i += 1;
    let mut code: u32 = 0;
    let mut digits = 0;
    while let Some(&d) = bytes.get(i).filter(|d| d.is_ascii_hexdigit()) {
        // Lua accepts code points up to 2^31 - 1 (encoded as extended UTF-8).
        if code > 0x7FFF_FFFF >> 4 {
            return Err(BadEscape("\\u{...} value is larger than 7FFFFFFF".into()));
        }
        code = code * 16 + u32::from(hex(d));
        digits += 1;
        i += 1;
    }
    if digits == 0 || bytes.get(i) != Some(&b'}') {
        return Err(malformed());
    }
    Ok((code, i + 1))
}

fn hex(d: u8) -> u8 {
    (d as char).to_digit(16).unwrap_or(0) as u8
}

/// The bytes `\z` skips (C `isspace`).
fn is_lua_space(b: u8) -> bool {
    b == b' ' || (0x09..=0x0d).contains(&b)
}

/// UTF-8 as Lua writes it: standard up to U+10FFFF, and the old 5- and 6-byte
/// forms above that. Surrogates are encoded like any other value.
fn push_utf8(out: &mut Vec<u8>, code: u32) {
    if code < 0x80 {
        out.push(code as u8);
        return;
    }
    let len: u32 = match code {
        0..0x800 => 2,
        0x800..0x1_0000 => 3,
        0x1_0000..0x20_0000 => 4,
        0x20_0000..0x400_0000 => 5,
        _ => 6,
    };
    // The lead byte holds `len` one-bits, a zero, then the top bits of the code.
    let lead_marker = !(0xffu8 >> len);
    out.push(lead_marker | (code >> (6 * (len - 1))) as u8);
    for k in (0..len - 1).rev() {
        out.push(0x80 | ((code >> (6 * k)) & 0x3f) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Vec<u8> {
        decode(body).unwrap_or_else(|e| panic!("{body:?}: {e:?}"))
    }

    fn bad(body: &str) -> String {
        decode(body).expect_err(body).0
    }

    #[test]
    fn finds_the_closing_quote() {
        assert_eq!(find_end(br#""abc" x"#, 0), Some(5));
        assert_eq!(find_end(br#""a\"b" x"#, 0), Some(6));
        assert_eq!(find_end(br#""a\\" x"#, 0), Some(5));
        assert_eq!(find_end(br#""abc"#, 0), None);
        assert_eq!(find_end(br#""abc\"#, 0), None);
        assert_eq!(find_end(b"\"a\nb\"", 0), Some(5));
    }

    #[test]
    fn plain_text_and_raw_line_breaks_are_kept() {
        assert_eq!(ok("héllo"), "héllo".as_bytes());
        assert_eq!(ok("a\nb\r\nc\td"), b"a\nb\r\nc\td");
    }

    #[test]
    fn single_character_escapes() {
        assert_eq!(ok(r#"\a\b\f\n\r\t\v\\\"\'"#), b"\x07\x08\x0c\n\r\t\x0b\\\"'");
    }

    #[test]
    fn backslash_line_break() {
        assert_eq!(ok("a\\\nb"), b"a\nb");
        assert_eq!(ok("a\\\r\nb"), b"a\nb");
        assert_eq!(ok("a\\\n\rb"), b"a\nb");
        assert_eq!(ok("a\\\rb"), b"a\nb");
        // Only one break is swallowed: "\n\n" is two.
        assert_eq!(ok("a\\\n\nb"), b"a\n\nb");
    }

    #[test]
    fn z_skips_whitespace_including_newlines() {
        assert_eq!(ok("alpha\\z      beta"), b"alphabeta");
        assert_eq!(ok("x\\z   y\\z z"), b"xyz");
        assert_eq!(ok("a\\z \n\t  \r\n b"), b"ab");
        assert_eq!(ok("a\\z"), b"a");
    }

    #[test]
    fn decimal_escapes() {
        assert_eq!(ok(r"\72\105\33"), b"Hi!");
        assert_eq!(ok(r"\0"), b"\0");
        assert_eq!(ok(r"\065"), b"A");
        assert_eq!(ok(r"\255"), b"\xff");
        assert_eq!(ok(r"\1234"), b"\x7b4");
        assert_eq!(bad(r"\256"), "decimal escape \\256 is larger than 255");
        assert_eq!(bad(r"\999"), "decimal escape \\999 is larger than 255");
    }

    #[test]
    fn hex_escapes() {
        assert_eq!(ok(r"\x48\x65\x6c\x6C"), b"Hell");
        assert_eq!(ok(r"\xff\x00"), b"\xff\x00");
        assert_eq!(bad(r"\x4"), "\\x must be followed by exactly two hex digits");
        assert_eq!(bad(r"\x4g"), "\\x must be followed by exactly two hex digits");
        assert_eq!(bad(r"\x"), "\\x must be followed by exactly two hex digits");
    }

    #[test]
    fn unicode_escapes() {
        assert_eq!(ok(r"\u{48}\u{49}"), b"HI");
        assert_eq!(ok(r"\u{20AC}"), "€".as_bytes());
        assert_eq!(ok(r"\u{e9}"), "é".as_bytes());
        assert_eq!(ok(r"\u{1F600}"), "😀".as_bytes());
        assert_eq!(ok(r"\u{10FFFF}"), "\u{10FFFF}".as_bytes());
        assert_eq!(ok(r"\u{0000000041}"), b"A");
        // Beyond Unicode, Lua's extended forms.
        assert_eq!(ok(r"\u{D800}"), b"\xed\xa0\x80");
        assert_eq!(ok(r"\u{200000}"), b"\xf8\x88\x80\x80\x80");
        assert_eq!(ok(r"\u{7FFFFFFF}"), b"\xfd\xbf\xbf\xbf\xbf\xbf");
        let braces = "\\u must be followed by hex digits in braces, as in \\u{20AC}";
        assert_eq!(bad(r"\u41"), braces);
        assert_eq!(bad(r"\u{}"), braces);
        assert_eq!(bad(r"\u{41"), braces);
        assert_eq!(bad(r"\u{4x}"), braces);
        assert_eq!(bad(r"\u{80000000}"), "\\u{...} value is larger than 7FFFFFFF");
    }

    #[test]
    fn unknown_escapes() {
        assert_eq!(bad(r"bad \q escape"), "unknown escape sequence \\q");
        assert_eq!(bad(r"\é"), "unknown escape sequence \\é");
        assert_eq!(bad(r"\ "), "unknown escape sequence \\ ");
        assert_eq!(bad("\\"), "a lone \\ ends the string");
    }
}
