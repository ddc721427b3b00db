//! Reader tests: exact forms, exact spans, exact errors, and the shared corpus.

use super::*;

fn try_read(src: &str) -> Result<Vec<Form>, FennelError> {
    let source: Arc<str> = src.into();
    let result = read_all(&source, "test.fnl");
    if let Ok(forms) = &result {
        for form in forms {
            check_span(src, form, Span::new(0, src.len()));
        }
    }
    result
}

fn read(src: &str) -> Vec<Form> {
    try_read(src).unwrap_or_else(|e| panic!("{src:?} should read, got {e}"))
}

fn read_err(src: &str) -> FennelError {
    match try_read(src) {
        Ok(forms) => panic!("{src:?} should fail, read {}", show_forms(&forms)),
        Err(e) => {
            assert_eq!(e.stage, Stage::Parse);
            assert_eq!(e.file, "test.fnl");
            e
        }
    }
}

/// Message, line and column of the error reading `src`.
fn err(src: &str) -> (String, usize, usize) {
    let e = read_err(src);
    (e.message, e.line, e.column)
}

/// Every span lies inside its parent's, on character boundaries, and children come in order.
fn check_span(src: &str, form: &Form, parent: Span) {
    let Span { start, end } = form.span;
    assert!(
        start <= end && parent.start <= start && end <= parent.end,
        "{form:?} outside {parent:?}"
    );
    assert!(
        src.is_char_boundary(start) && src.is_char_boundary(end),
        "{form:?} splits a character"
    );
    let children: Vec<&Form> = match &form.kind {
        FormKind::List(items) | FormKind::Seq(items) => items.iter().collect(),
        FormKind::Table(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return,
    };
    let mut previous_end = start;
    for child in children {
        check_span(src, child, form.span);
        assert!(
            child.span.start >= previous_end,
            "{child:?} overlaps its sibling in {form:?}"
        );
        previous_end = child.span.end;
    }
}

/// A compact rendering: strings in quotes (bytes escaped), floats always with `.` or `e`.
fn show(form: &Form) -> String {
    let join = |items: &mut dyn Iterator<Item = &Form>| items.map(show).collect::<Vec<_>>().join(" ");
    match &form.kind {
        FormKind::Nil => "nil".into(),
        FormKind::Bool(b) => b.to_string(),
        FormKind::Int(n) => n.to_string(),
        FormKind::Float(x) => format!("{x:?}"),
        FormKind::Str(bytes) => {
            let mut out = String::from("\"");
            for &b in bytes {
                match b {
                    b'"' | b'\\' => out.push_str(&format!("\\{}", b as char)),
                    b' '..=b'~' => out.push(b as char),
                    _ => out.push_str(&format!("\\x{b:02x}")),
                }
            }
            out + "\""
        }
        FormKind::Sym(name) => name.clone(),
        FormKind::List(items) => format!("({})", join(&mut items.iter())),
        FormKind::Seq(items) => format!("[{}]", join(&mut items.iter())),
        FormKind::Table(pairs) => {
            format!("{{{}}}", join(&mut pairs.iter().flat_map(|(k, v)| [k, v])))
        }
    }
}

fn show_forms(forms: &[Form]) -> String {
    forms.iter().map(show).collect::<Vec<_>>().join(" ")
}

/// Read and render.
fn r(src: &str) -> String {
    show_forms(&read(src))
}

/// The source text of every form, outermost first (pre-order).
fn texts(src: &str) -> Vec<&str> {
    fn walk<'s>(src: &'s str, form: &Form, out: &mut Vec<&'s str>) {
        out.push(&src[form.span.start..form.span.end]);
        match &form.kind {
            FormKind::List(items) | FormKind::Seq(items) => items.iter().for_each(|f| walk(src, f, out)),
            FormKind::Table(pairs) => pairs.iter().for_each(|(k, v)| {
                walk(src, k, out);
                walk(src, v, out);
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for form in read(src) {
        walk(src, &form, &mut out);
    }
    out
}

fn one(src: &str) -> Form {
    let mut forms = read(src);
    assert_eq!(forms.len(), 1, "{src:?}");
    forms.remove(0)
}

// ---- whitespace, comments, preamble ----

#[test]
fn empty_and_blank_sources() {
    assert!(read("").is_empty());
    assert!(read(" \t\r\n\x0b\x0c ").is_empty());
    assert!(read("; only a comment").is_empty());
    assert!(read(";; a\n;;; b\n").is_empty());
}

#[test]
fn comments_run_to_end_of_line() {
    assert_eq!(
        r("(print \"one\") ; trailing\n(print ;; middle\n  \"two\")"),
        r#"(print "one") (print "two")"#
    );
    assert_eq!(r("a;b\nc"), "a c");
    assert_eq!(r("\"three;not a comment\""), "\"three;not a comment\"");
}

#[test]
fn shebang_first_line_is_skipped() {
    assert_eq!(r("#!/usr/bin/env fennel\n(print 1)"), "(print 1)");
    assert_eq!(texts("#!/usr/bin/env fennel\n(f)"), ["(f)", "f"]);
    assert!(read("#!only").is_empty());
    // Only on the first line: elsewhere `#!x` is a hashfn of the symbol `!x`.
    assert_eq!(r("1\n#!x"), "1 (hashfn !x)");
}

#[test]
fn byte_order_mark_is_skipped() {
    assert_eq!(r("\u{feff}(print 1)"), "(print 1)");
    assert_eq!(texts("\u{feff}x"), ["x"]);
    // Found by fuzzing: only the first one is skipped; a later U+FEFF is a symbol character.
    assert_eq!(one("\u{feff}\u{feff}").kind, FormKind::Sym("\u{feff}".into()));
    assert_eq!(r("x \u{feff}"), "x \u{feff}");
}

// ---- atoms ----

#[test]
fn literals() {
    assert_eq!(one("nil").kind, FormKind::Nil);
    assert_eq!(one("true").kind, FormKind::Bool(true));
    assert_eq!(one("false").kind, FormKind::Bool(false));
    // Only the exact words.
    assert_eq!(r("nil? truest false-y"), "nil? truest false-y");
}

#[test]
fn integers() {
    assert_eq!(one("42").kind, FormKind::Int(42));
    assert_eq!(one("-7").kind, FormKind::Int(-7));
    assert_eq!(one("+7").kind, FormKind::Int(7));
    assert_eq!(one("1_000_000").kind, FormKind::Int(1_000_000));
    assert_eq!(one("0xff").kind, FormKind::Int(255));
    assert_eq!(one("-0x10").kind, FormKind::Int(-16));
    assert_eq!(one("9223372036854775807").kind, FormKind::Int(i64::MAX));
    assert_eq!(one("-9223372036854775808").kind, FormKind::Int(i64::MIN));
    assert_eq!(one("0xffffffffffffffff").kind, FormKind::Int(-1));
}

#[test]
fn floats() {
    assert_eq!(
        r("1.5 .5 5. -0.75 1e10 1E-3 3.25e1 0x1p4 0x.8"),
        "1.5 0.5 5.0 -0.75 10000000000.0 0.001 32.5 16.0 0.5"
    );
    assert_eq!(one("9223372036854775808").kind, FormKind::Float(9223372036854775808.0));
    assert_eq!(one("1e400").kind, FormKind::Float(f64::INFINITY));
    assert_eq!(one("1.0").kind, FormKind::Float(1.0));
}

#[test]
fn number_spans_cover_the_token() {
    assert_eq!(
        texts("(+ -1_000 0x1p4 .5)"),
        ["(+ -1_000 0x1p4 .5)", "+", "-1_000", "0x1p4", ".5"]
    );
}

#[test]
fn keywords_are_strings() {
    assert_eq!(one(":foo").kind, FormKind::Str(b"foo".to_vec()));
    assert_eq!(
        r(":a.b :x:y :1 :: :-?> :λ :a#b"),
        r#""a.b" "x:y" "1" ":" "-?>" "\xce\xbb" "a#b""#
    );
    assert_eq!(texts("[:foo :bar]"), ["[:foo :bar]", ":foo", ":bar"]);
    // A keyword ends where a symbol would.
    assert_eq!(r("(:a:b)"), r#"("a:b")"#);
    assert_eq!(r(":a\"s\""), r#""a" "s""#);
}

#[test]
fn lone_colon_is_a_symbol() {
    assert_eq!(r("(: obj :method 1)"), r#"(: obj "method" 1)"#);
    assert_eq!(one(":").kind, FormKind::Sym(":".into()));
}

#[test]
fn symbols_are_not_split() {
    let names = [
        "foo",
        "a.b.c",
        "a:method",
        "a.b:method",
        "...",
        "&",
        "&as",
        "$",
        "$1",
        "$...",
        "?.",
        "-?>",
        "-?>>",
        "->",
        "..",
        "~=",
        "λ",
        "empty?",
        "string->list",
        "*debug*",
        "+",
        "-",
        "//",
        "%",
        "^",
        "<=",
        "not=",
        "_",
        "_1",
        ".",
        "?x",
        "x!",
        "a\\b",
        "a|b",
        "a#b",
        "-x",
        "+x",
        "-_1x",
        "é",
        "日本",
    ];
    for name in names {
        assert_eq!(one(name).kind, FormKind::Sym(name.into()), "{name:?}");
    }
    assert_eq!(texts("(λ [x] x)"), ["(λ [x] x)", "λ", "[x]", "x", "x"]);
}

#[test]
fn quote_characters_end_a_symbol() {
    assert_eq!(r("a'b"), "a (quote b)");
    assert_eq!(r("a,b"), "a (unquote b)");
    assert_eq!(r("a`b"), "a (quote b)");
    assert_eq!(r("a\"b\""), r#"a "b""#);
    assert_eq!(r("a(b)c"), "a (b) c");
    assert_eq!(r("a;b"), "a");
}

// ---- strings ----

#[test]
fn strings_and_escapes() {
    assert_eq!(one(r#""hello""#).kind, FormKind::Str(b"hello".to_vec()));
    assert_eq!(one(r#""""#).kind, FormKind::Str(Vec::new()));
    assert_eq!(r(r#""a\tb\n\"q\" \\ \'""#), r#""a\x09b\x0a\"q\" \\ '""#);
    assert_eq!(
        r(r#""\72\105\33" "\x48\x65" "\u{20AC}" "\0" "\255""#),
        r#""Hi!" "He" "\xe2\x82\xac" "\x00" "\xff""#
    );
    assert_eq!(r("\"alpha\\z      beta\""), "\"alphabeta\"");
    assert_eq!(r("\"a\\z\n   b\""), "\"ab\"");
    assert_eq!(r("\"a\\\nb\""), "\"a\\x0ab\"");
    assert_eq!(r(r#""\a\b\f\v\r""#), r#""\x07\x08\x0c\x0b\x0d""#);
}

#[test]
fn strings_may_span_lines() {
    let src = "(local poem \"roses are red\nviolets are blue\")\n(print poem)";
    let forms = read(src);
    let items = forms[0].as_list().unwrap();
    assert_eq!(
        items[2].kind,
        FormKind::Str(b"roses are red\nviolets are blue".to_vec())
    );
    assert_eq!(
        &src[items[2].span.start..items[2].span.end],
        "\"roses are red\nviolets are blue\""
    );
    assert_eq!(forms[1].span, Span::new(46, 58));
}

#[test]
fn string_spans_include_the_quotes() {
    assert_eq!(
        texts(r#"(print "a\"b" "é")"#),
        [r#"(print "a\"b" "é")"#, "print", r#""a\"b""#, "\"é\""]
    );
}

// ---- collections ----

#[test]
fn lists_sequences_tables() {
    assert_eq!(r("(f 1 [2 3] {:a 4})"), r#"(f 1 [2 3] {"a" 4})"#);
    assert_eq!(r("() [] {}"), "() [] {}");
    assert_eq!(r("((()))"), "((()))");
    let table = one("{:a 1 :b [2]}");
    let FormKind::Table(pairs) = &table.kind else {
        panic!("{table:?}")
    };
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[1].0.kind, FormKind::Str(b"b".to_vec()));
    assert_eq!(pairs[1].1.span, Span::new(9, 12));
}

#[test]
fn collection_spans_include_delimiters() {
    assert_eq!(
        texts("(let [x {:k v}]\n  x)"),
        [
            "(let [x {:k v}]\n  x)",
            "let",
            "[x {:k v}]",
            "x",
            "{:k v}",
            ":k",
            "v",
            "x"
        ]
    );
    assert_eq!(one("  ( a )  ").span, Span::new(2, 7));
}

#[test]
fn table_shorthand() {
    assert_eq!(r("{: x : y}"), r#"{"x" x "y" y}"#);
    assert_eq!(r("{: x :z 1 : a.b}"), r#"{"x" x "z" 1 "a.b" a.b}"#);
    // Key span is the `:`, value span the symbol.
    assert_eq!(texts("{: x : y}"), ["{: x : y}", ":", "x", ":", "y"]);
    let table = one("{: x}");
    let FormKind::Table(pairs) = &table.kind else { panic!() };
    assert_eq!(pairs[0].0, Form::new(FormKind::Str(b"x".to_vec()), Span::new(1, 2)));
    assert_eq!(pairs[0].1, Form::new(FormKind::Sym("x".into()), Span::new(3, 4)));
    // Only before a symbol, and only in key position.
    assert_eq!(r("{: 1}"), "{: 1}");
    assert_eq!(r("{:k :}"), r#"{"k" :}"#);
    assert_eq!(r("[: x]"), "[: x]");
}

// ---- prefixes ----

#[test]
fn hashfn() {
    assert_eq!(r("#(+ $1 1)"), "(hashfn (+ $1 1))");
    assert_eq!(r("#[$1]"), "(hashfn [$1])");
    assert_eq!(r("#{:value $}"), r#"(hashfn {"value" $})"#);
    assert_eq!(r("#$"), "(hashfn $)");
    assert_eq!(r("#$3"), "(hashfn $3)");
    assert_eq!(r("#$..."), "(hashfn $...)");
    assert_eq!(r("#:kw"), r#"(hashfn "kw")"#);
    assert_eq!(texts("#(f $)"), ["#(f $)", "#", "(f $)", "f", "$"]);
}

#[test]
fn lone_hash_is_the_length_symbol() {
    assert_eq!(r("(# xs)"), "(# xs)");
    assert_eq!(r("(#)"), "(#)");
    assert_eq!(r("[#]"), "[#]");
    assert_eq!(r("#"), "#");
    assert_eq!(r("# ;c\nx"), "# x");
    assert_eq!(r("#;c"), "#");
    assert_eq!(texts("(# xs)"), ["(# xs)", "#", "xs"]);
    // Inside a symbol `#` is just a character.
    assert_eq!(r("a#"), "a#");
}

#[test]
fn quote_quasiquote_unquote() {
    assert_eq!(r("'x"), "(quote x)");
    assert_eq!(r("`(a ,b)"), "(quote (a (unquote b)))");
    assert_eq!(r("''x"), "(quote (quote x))");
    assert_eq!(r("'[1 2]"), "(quote [1 2])");
    assert_eq!(r(",#$"), "(unquote (hashfn $))");
    assert_eq!(
        texts("('a `b ,c)"),
        ["('a `b ,c)", "'a", "'", "a", "`b", "`", "b", ",c", ",", "c"]
    );
    assert_eq!(texts("'(a)"), ["'(a)", "'", "(a)", "a"]);
}

// ---- errors ----

#[test]
fn invalid_escape() {
    let e = read_err("(print \"fine\")\n(print \"bad \\q escape\")");
    assert_eq!(e.message, r#"Invalid string: "bad \q escape""#);
    assert_eq!((e.line, e.column), (2, 8));
    assert_eq!(e.span, Span::new(22, 37));
    assert_eq!(e.help.as_deref(), Some("unknown escape sequence \\q"));
    assert_eq!(
        e.to_string(),
        r#"test.fnl:2:8: parse error: Invalid string: "bad \q escape""#
    );
}

#[test]
fn other_bad_strings() {
    assert_eq!(err(r#""\x4""#), (r#"Invalid string: "\x4""#.into(), 1, 1));
    assert_eq!(err(r#"x "\256""#), (r#"Invalid string: "\256""#.into(), 1, 3));
    assert_eq!(err(r#""\u{110000000}""#).0, r#"Invalid string: "\u{110000000}""#);
    // Long strings are shortened in the message.
    let long = format!("\"{}\\q\"", "a".repeat(100));
    assert_eq!(err(&long).0, format!("Invalid string: \"{}...", "a".repeat(59)));
}

#[test]
fn unterminated_string() {
    let e = read_err("(print \"abc\n");
    assert_eq!(e.message, "expected closing delimiter \"");
    assert_eq!((e.line, e.column), (2, 1));
    assert_eq!(
        e.help.as_deref(),
        Some("the string starting at line 1, column 8 is never closed")
    );
    assert_eq!(err(r#""abc\""#).0, "expected closing delimiter \"");
}

#[test]
fn malformed_numbers() {
    assert_eq!(
        err("(local x 1)\n(print (+ x 2x))"),
        ("could not read number \"2x\"".into(), 2, 13)
    );
    assert_eq!(err("-1x").0, "could not read number \"-1x\"");
    assert_eq!(err("+1x").0, "could not read number \"+1x\"");
    assert_eq!(err(".5.5").0, "could not read number \".5.5\"");
    assert_eq!(err("1.2.3").0, "could not read number \"1.2.3\"");
    assert_eq!(err("0xg").0, "could not read number \"0xg\"");
    assert_eq!(err("1e").0, "could not read number \"1e\"");
    assert_eq!(err("[1 2a]").1..=err("[1 2a]").2, 1..=4);
    assert_eq!(read_err("(f 2x)").span, Span::new(3, 5));
}

#[test]
fn mismatched_delimiter() {
    let e = read_err("(local xs [1 2 3)\n(print (length xs))");
    assert_eq!(e.message, "mismatched closing delimiter ), expected ]");
    assert_eq!((e.line, e.column), (1, 17));
    assert_eq!(e.span, Span::new(16, 17));
    assert_eq!(e.help.as_deref(), Some("the [ at line 1, column 11 is still open"));
    assert_eq!(err("{:a 1]").0, "mismatched closing delimiter ], expected }");
    assert_eq!(err("(}").0, "mismatched closing delimiter }, expected )");
}

#[test]
fn unexpected_closer() {
    assert_eq!(err("(f))"), ("unexpected closing delimiter )".into(), 1, 4));
    assert_eq!(err("\n]"), ("unexpected closing delimiter ]".into(), 2, 1));
    assert_eq!(err("}").0, "unexpected closing delimiter }");
}

#[test]
fn unbalanced_open() {
    let src = "(fn add [a b]\n  (+ a b)\n(print (add 1 2))\n";
    let e = read_err(src);
    assert_eq!(e.message, "expected closing delimiter )");
    assert_eq!((e.line, e.column), (4, 1));
    assert_eq!(e.span, Span::new(src.len(), src.len()));
    assert_eq!(e.help.as_deref(), Some("the ( at line 1, column 1 is never closed"));
    // The innermost open delimiter is named.
    assert_eq!(err("(a [b {").0, "expected closing delimiter }");
    assert_eq!(err("[").0, "expected closing delimiter ]");
}

#[test]
fn odd_table() {
    let e = read_err("(f {:a 1 :b})");
    assert_eq!(e.message, "expected even number of values in table literal");
    assert_eq!(e.span, Span::new(3, 12));
    assert_eq!((e.line, e.column), (1, 4));
    assert_eq!(err("{:x}").0, "expected even number of values in table literal");
}

#[test]
fn prefix_without_a_form() {
    assert_eq!(err("' x"), ("expected a form after the ' prefix".into(), 1, 1));
    assert_eq!(err("(f ')"), ("expected a form after the ' prefix".into(), 1, 4));
    assert_eq!(err("x `").0, "expected a form after the ` prefix");
    assert_eq!(err(",\nx").0, "expected a form after the , prefix");
    assert_eq!(err("';c\nx").0, "expected a form after the ' prefix");
    // A prefix before an unreadable form reports that form.
    assert_eq!(err("'@").0, "invalid character: @");
}

#[test]
fn invalid_characters() {
    assert_eq!(err("(a @b)"), ("invalid character: @".into(), 1, 4));
    assert_eq!(err("a\u{1}").0, "invalid character: \\x01");
    assert_eq!(err("\u{7f}").0, "invalid character: \\x7f");
    assert_eq!(err("\0").0, "invalid character: \\x00");
    assert_eq!(err("~foo"), ("invalid character: ~".into(), 1, 1));
    assert_eq!(err("a~b"), ("invalid character: ~".into(), 1, 2));
    assert_eq!(err("~").0, "invalid character: ~");
}

#[test]
fn malformed_multisyms() {
    assert_eq!(err("(print a..b)"), ("malformed multisym: a..b".into(), 1, 8));
    assert_eq!(err("a.:b").0, "malformed multisym: a.:b");
    assert_eq!(err("a:").0, "malformed multisym: a:");
    assert_eq!(err("a:b.c").0, "method must be last component of multisym: a:b.c");
    assert_eq!(err("a:b:c").0, "method must be last component of multisym: a:b:c");
    assert_eq!(r("a.b:c .. ... $... ?."), "a.b:c .. ... $... ?.");
}

#[test]
fn error_columns_count_characters() {
    assert_eq!(err("(λ é 2x)"), ("could not read number \"2x\"".into(), 1, 6));
}

#[test]
fn nesting_limit() {
    let ok = format!("{}{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(read(&ok).len(), 1);
    let deep = format!("{}{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    let e = read_err(&deep);
    assert_eq!(
        e.message,
        format!("nesting too deep: more than {MAX_DEPTH} levels of lists, tables and quotes")
    );
    assert_eq!(e.span, Span::new(MAX_DEPTH, MAX_DEPTH + 1));
    // Prefixes count too, and nothing overflows on absurd depths.
    assert!(try_read(&format!("{}x", "'".repeat(MAX_DEPTH))).is_ok());
    assert!(try_read(&format!("{}x", "'".repeat(MAX_DEPTH + 1))).is_err());
    assert!(try_read(&"[".repeat(1_000_000)).is_err());
    assert!(try_read(&"#".repeat(1_000_000)).is_err());
}

#[test]
fn long_inputs_read_in_linear_time() {
    let src = "(f :a 1 \"s\" [x] {:k v}) ; c\n".repeat(20_000);
    assert_eq!(read(&src).len(), 20_000);
}

// ---- the shared conformance corpus ----

/// Every `.fnl` case in `shared/fennel-cases` reads, except the four parse-error
/// cases, which fail on the line their `.err` file names.
#[test]
fn conformance_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fennel-cases");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipping: no corpus at {}", dir.display());
        return;
    };
    let parse_errors = [
        "err-invalid-escape",
        "err-malformed-number",
        "err-mismatched-delimiter",
        "err-unbalanced-open",
    ];
    let mut seen = 0;
    let mut failed_as_expected = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "fnl") {
            continue;
        }
        seen += 1;
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let source: Arc<str> = text.as_str().into();
        let result = read_all(&source, &format!("{name}.fnl"));
        if parse_errors.contains(&name.as_str()) {
            let e = result.expect_err(&name);
            // The .err file starts `NAME.fnl:LINE:COL: ...`.
            let expected = std::fs::read_to_string(path.with_extension("err")).unwrap();
            let line: usize = expected.split(':').nth(1).and_then(|l| l.trim().parse().ok()).unwrap();
            assert_eq!(e.line, line, "{name}: {e}");
            failed_as_expected += 1;
        } else {
            let forms = result.unwrap_or_else(|e| panic!("{name} should read: {e}"));
            for form in &forms {
                check_span(&text, form, Span::new(0, text.len()));
            }
        }
    }
    assert!(seen > 0, "no .fnl files in {}", dir.display());
    assert_eq!(failed_as_expected, parse_errors.len());
}
