//! Number literals, read the way Fennel 1.5 reads them: drop every `_`, then
//! convert like Lua 5.4's `tonumber` (integer first, float when that fails).

/// A number literal's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Number {
    Int(i64),
    Float(f64),
}

/// The value of a symbol-like token, or `None` when it is not a number.
pub(super) fn parse(token: &str) -> Option<Number> {
    // Fennel: `_1` is a symbol, while `1_000` and `-_1` are numbers.
    if token.starts_with('_') {
        return None;
    }
    let text: String = token.chars().filter(|&c| c != '_').collect();
    if let Some(int) = parse_int(text.as_bytes()) {
        return Some(Number::Int(int));
    }
    parse_float(text.as_bytes()).map(Number::Float)
}

/// True when a token that failed to be a number still starts like one:
/// a digit, optionally after a sign and/or a dot (`2x`, `-1q`, `.5.5`).
/// Such a token is an error, not a symbol.
pub(super) fn looks_numeric(token: &str) -> bool {
    let mut bytes = token.as_bytes();
    if let [b'+' | b'-', rest @ ..] = bytes {
        bytes = rest;
    }
    if let [b'.', rest @ ..] = bytes {
        bytes = rest;
    }
    matches!(bytes.first(), Some(b) if b.is_ascii_digit())
}

/// An optional leading `-` or `+`; returns whether it was `-` and the rest.
fn split_sign(s: &[u8]) -> (bool, &[u8]) {
    match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    }
}

fn hex_prefix(s: &[u8]) -> Option<&[u8]> {
    match s {
        [b'0', b'x' | b'X', rest @ ..] => Some(rest),
        _ => None,
    }
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Lua 5.4 integer syntax. Hex integers wrap modulo 2^64; a decimal integer that
/// does not fit in an i64 is not an integer (the caller then reads it as a float).
fn parse_int(s: &[u8]) -> Option<i64> {
    let (negative, digits) = split_sign(s);
    let magnitude: u64 = if let Some(hex) = hex_prefix(digits) {
        if hex.is_empty() {
            return None;
        }
        let mut acc: u64 = 0;
        for &b in hex {
            acc = acc.wrapping_mul(16).wrapping_add(u64::from(hex_value(b)?));
        }
        acc
    } else {
        if digits.is_empty() {
            return None;
        }
        let mut acc: u64 = 0;
        for &b in digits {
            if !b.is_ascii_digit() {
                return None;
            }
            acc = acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        // -9223372036854775808 is an integer, 9223372036854775808 is not.
        if acc > i64::MAX as u64 + u64::from(negative) {
            return None;
        }
        acc
    };
    let value = magnitude as i64;
    Some(if negative { value.wrapping_neg() } else { value })
}

/// Lua 5.4 float syntax (C `strtod` in the C locale, without `inf`/`nan`).
fn parse_float(s: &[u8]) -> Option<f64> {
    let (negative, body) = split_sign(s);
    let magnitude = match hex_prefix(body) {
        Some(hex) => parse_hex_float(hex)?,
        None => parse_decimal_float(body)?,
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Digits with at most one `.` (at least one digit), then an optional exponent
/// marker followed by an optionally signed decimal exponent. Returns the
/// mantissa (with the dot) and the exponent digits with their sign.
fn split_mantissa_exponent(s: &[u8], is_digit: fn(u8) -> bool, markers: [u8; 2]) -> Option<(&[u8], Option<&[u8]>)> {
    let (mantissa, exponent) = match s.iter().position(|b| markers.contains(b)) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let mut seen_dot = false;
    let mut seen_digit = false;
    for &b in mantissa {
        if b == b'.' && !seen_dot {
            seen_dot = true;
        } else if is_digit(b) {
            seen_digit = true;
        } else {
            return None;
        }
    }
    if !seen_digit {
        return None;
    }
    if let Some(exp) = exponent {
        let (_, exp_digits) = split_sign(exp);
        if exp_digits.is_empty() || !exp_digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
    }
    Some((mantissa, exponent))
}

fn parse_decimal_float(s: &[u8]) -> Option<f64> {
    split_mantissa_exponent(s, |b| b.is_ascii_digit(), [b'e', b'E'])?;
    // The grammar checked above is exactly the one Rust's parser accepts (minus
    // `inf`/`nan`), and both round correctly, so the result matches `strtod`.
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// `0x` already stripped: `1.8p4`, `.8`, `ff.`, with an optional binary exponent.
fn parse_hex_float(s: &[u8]) -> Option<f64> {
    let (mantissa, exponent) = split_mantissa_exponent(s, |b| b.is_ascii_hexdigit(), [b'p', b'P'])?;

    // Keep up to 124 significant bits exactly; past that only whether anything
    // non-zero was dropped matters (for rounding), and the scale.
    let mut bits: u128 = 0;
    let mut scale: i64 = 0;
    let mut sticky = false;
    let mut after_dot = false;
    for &b in mantissa {
        if b == b'.' {
            after_dot = true;
            continue;
        }
        let digit = hex_value(b)?;
        if bits >> 124 == 0 {
            bits = (bits << 4) | u128::from(digit);
            if after_dot {
                scale -= 4;
            }
        } else {
            sticky |= digit != 0;
            if !after_dot {
                scale += 4;
            }
        }
    }
    if let Some(exp) = exponent {
        let (negative, digits) = split_sign(exp);
        // Saturate: anything past a few thousand is already 0 or infinity.
        let mut value: i64 = 0;
        for &b in digits {
            value = (value * 10 + i64::from(b - b'0')).min(1 << 40);
        }
        scale += if negative { -value } else { value };
    }
    Some(scaled_to_f64(bits, sticky, scale))
}

/// `(bits + ε) * 2^scale` rounded to the nearest f64, ties to even, where ε is
/// some value strictly between 0 and 1 when `sticky` is set. Handles overflow
/// to infinity and subnormals with a single rounding.
fn scaled_to_f64(bits: u128, sticky: bool, scale: i64) -> f64 {
    if bits == 0 {
        return 0.0;
    }
    let shift_up = bits.leading_zeros();
    let m = bits << shift_up;
    // Now the value is (m / 2^127) * 2^e, with 1 <= m / 2^127 < 2.
    let e = scale - i64::from(shift_up) + 127;
    if e > 1023 {
        return f64::INFINITY;
    }
    // How many leading bits of m survive: 53 for normal numbers, fewer below 2^-1022.
    let keep = if e >= -1022 { 53 } else { e + 1075 };
    if keep <= 0 {
        // Below half the smallest subnormal it rounds to 0; exactly half is a tie to 0.
        let above_half = keep == 0 && (m != 1 << 127 || sticky);
        return if above_half { f64::from_bits(1) } else { 0.0 };
    }
    let drop = (128 - keep) as u32;
    let mut q = (m >> drop) as u64;
    let rest = m & ((1u128 << drop) - 1);
    let half = 1u128 << (drop - 1);
    if rest > half || (rest == half && (sticky || q & 1 == 1)) {
        q += 1;
    }
    if e >= -1022 {
        let mut e = e;
        if q == 1 << 53 {
            q >>= 1;
            e += 1;
            if e > 1023 {
                return f64::INFINITY;
            }
        }
        f64::from_bits((((e + 1023) as u64) << 52) | (q & ((1 << 52) - 1)))
    } else {
        // A subnormal is q * 2^-1074, whose bit pattern is q itself; a carry up to
        // 2^52 gives the smallest normal number's pattern, which is also right.
        f64::from_bits(q)
    }
}

#[cfg(test)]
mod tests {
    use super::Number::{Float, Int};
    use super::*;

    #[test]
    fn decimal_integers() {
        assert_eq!(parse("0"), Some(Int(0)));
        assert_eq!(parse("42"), Some(Int(42)));
        assert_eq!(parse("-42"), Some(Int(-42)));
        assert_eq!(parse("+7"), Some(Int(7)));
        assert_eq!(parse("007"), Some(Int(7)));
        assert_eq!(parse("9223372036854775807"), Some(Int(i64::MAX)));
        assert_eq!(parse("-9223372036854775808"), Some(Int(i64::MIN)));
    }

    #[test]
    fn decimal_overflow_becomes_float() {
        assert_eq!(parse("9223372036854775808"), Some(Float(9223372036854775808.0)));
        assert_eq!(parse("-9223372036854775809"), Some(Float(-9223372036854775809.0)));
        assert_eq!(parse("100000000000000000000"), Some(Float(1e20)));
    }

    #[test]
    fn underscores_are_dropped() {
        assert_eq!(parse("1_000"), Some(Int(1000)));
        assert_eq!(parse("1__0_"), Some(Int(10)));
        assert_eq!(parse("0x_ff"), Some(Int(255)));
        assert_eq!(parse("1_0.2_5"), Some(Float(10.25)));
        assert_eq!(parse("-_1"), Some(Int(-1)));
        assert_eq!(parse("_1"), None);
        assert_eq!(parse("_"), None);
    }

    #[test]
    fn hex_integers_wrap_like_lua() {
        assert_eq!(parse("0xff"), Some(Int(255)));
        assert_eq!(parse("0XFF"), Some(Int(255)));
        assert_eq!(parse("-0x10"), Some(Int(-16)));
        assert_eq!(parse("0x7fffffffffffffff"), Some(Int(i64::MAX)));
        assert_eq!(parse("0xffffffffffffffff"), Some(Int(-1)));
        assert_eq!(parse("0x10000000000000000"), Some(Int(0)));
        assert_eq!(parse("0x8000000000000000"), Some(Int(i64::MIN)));
        assert_eq!(parse("0x"), None);
        assert_eq!(parse("0xg"), None);
    }

    #[test]
    fn decimal_floats() {
        assert_eq!(parse("1.5"), Some(Float(1.5)));
        assert_eq!(parse(".5"), Some(Float(0.5)));
        assert_eq!(parse("-.5"), Some(Float(-0.5)));
        assert_eq!(parse("5."), Some(Float(5.0)));
        assert_eq!(parse("1e10"), Some(Float(1e10)));
        assert_eq!(parse("1E-3"), Some(Float(1e-3)));
        assert_eq!(parse("2.5e+2"), Some(Float(250.0)));
        assert_eq!(parse("1e400"), Some(Float(f64::INFINITY)));
        assert_eq!(parse("1e-400"), Some(Float(0.0)));
        assert_eq!(parse("0.1"), Some(Float(0.1)));
        match parse("-0.0") {
            Some(Float(z)) => assert!(z == 0.0 && z.is_sign_negative()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn not_numbers() {
        for text in [
            "", "-", "+", ".", "..", "...", "-.", "e5", "1e", "1e+", "1.2.3", "2x", "inf", "nan", "-inf", "1..",
            "0x1p", "0x.p1", "0x.", "1f", "+-1", "--1", "1e5.5", "x1", "1 2", "١",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn hex_floats() {
        assert_eq!(parse("0x1p4"), Some(Float(16.0)));
        assert_eq!(parse("0x1P-1"), Some(Float(0.5)));
        assert_eq!(parse("0x.8"), Some(Float(0.5)));
        assert_eq!(parse("0x1.8"), Some(Float(1.5)));
        assert_eq!(parse("0xA."), Some(Float(10.0)));
        assert_eq!(parse("-0x1.8p1"), Some(Float(-3.0)));
        assert_eq!(parse("0x1p+2"), Some(Float(4.0)));
        assert_eq!(parse("0x0p0"), Some(Float(0.0)));
        assert_eq!(parse("0x1.fffffffffffffp1023"), Some(Float(f64::MAX)));
        assert_eq!(parse("0x1p1024"), Some(Float(f64::INFINITY)));
        assert_eq!(parse("0x1p99999999999999999999"), Some(Float(f64::INFINITY)));
        assert_eq!(parse("0x1p-99999999999999999999"), Some(Float(0.0)));
    }

    #[test]
    fn hex_float_rounding() {
        // Exactly halfway between 1 and the next f64: ties to even (down).
        assert_eq!(parse("0x1.00000000000008p0"), Some(Float(1.0)));
        // A non-zero digit far past the kept bits breaks the tie upwards.
        let up = format!("0x1.00000000000008{}1p0", "0".repeat(40));
        assert_eq!(parse(&up), Some(Float(1.0 + f64::EPSILON)));
        // Halfway with an odd last bit rounds up to even.
        assert_eq!(parse("0x1.00000000000018p0"), Some(Float(1.0 + 2.0 * f64::EPSILON)));
        // The largest finite value plus half an ulp rounds up and overflows.
        assert_eq!(parse("0x1.fffffffffffff8p1023"), Some(Float(f64::INFINITY)));
        // Long mantissas keep their scale.
        let long = format!("0x1{}", "0".repeat(40));
        assert_eq!(parse(&format!("{long}.0")), Some(Float(2f64.powi(160))));
    }

    #[test]
    fn hex_float_subnormals() {
        let min = f64::from_bits(1);
        assert_eq!(parse("0x1p-1074"), Some(Float(min)));
        assert_eq!(parse("0x1p-1075"), Some(Float(0.0)));
        assert_eq!(parse("0x1.1p-1075"), Some(Float(min)));
        assert_eq!(parse("0x1.8p-1074"), Some(Float(2.0 * min)));
        assert_eq!(parse("0x1p-1076"), Some(Float(0.0)));
        assert_eq!(parse("0x1p-1022"), Some(Float(f64::MIN_POSITIVE)));
        assert_eq!(parse("0x0.fffffffffffff8p-1022"), Some(Float(f64::MIN_POSITIVE)));
        assert_eq!(
            parse("0x0.fffffffffffffp-1022"),
            Some(Float(f64::from_bits((1 << 52) - 1)))
        );
    }

    #[test]
    fn numeric_looking_tokens() {
        for text in ["2x", "-1q", "+3a", ".5.5", "-.5x", "0xg", "1e"] {
            assert!(looks_numeric(text), "{text:?}");
        }
        for text in [
            "x2", "-", "->", "-?>", ".", "..", "...", "_1", "-x", "+", ".-1", "?.", "-_1x",
        ] {
            assert!(!looks_numeric(text), "{text:?}");
        }
    }
}
