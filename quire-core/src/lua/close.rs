//! To-be-closed variables (`local x <close>`) are refused in the sandbox.

pub(super) fn close_refusal(chunk: &str, line: usize) -> String {
    format!(
        "{chunk}:{line}: to-be-closed variables (<close>) are not allowed in the sandbox: \
         their __close can run where the instruction limit cannot stop it"
    )
}

/// The line of the first `<close>` attribute in Lua source, outside comments
/// and strings. A `__close` handler of a coroutine that the instruction limit
/// stopped runs with Lua's hooks off (the error was raised inside the hook,
/// and a dead coroutine keeps that state), so an endless one would hang the
/// run; refusing the attribute is the one reliable cut, since a metatable can
/// gain `__close` after `setmetatable`. (`< close >` used as two comparisons
/// is refused too; no pipeline needs that.)
pub(super) fn close_attribute_line(source: &[u8]) -> Option<usize> {
    let is_name = |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_');
    let skip_space = |mut i: usize| {
        while source.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
            i += 1;
        }
        i
    };
    let mut line = 1;
    let mut i = 0;
    while i < source.len() {
        match source[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'-' if source.get(i + 1) == Some(&b'-') => {
                i += 2;
                if let Some(end) = long_bracket_end(source, i) {
                    line += source[i..end].iter().filter(|&&b| b == b'\n').count();
                    i = end;
                } else {
                    while i < source.len() && source[i] != b'\n' {
                        i += 1;
                    }
                }
            }
            b'[' if long_bracket_end(source, i).is_some() => {
                let end = long_bracket_end(source, i).unwrap_or(source.len());
                line += source[i..end].iter().filter(|&&b| b == b'\n').count();
                i = end;
            }
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < source.len() && source[i] != quote {
                    if source[i] == b'\\' {
                        i += 1;
                    }
                    if source.get(i) == Some(&b'\n') {
                        line += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'<' => {
                let name = skip_space(i + 1);
                if source[name..].starts_with(b"close") && !is_name(source.get(name + 5)) {
                    let close = skip_space(name + 5);
                    if source.get(close) == Some(&b'>') {
                        return Some(line);
                    }
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// Where a long bracket (`[[`, `[==[`) opening at `source[at..]` ends, just
/// past its closing bracket (or at the end of the source); None when there is
/// no long bracket at `at`.
fn long_bracket_end(source: &[u8], at: usize) -> Option<usize> {
    if source.get(at) != Some(&b'[') {
        return None;
    }
    let level = source[at + 1..].iter().take_while(|&&b| b == b'=').count();
    if source.get(at + 1 + level) != Some(&b'[') {
        return None;
    }
    let mut closing = vec![b']'];
    closing.extend(std::iter::repeat_n(b'=', level));
    closing.push(b']');
    let body = at + 2 + level;
    Some(
        source[body..]
            .windows(closing.len())
            .position(|w| w == closing.as_slice())
            .map_or(source.len(), |p| body + p + closing.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_attributes_are_found_outside_comments_and_strings() {
        let found = |src: &str| close_attribute_line(src.as_bytes());
        assert_eq!(found("local x <close> = f()"), Some(1));
        assert_eq!(found("\nlocal a, b < close\n > = f()"), Some(2));
        assert_eq!(found("local x <const> = 1"), None);
        assert_eq!(found("local x <closed> = 1"), None);
        assert_eq!(found("-- local x <close> = f()\nprint(1)"), None);
        assert_eq!(found("--[==[ <close> ]] still ]==] print(1)"), None);
        assert_eq!(
            found("s = '<close>' .. \"<close>\" .. [[<close>]] .. [=[\n<close>]=]"),
            None
        );
        assert_eq!(found("s = 'it\\'s <close>'"), None);
        assert_eq!(found("s = [[\n\n]] local x <close> = y"), Some(3));
        assert_eq!(found("x = 'unterminated <close>"), None);
        assert_eq!(found("x = [[unterminated <close>"), None);
    }
}
