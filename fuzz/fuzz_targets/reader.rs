//! Arbitrary UTF-8 through the reader. Checked:
//! - it never panics (nor overflows the stack);
//! - every span, of forms and of errors, lies in the source on character
//!   boundaries, and children lie inside their parent, in order;
//! - printing the forms back as Fennel and reading that gives the same forms.
#![no_main]

use std::fmt::Write;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use quire_core::fennel::reader::read_all;
use quire_core::fennel::{Form, FormKind, Span};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source: Arc<str> = text.into();
    match read_all(&source, "fuzz.fnl") {
        Ok(forms) => {
            for form in &forms {
                check_span(text, form, Span::new(0, text.len()));
            }
            round_trip(&forms);
        }
        Err(error) => {
            let Span { start, end } = error.span;
            assert!(
                start <= end && end <= text.len(),
                "error span {:?} out of bounds",
                error.span
            );
            assert!(
                text.is_char_boundary(start) && text.is_char_boundary(end),
                "error span splits a char"
            );
            assert!(error.line >= 1 && error.column >= 1);
            let _ = error.to_string();
        }
    }
});

fn check_span(text: &str, form: &Form, parent: Span) {
    let Span { start, end } = form.span;
    assert!(start <= end, "{form:?}");
    assert!(
        parent.start <= start && end <= parent.end,
        "{form:?} outside {parent:?}"
    );
    assert!(
        text.is_char_boundary(start) && text.is_char_boundary(end),
        "{form:?} splits a char"
    );
    let children: Vec<&Form> = match &form.kind {
        FormKind::List(items) | FormKind::Seq(items) => items.iter().collect(),
        FormKind::Table(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return,
    };
    let mut previous_end = start;
    for child in children {
        check_span(text, child, form.span);
        assert!(
            child.span.start >= previous_end,
            "{child:?} overlaps a sibling"
        );
        previous_end = child.span.end;
    }
}

/// Print the forms as Fennel source, read that, and compare (spans aside).
fn round_trip(forms: &[Form]) {
    // Start on a fresh line so a symbol such as U+FEFF is not taken for a byte order mark.
    let mut printed = String::from("\n");
    for form in forms {
        print(form, &mut printed);
        printed.push('\n');
    }
    let source: Arc<str> = printed.as_str().into();
    let again =
        read_all(&source, "printed.fnl").unwrap_or_else(|e| panic!("re-reading {printed:?}: {e}"));
    assert_eq!(again.len(), forms.len());
    for (a, b) in forms.iter().zip(&again) {
        assert!(
            same(a, b),
            "{a:?} printed as {printed:?} reads back as {b:?}"
        );
    }
}

fn print(form: &Form, out: &mut String) {
    let seq = |items: &mut dyn Iterator<Item = &Form>, out: &mut String| {
        for (i, item) in items.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            print(item, out);
        }
    };
    match &form.kind {
        FormKind::Nil => out.push_str("nil"),
        FormKind::Bool(b) => write!(out, "{b}").unwrap(),
        FormKind::Int(n) => write!(out, "{n}").unwrap(),
        FormKind::Float(x) if x.is_infinite() => {
            out.push_str(if *x > 0.0 { "1e999" } else { "-1e999" })
        }
        FormKind::Float(x) => write!(out, "{x:?}").unwrap(),
        FormKind::Str(bytes) => {
            out.push('"');
            for &b in bytes {
                match b {
                    b'"' | b'\\' => write!(out, "\\{}", b as char).unwrap(),
                    b' '..=b'~' => out.push(b as char),
                    _ => write!(out, "\\x{b:02x}").unwrap(),
                }
            }
            out.push('"');
        }
        FormKind::Sym(name) => out.push_str(name),
        FormKind::List(items) => {
            out.push('(');
            seq(&mut items.iter(), out);
            out.push(')');
        }
        FormKind::Seq(items) => {
            out.push('[');
            seq(&mut items.iter(), out);
            out.push(']');
        }
        FormKind::Table(pairs) => {
            out.push('{');
            seq(&mut pairs.iter().flat_map(|(k, v)| [k, v]), out);
            out.push('}');
        }
    }
}

/// Structural equality ignoring spans (floats by bits, so -0.0 != 0.0).
fn same(a: &Form, b: &Form) -> bool {
    match (&a.kind, &b.kind) {
        (FormKind::Float(x), FormKind::Float(y)) => x.to_bits() == y.to_bits(),
        (FormKind::List(xs), FormKind::List(ys)) | (FormKind::Seq(xs), FormKind::Seq(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y))
        }
        (FormKind::Table(xs), FormKind::Table(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(ys)
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        (x, y) => x == y,
    }
}
