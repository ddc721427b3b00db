//! Compile-and-run tests: each special form, the compile errors, mangling,
//! multiple values and line preservation. Programs run in a plain Lua 5.4 VM
//! whose `print` writes into a buffer.

use std::sync::Arc;

use super::{CompileOptions, compile};
use crate::fennel::reader::read_all;
use crate::fennel::{FennelError, Stage};

const GLOBALS: &[&str] = &[
    "_G",
    "assert",
    "error",
    "getmetatable",
    "ipairs",
    "math",
    "next",
    "pairs",
    "pcall",
    "print",
    "rawget",
    "select",
    "setmetatable",
    "string",
    "table",
    "tonumber",
    "tostring",
    "type",
    "coroutine",
];

fn options() -> CompileOptions {
    CompileOptions {
        allowed_globals: GLOBALS.iter().map(|g| g.to_string()).collect(),
    }
}

fn lua_of(source: &str) -> Result<String, FennelError> {
    let source: Arc<str> = source.into();
    let forms = read_all(&source, "test.fnl")?;
    compile(&forms, &source, "test.fnl", &options())
}

/// Compile and run; returns the printed lines, or `error: …` for a Lua error.
fn run(source: &str) -> String {
    let code = lua_of(source).unwrap_or_else(|e| panic!("compile error: {e}\n{source}"));
    let lua = mlua::Lua::new();
    lua.load(
        r##"__out = {}
        print = function(...)
          local parts = {}
          for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
          __out[#__out + 1] = table.concat(parts, "\t")
        end"##,
    )
    .exec()
    .expect("prelude");
    let result = lua.load(&code).set_name("@test.fnl").exec();
    let printed: String = lua.load("table.concat(__out, '\\n')").eval().expect("output");
    match result {
        Ok(()) => printed,
        Err(e) => format!("{printed}error: {e}\n--- lua ---\n{code}"),
    }
}

fn compile_error(source: &str) -> FennelError {
    match lua_of(source) {
        Ok(code) => panic!("expected a compile error for {source}, got:\n{code}"),
        Err(e) => {
            assert_eq!(e.stage, Stage::Compile, "{e}");
            e
        }
    }
}

#[track_caller]
fn check(source: &str, expected: &str) {
    assert_eq!(run(source), expected, "program:\n{source}");
}

// ---- literals and names ----------------------------------------------------------

#[test]
fn literals() {
    check(
        "(print nil true false 42 -7 1.5 \"s\" :kw)",
        "nil\ttrue\tfalse\t42\t-7\t1.5\ts\tkw",
    );
    check(
        "(print 1.0 2e3 (math.type 1.0) (math.type 2e3))",
        "1\t2000\tinteger\tinteger",
    );
    check("(print 0.1 (= 0.1 (/ 1 10)) 1e300)", "0.1\ttrue\t1e+300");
    check(
        "(print math.mininteger (= -9223372036854775808 math.mininteger))",
        "-9223372036854775808\ttrue",
    );
    check("(print (length \"h\\195\\169\") \"tab\\tq\\\"\")", "3\ttab\tq\"");
}

#[test]
fn integral_float_literals_are_integers_and_others_round_trip() {
    assert!(lua_of("(print 1.0)").unwrap().contains("print(1)"));
    assert!(
        lua_of("(print 0.30000000000000004)")
            .unwrap()
            .contains("0.30000000000000004")
    );
}

#[test]
fn tables_and_sequences() {
    check(
        "(local t {:a 1 :some-key 2 \"end\" 3 1 :one}) (print t.a t.some-key (. t :end) (. t 1))",
        "1\t2\t3\tone",
    );
    check("(local s [1 2 3]) (print (length s) (. s 3))", "3\t3");
    check("(local x 5) (local t {: x}) (print t.x)", "5");
    check(
        "(fn f [] (values 1 2 3)) (print (length [(f)]) (length [(f) 9]))",
        "3\t2",
    );
}

#[test]
fn mangled_names_are_invisible_and_never_collide() {
    check(
        "(local empty? 1) (local a-b 2) (local a_b 3) (local *debug* 4) (local end 5) (local then 6)
         (print empty? a-b a_b *debug* end then)",
        "1\t2\t3\t4\t5\t6",
    );
    check(
        "(local string->list 1) (let [a_b 1] (let [a-b 2] (print a_b a-b string->list)))",
        "1\t2\t1",
    );
    check(
        "(local t {}) (set t.some-key 1) (each [k v (pairs t)] (print k v))",
        "some-key\t1",
    );
}

#[test]
fn shadowing() {
    check(
        "(local x 1) (let [x (+ x 1)] (let [x (* x 10)] (print x)) (print x)) (print x)",
        "20\n2\n1",
    );
    check("(local print-it print) (let [print 5] (print-it print))", "5");
}

#[test]
fn unknown_identifiers_are_compile_errors() {
    let e = compile_error("(local known 1)\n(print known)\n(print undefined-thing)");
    assert_eq!(e.message, "unknown identifier: undefined-thing");
    assert_eq!((e.line, e.column), (3, 8));
    assert_eq!(compile_error("(print nope.field)").message, "unknown identifier: nope");
    assert_eq!(compile_error("(fn [] (nope))").message, "unknown identifier: nope");
}

#[test]
fn multisyms_and_methods() {
    check(
        "(local c {:s {:h \"x\" :f (fn [n] (.. \"hi \" n))}}) (print c.s.h (c.s.f :bob))",
        "x\thi bob",
    );
    check(
        "(local o {:n 2}) (fn o.get [self k] (. self k)) (print (o:get :n) (: o :get :n))",
        "2\t2",
    );
    check("(local o {:v 3}) (fn o:twice [] (* 2 self.v)) (print (o:twice))", "6");
    check("(print (: \"abc\" :upper) (: :x :rep 3))", "ABC\txxx");
    check(
        "(local o {:my-m (fn [self x] x)}) (print (o:my-m 7) (: o :my-m 8))",
        "7\t8",
    );
}

// ---- functions -----------------------------------------------------------------

#[test]
fn functions() {
    check("(fn add [a b] (+ a b)) (print (add 1 2))", "3");
    check("(local f (fn [x] (* x x))) (print (f 4))", "16");
    check(
        "(fn fact [n] (if (<= n 1) 1 (* n (fact (- n 1))))) (print (fact 10))",
        "3628800",
    );
    check(
        "(fn documented [] \"doc\" 5) (fn only [] \"only\") (print (documented) (only))",
        "5\tonly",
    );
    check("(fn f [...] (select :# ...)) (print (f) (f nil nil))", "0\t2");
    check("(fn f [a & rest] (length rest)) (print (f 1 2 3))", "2");
    check("(fn f [[a b] {: c}] (+ a b c)) (print (f [1 2] {:c 3}))", "6");
    check("(fn none []) (print (select :# (none)))", "0");
    check("(local v (fn named [] 1)) (print (v) (named))", "1\t1");
}

#[test]
fn lambda_checks_its_arguments() {
    check("(local f (lambda [x ?y _z] x)) (print (f 1))", "1");
    check(
        "(local f (λ [a b]\n a))\n(print (pcall f 1))",
        "false\tMissing argument b on test.fnl:1",
    );
}

#[test]
fn hashfns() {
    check(
        "(print (#(+ $1 $2) 1 2) (#(* $ 2) 4) (#$3 1 2 3) (#(select :# $...) 1 2))",
        "3\t8\t3\t2",
    );
    assert!(compile_error("#(fn [] $...)").message.contains("vararg"));
    check("(print (. (#{:v $} 9) :v) (#$.x {:x 5}))", "9\t5");
}

#[test]
fn a_hashfn_takes_dollar_names_or_varargs_not_both() {
    for (source, column, hashfn) in [
        ("(print\n  (#(values $1 $...) 1 2))", 4, "#(values $1 $...)"),
        ("(print\n  #(values $ $...))", 3, "#(values $ $...)"),
        ("(print\n  #(print $2.x [$...]))", 3, "#(print $2.x [$...])"),
    ] {
        let e = compile_error(source);
        assert_eq!(
            (e.message.as_str(), e.line, e.column, &source[e.span.start..e.span.end]),
            ("$ and $... in hashfn are mutually exclusive", 2, column, hashfn),
            "{source}"
        );
        assert_eq!(
            e.help.as_deref(),
            Some("name arguments and take the rest with a fn instead: (fn [a ...] …)")
        );
    }
    // A nested hashfn has arguments of its own.
    check("(print (#(values $1 (#(select :# $...) 7 8)) 1))", "1\t2");
}

#[test]
fn varargs_outside_a_vararg_function_is_an_error() {
    assert!(compile_error("(fn [] ...)").message.contains("vararg"));
    check("(print (select :# ...))", "0");
}

// ---- bindings --------------------------------------------------------------------

#[test]
fn local_var_set() {
    check("(var x 1) (set x (+ x 1)) (print x)", "2");
    check("(var (a b) (values 1 2)) (set (a b) (values b a)) (print a b)", "2\t1");
    check(
        "(local t {:in {}}) (set t.x 1) (set t.in.y 2) (set (. t :z) 3) (print t.x t.in.y t.z)",
        "1\t2\t3",
    );
}

#[test]
fn tset_nested() {
    check(
        "(local t {:a {}}) (tset t :a :b 1) (tset t :c 2) (print t.a.b t.c)",
        "1\t2",
    );
}

#[test]
fn set_errors() {
    let e = compile_error("(var declared 1)\n(set declared 2)\n(set undeclared 3)");
    assert_eq!(e.message, "expected local undeclared");
    assert_eq!((e.line, e.column), (3, 6));
    assert_eq!(compile_error("(local x 1) (set x 2)").message, "expected var x");
    assert_eq!(compile_error("(set print 2)").message, "expected local print");
}

#[test]
fn a_local_may_not_take_the_name_of_a_special_form_or_macro() {
    for (source, name) in [
        ("(fn when [] 1)\n(print (when true 2))", "when"),
        ("(local length 3)", "length"),
        ("(local if 5)", "if"),
        ("(var fn 1)", "fn"),
        ("(let [x 1\n      -> 2] x)", "->"),
        ("(fn [a collect] a)", "collect"),
        ("(lambda [each] each)", "each"),
        ("(local [a doto] [1 2])", "doto"),
        ("(local {:k match} {:k 1})", "match"),
        ("(local (a case) (values 1 2))", "case"),
        ("(local [a & partial] [1 2])", "partial"),
        ("(local [a &as values] [1 2])", "values"),
        ("(each [_ for (ipairs [])] nil)", "for"),
        ("(for [while 1 2] nil)", "while"),
        ("(icollect [_ [and] (ipairs [])] 1)", "and"),
        ("(accumulate [or 0 _ x (ipairs [])] x)", "or"),
        ("(case 1 when 2)", "when"),
        ("(match [1] [not] 2)", "not"),
        ("(fn f [{: #}] 1)", "#"),
        // Fennel's forms that this compiler does not implement are refused too.
        ("(local doc \"x\")", "doc"),
        ("(local with-open 1)", "with-open"),
    ] {
        let e = compile_error(source);
        assert_eq!(
            (e.message.as_str(), &source[e.span.start..e.span.end]),
            (
                format!("local {name} was overshadowed by a special form or macro").as_str(),
                name
            ),
            "{source}"
        );
        assert_eq!(
            e.help,
            Some(format!(
                "{name} is a special form or macro of Fennel: give the local another name"
            )),
        );
    }
    let e = compile_error("(print 1)\n(local {: length} {:length 2})");
    assert_eq!((e.line, e.column), (2, 11));
    // Names that are only globals are fine to shadow.
    check("(local print #(+ 1 $)) (local type 2) (_G.print (print type))", "3");
}

#[test]
fn local_errors() {
    let e = compile_error("(print \"start\")\n(print (local inner 2))");
    assert_eq!(e.message, "can't introduce local here");
    assert_eq!((e.line, e.column), (2, 8));
    let e = compile_error("(local config {})\n(local config.name \"x\")");
    assert_eq!(e.message, "unexpected multi symbol config.name");
    assert_eq!(e.line, 2);
    assert!(
        compile_error("(local x)")
            .message
            .contains("expected a name and a value")
    );
}

#[test]
fn destructuring() {
    check("(local [a b & r] [1 2 3 4]) (print a b (length r))", "1\t2\t2");
    check(
        "(local {: x :y why &as all} {:x 1 :y 2}) (print x why all.x)",
        "1\t2\t1",
    );
    check(
        "(let [[a [b c]] [1 [2 3]] {:k {:n n}} {:k {:n 4}}] (print a b c n))",
        "1\t2\t3\t4",
    );
    check("(local [x y &as whole] [5 6]) (print x y (length whole))", "5\t6\t2");
    check("(local (a [b c]) (values 1 [2 3])) (print a b c)", "1\t2\t3");
    check("(local x [1 2]) (let [[x y] x] (print x y))", "1\t2");
    check("(var a 0) (var b 0) (set [a b] [3 4]) (print a b)", "3\t4");
}

#[test]
fn let_blocks() {
    check("(let [a 1 b (+ a 1)] (print a b))", "1\t2");
    check("(print (let [a 1] (+ a 1)))", "2");
    check("(print (let [a 1] (values a 2)))", "1\t2");
    assert!(compile_error("(let [a] a)").message.contains("even"));
    assert!(compile_error("(let a a)").message.contains("binding sequence"));
}

// ---- branches --------------------------------------------------------------------

#[test]
fn if_when_do() {
    check("(print (if true 1 2) (if false 1) (if false 1 false 2 3))", "1\tnil\t3");
    check(
        "(fn f [n] (if (< n 0) :neg (= n 0) :zero :pos)) (print (f -1) (f 0) (f 1))",
        "neg\tzero\tpos",
    );
    check("(print (when true (print :side) :r) (when false :x))", "side\nr\tnil");
    check("(print (do 1 2 3))", "3");
    check("(fn f [] (when false 1)) (print (f))", "nil");
    // A condition that needs statements of its own.
    check(
        "(fn f [x] (if (= x 1) :one (let [y (* x 2)] (= y 4)) :two :other)) (print (f 1) (f 2) (f 3))",
        "one\ttwo\tother",
    );
}

#[test]
fn statement_forms_as_values_keep_multiple_values() {
    check("(print (if true (values 1 2) 3))", "1\t2");
    check("(print (do (values 1 2 3)))", "1\t2\t3");
    check(
        "(fn f [...] (print (let [n (select :# ...)] (values n ...)))) (f :a :b)",
        "2\ta\tb",
    );
    check("(local x (if true (values 1 2) 3)) (print x)", "1");
}

#[test]
fn and_or_not() {
    check(
        "(print (and 1 2) (and false 2) (or nil 3) (or false nil) (not nil) (and) (or))",
        "2\tfalse\t3\tnil\ttrue\ttrue\tfalse",
    );
    check("(var n 0) (print (or true (do (set n 1) false)) n)", "true\t0");
    check("(var n 0) (print (and false (let [x 1] (set n x) x)) n)", "false\t0");
}

// ---- operators -------------------------------------------------------------------

#[test]
fn arithmetic() {
    check("(print (+) (+ 5) (+ 1 2 3) (*) (* 3) (* 2 3 4))", "0\t5\t6\t1\t3\t24");
    check(
        "(print (- 10 1 2) (- 7) (- -7) (/ 100 2 5) (/ 2) (// 17 5 2) (% -7 3) (^ 2 10))",
        "7\t-7\t7\t10.0\t0.5\t1\t2\t1024.0",
    );
    check("(print (^ -2 2) (- (- 3)))", "4.0\t3");
    check("(fn f [] (values 2 3)) (print (+ 1 (f)))", "3");
}

#[test]
fn comparisons() {
    check(
        "(print (< 1 2 3) (< 1 3 2) (= 1 1 1) (not= 1 2) (>= 3 3 1) (<= 1 1 0) (> 3 2))",
        "true\tfalse\ttrue\ttrue\ttrue\tfalse\ttrue",
    );
    check("(var n 0) (fn f [] (set n (+ n 1)) n) (print (< 0 (f) 2) n)", "true\t1");
}

#[test]
fn strings_length_bitwise() {
    check("(print (.. :a :b 1) (..) (length \"abc\") (# [1 2]))", "ab1\t\t3\t2");
    check(
        "(print (band 12 10) (bor 12 10) (bxor 12 10) (bnot 0) (lshift 1 8) (rshift 256 4))",
        "8\t14\t6\t-1\t256\t16",
    );
}

#[test]
fn dot_and_safe_dot() {
    check(
        "(local d {:u [{:n :ann}]}) (print (. d :u 1 :n) (. [10 20] 2))",
        "ann\t20",
    );
    check(
        "(local c {:a {:b 1}}) (print (?. c :a :b) (?. c :x :b) (?. nil :x))",
        "1\tnil\tnil",
    );
}

#[test]
fn values_and_pick_values() {
    check(
        "(fn f [] (values 1 2 3)) (print (f)) (print (pick-values 2 (f))) (print (select :# (values)))",
        "1\t2\t3\n1\t2\n0",
    );
    check("(local (a b) (values 1 2)) (print a b)", "1\t2");
}

// ---- loops -----------------------------------------------------------------------

#[test]
fn loops() {
    check("(for [i 1 3] (print i))", "1\n2\n3");
    check("(for [i 10 1 -4] (print i))", "10\n6\n2");
    check("(for [i 1 10 &until (> i 2)] (print i))", "1\n2");
    check("(each [i v (ipairs [:a :b])] (print i v))", "1\ta\n2\tb");
    check("(each [_ [a b] (ipairs [[1 2]])] (print a b))", "1\t2");
    check("(each [_ v (ipairs [1 2 3]) &until (= v 2)] (print v))", "1");
    check("(var i 0) (while (< i 3) (set i (+ i 1))) (print i)", "3");
    check("(fn f [] (each [_ x (ipairs [])] x)) (print (select :# (f)) (f))", "0");
    check("(var i 0) (while (let [x i] (< x 2)) (set i (+ i 1))) (print i)", "2");
}

#[test]
fn loop_clauses_in_their_older_keyword_spelling() {
    check("(each [_ v (ipairs [1 2 3]) :until (= v 2)] (print v))", "1");
    check("(for [i 1 10 :until (> i 2)] (print i))", "1\n2");
    check(
        "(print (table.concat (icollect [_ v (ipairs [3 4]) :into [1 2]] v) \",\"))",
        "1,2,3,4",
    );
    check(
        "(local t (collect [k v (pairs {:b 2}) :into {:a 1}] k v)) (print t.a t.b)",
        "1\t2",
    );
    check(
        "(print (table.concat (fcollect [i 1 9 :into [0] :until (> i 2)] i) \",\"))",
        "0,1,2",
    );
    check(
        "(print (accumulate [s 0 _ n (ipairs [1 2 3 4]) :until (> n 2)] (+ s n)))",
        "3",
    );
    check("(print (faccumulate [s 0 i 1 9 &until (> i 3)] (+ s i)))", "6");
}

#[test]
fn loop_clause_errors() {
    for (source, message, at) in [
        (
            "(each [_ v (ipairs [])\n       &into t] v)",
            "an &into clause is only for collect, icollect and fcollect",
            "&into",
        ),
        (
            "(accumulate [s 0 _ v (ipairs []) :into t] v)",
            "an &into clause is only for collect, icollect and fcollect",
            ":into",
        ),
        (
            "(icollect [_ v (ipairs []) &into [] :into []] v)",
            "expected only one &into clause",
            "&into",
        ),
        (
            "(for [i 1 2 :until false &until true] i)",
            "expected only one &until clause",
            ":until",
        ),
    ] {
        let e = compile_error(source);
        assert_eq!(
            (e.message.as_str(), &source[e.span.start..e.span.end]),
            (message, at),
            "{source}"
        );
    }
}

#[test]
fn collecting_loops() {
    check(
        "(print (table.concat (icollect [_ v (ipairs [1 2 3])] (if (not= v 2) (* v 10))) \",\"))",
        "10,30",
    );
    check(
        "(local t (collect [k v (pairs {:a 1})] (.. k k) (* v 2))) (print t.aa)",
        "2",
    );
    check(
        "(local t (collect [_ v (ipairs [:x])] (values v true))) (print t.x)",
        "true",
    );
    check(
        "(local b [1]) (icollect [_ v (ipairs [2 3]) &into b] v) (print (table.concat b))",
        "123",
    );
    check("(print (table.concat (fcollect [i 1 5 2] i) \" \"))", "1 3 5");
    check("(print (accumulate [s 0 _ n (ipairs [1 2 3])] (+ s n)))", "6");
    check("(print (faccumulate [p 1 i 1 5] (* p i)))", "120");
    check("(print (accumulate [s 0 _ n (ipairs [1 2])] (let [s (+ s n)] s)))", "3");
    // The accumulator's name is not visible after the loop.
    assert!(
        compile_error("(accumulate [s 0 _ n (ipairs [])] s) (print s)")
            .message
            .contains("unknown identifier: s")
    );
}

// ---- match and case ------------------------------------------------------------

#[test]
fn match_and_case() {
    check("(print (match 2 1 :one 2 :two _ :other) (match 9 1 :one))", "two\tnil");
    check(
        "(fn f [x] (case x [a b] (+ a b) {: k} k _ :no)) (print (f [1 2]) (f {:k 3}) (f 4))",
        "3\t3\tno",
    );
    check("(print (case [1 2 3 4] [a & rest] (length rest)))", "3");
    check(
        "(print (case [5 5] [a a] :same _ :differ) (case [5 6] [a a] :same _ :differ))",
        "same\tdiffer",
    );
    check(
        "(local x 3) (print (match 3 x :pinned _ :no) (case 4 x (.. :bound x)))",
        "pinned\tbound4",
    );
    check("(local x 3) (print (case 3 (where (= x)) :eq _ :ne))", "eq");
    check("(print (case nil a :a _ :nil))", "nil");
    check("(print (case nil ?a :maybe))", "maybe");
}

#[test]
fn match_guards_or_and_multiple_values() {
    check(
        "(fn f [n] (match n (where x (< x 0)) :neg (where 0) :zero _ :pos)) (print (f -1) (f 0) (f 1))",
        "neg\tzero\tpos",
    );
    check(
        "(fn f [d] (case d (where (or :sat :sun)) :weekend _ :week)) (print (f :sun) (f :mon))",
        "weekend\tweek",
    );
    check("(print (match (values 1 2) (1 3) :no (1 2) :yes))", "yes");
    check("(fn f [] (values nil :err)) (print (case (f) (nil e) e))", "err");
    check("(var out nil) (case [1] [x] (set out x)) (print out)", "1");
}

// ---- case-try, match-try and tail! ------------------------------------------------

#[test]
fn case_try_runs_every_step_when_all_match() {
    let source = r#"(fn parse [s]
  (case-try (string.match s "^(%a+)=(%d+)$")
    (key digits) (values key (tonumber digits))
    (key n) (if (> n 10) (values key n :big) (values key n :small))
    (k n size) (.. k ":" n ":" size)))
(print (parse "a=42") (parse "b=3"))"#;
    check(source, "a:42:big\tb:3:small");
    // As a statement, and in a value position that wants one value.
    check(
        "(var seen nil) (case-try 1 a (+ a 1) b (set seen b)) (print seen (+ 1 (case-try 2 x (* x 10) y y)))",
        "2\t21",
    );
}

#[test]
fn case_try_failing_in_the_middle_goes_to_the_first_matching_catch() {
    let source = r#"(fn lookup [t k]
  (if (. t k) (values true (. t k)) (values nil (.. "no " k))))
(fn sum [t]
  (case-try (lookup t :a)
    (true a) (lookup t :b)
    (true b) (+ a b)
    (catch
      (false why) (.. "false: " why)
      (nil why) (.. "caught: " why))))
(print (sum {:a 1 :b 2}) (sum {:a 1}) (sum {}))"#;
    check(source, "3\tcaught: no b\tcaught: no a");
    // With a catch, a failure no catch clause matches gives one nil (as in
    // Fennel, whose catch is a plain `case` on the failed values).
    check(
        "(print (select :# (case-try (values 1 2) (1 3) :no (catch (2 _) :two))) (case-try 1 2 :no (catch)))",
        "1\tnil",
    );
    // Catch clauses may look at several values.
    check(
        "(print (case-try (values nil :oops 7) (true x) x (catch (nil msg n) (.. msg n))))",
        "oops7",
    );
}

#[test]
fn case_try_without_catch_returns_the_unmatched_values_unchanged() {
    let source = r#"(fn three [] (values nil "boom" 3))
(print (case-try (three) (true x) x))
(print (select :# (case-try (values 1 nil nil) 2 :no)))
(print (case-try 1 1 (values :x nil :z) (:y) :no))
(print (select :# (case-try 1 1 (values) 2 :no)))
(print (case-try (values 4 5) 6 :no))
(local (a b c) (case-try (three) (true x) x))
(print a b c)
(fn last [] (case-try 1 1 (three) :never :no))
(print (select :# (last)) (last))"#;
    check(
        source,
        "nil\tboom\t3\n3\nx\tnil\tz\n0\n4\t5\nnil\tboom\t3\n3\tnil\tboom\t3",
    );
    // With no pattern at all, the value is the result.
    check("(print (case-try 3 (catch _ :c)) (case-try (values 1 2)))", "3\t1\t2");
}

#[test]
fn match_try_pins_bindings_in_scope_and_case_try_does_not() {
    let source = r#"(local want 200)
(fn fetch [code] (values code (.. "body" code)))
(fn get [code]
  (match-try (fetch code)
    (want body) (string.upper body)
    upper (.. upper "!")
    (catch (status) (.. "status " status))))
(print (get 200) (get 404))
(print (case-try (fetch 404) (want body) want))"#;
    check(source, "BODY200!\tstatus 404\n404");
    // A name bound by an earlier step is in scope for the later patterns.
    check(
        "(print (match-try 1 x (+ x 0) x :same (catch _ :differ)) (match-try 1 x 2 x :same (catch _ :differ)))",
        "same\tdiffer",
    );
    check("(print (case-try 1 x 2 x (.. :rebound x)))", "rebound2");
}

#[test]
fn case_try_patterns_and_catches_take_where_guards() {
    let source = r#"(fn classify [v]
  (case-try v
    (where x (= (type x) :number)) (* x 2)
    (where y (> y 10)) (.. "big " y)
    (catch
      (where n (= (type n) :number)) (.. "small " n)
      (where (or :a :b)) :letter
      _ :other)))
(print (classify 7) (classify 3) (classify :a) (classify :c))"#;
    check(source, "big 14\tsmall 6\tletter\tother");
}

#[test]
fn case_try_keeps_statements_on_their_lines_and_checks_its_shape() {
    let source = "(local r\n  (case-try 1\n    a (+ a 1)\n    b (error :step-two)\n    c c))";
    let code = lua_of(source).unwrap();
    let lines: Vec<&str> = code.lines().collect();
    assert!(lines[1].starts_with("local _v do local _m = 1"), "{code}");
    assert!(lines[2].starts_with("do if _m ~= nil then local a = _m"), "{code}");
    assert!(lines[3].starts_with("do if _m_2 ~= nil then local b = _m_2"), "{code}");
    assert!(lines[4].starts_with("do if _m_3 ~= nil then local c = _m_3"), "{code}");
    assert!(run(source).contains("test.fnl:4: step-two"));
    let e = compile_error("(print\n  (case-try 1\n    a (+ a 1)\n    b))");
    assert_eq!(
        (e.message.as_str(), e.line, e.column),
        ("expected every pattern to have a body", 4, 5)
    );
    let e = compile_error("(match-try 1 a a\n  (catch _ 1 2))");
    assert_eq!(
        (e.message.as_str(), e.line, e.column),
        ("expected every catch pattern to have a body", 2, 14)
    );
    assert_eq!(
        compile_error("(case-try)").message,
        "expected a value and pattern/body pairs: (case-try x pattern body ... (catch pattern body ...))"
    );
    // The catch clauses are compiled at every step, where that step's locals are.
    assert_eq!(
        compile_error("(case-try 1 a 2 b :ok (catch _ a))").message,
        "unknown identifier: a"
    );
}

#[test]
fn tail_calls_in_tail_position() {
    // A million calls deep: only a proper tail call keeps the stack flat.
    check(
        "(fn count [n acc] (if (= n 0) acc (tail! (count (- n 1) (+ acc 1))))) (print (count 1000000 0))",
        "1000000",
    );
    check(
        r#"(local o {:v 5})
(fn o.get [self] self.v)
(fn m [] (tail! (o:get)))
(fn thread [x] (tail! (-> x (+ 1) tostring)))
(fn via-case [x] (case-try x 1 (tail! (m)) (catch _ (tail! (thread x)))))
(fn via-let [] (let [y 2] (when y (tail! (print :let y)))))
(via-let)
(print (m) (thread 1) (via-case 1) (via-case 2))
(tail! (print :top))"#,
        "let\t2\n5\t2\t5\t3\ntop",
    );
    assert_eq!(
        lua_of("(fn f [g x]\n  (tail! (g x)))").unwrap(),
        "local function f(g, x)\nreturn g(x) end return f"
    );
}

#[test]
fn tail_is_an_error_outside_tail_position_or_without_a_call() {
    let not_tail = [
        "(fn f [g]\n  (tail! (g))\n  nil)",
        "(fn f [g]\n  (print (tail! (g))))",
        "(fn f [g]\n  (let [x (tail! (g))] x))",
        "(fn f [g]\n  (print (if g (tail! (g)) 1)))",
        "(fn f [g]\n  (each [_ v (ipairs [])] (tail! (g v))))",
        "(fn f [g]\n  (case-try (tail! (g)) 1 2))",
        "(print 1)\n(tail! (print 2))\n(print 3)",
    ];
    for source in not_tail {
        let e = compile_error(source);
        assert_eq!(
            (e.message.as_str(), e.line),
            ("tail! must be in tail position", 2),
            "{source}"
        );
    }
    let e = compile_error("(fn f [g]\n  (print (tail! (g))))");
    assert_eq!((e.column, e.span.len()), (10, 11));
    let not_call = [
        "(fn f [x]\n  (tail! x))",
        "(fn f [x]\n  (tail! (+ x 1)))",
        "(fn f [x]\n  (tail! (if x (x) 1)))",
        "(fn f [x]\n  (tail! (-> x)))",
        "(fn f [x]\n  (tail! []))",
        "(fn f [x]\n  (tail! ()))",
    ];
    for source in not_call {
        let e = compile_error(source);
        assert_eq!(
            (e.message.as_str(), e.line, e.column),
            ("expected a function call as the argument of tail!", 2, 3),
            "{source}"
        );
    }
    for source in ["(fn f [] (tail!))", "(fn f [g] (tail! (g) (g)))"] {
        assert_eq!(
            compile_error(source).message,
            "expected one argument: (tail! (f ...))",
            "{source}"
        );
    }
    check("(fn f [add] (tail! (add 1))) (print (f #(* $ 3)))", "3");
}

// ---- macros ----------------------------------------------------------------------

#[test]
fn threading_doto_partial() {
    check(
        "(print (-> 5 (+ 1) (* 2)) (->> 5 (- 1)) (-> :a string.upper))",
        "12\t-4\tA",
    );
    check(
        "(print (-?> {:a {:b 1}} (. :a) (. :b)) (-?> {} (. :a) (. :b)))",
        "1\tnil",
    );
    check("(print (-?>> :k (. {:k 2})) (-?>> nil (. {})))", "2\tnil");
    check(
        "(local t (doto [] (table.insert 1) (table.insert 2))) (print (length t))",
        "2",
    );
    check("(local add3 (partial + 3)) (print (add3 4))", "7");
    check("(fn mk [...] (partial + ...)) (print ((mk 2) 5))", "7");
    check(
        "(var n 0) (local p (partial #(+ $1 $2) (do (set n (+ n 1)) n))) (p 1) (p 1) (print n (p 10))",
        "1\t11",
    );
}

#[test]
fn comment_and_quote() {
    check("(comment (print :never)) (print (comment x))", "nil");
    check("(local q (quote [1 {:a 2}])) (print (. q 1) (. q 2 :a))", "1\t2");
}

#[test]
fn user_macros_are_not_supported_yet() {
    for source in [
        "(macro m [] 1)",
        "(macros {})",
        "(import-macros m :m)",
        "(eval-compiler 1)",
    ] {
        assert!(
            compile_error(source)
                .message
                .contains("user macros are not supported yet"),
            "{source}"
        );
    }
}

// ---- errors ----------------------------------------------------------------------

#[test]
fn corpus_compile_errors() {
    let e = compile_error("(print \"a\")\n()");
    assert_eq!(
        (e.message.as_str(), e.line),
        ("expected a function, macro, or special to call", 2)
    );
    let e = compile_error("(print \"before\")\n(fn)");
    assert_eq!((e.message.as_str(), e.line), ("expected parameters table", 2));
    let e = compile_error("(fn collect-all [first & more last]\n  (print first more last))");
    assert_eq!(
        (e.message.as_str(), e.line),
        ("expected rest argument before last parameter", 1)
    );
}

#[test]
fn malformed_special_forms_are_errors_not_panics() {
    let sources = [
        "(fn)",
        "(fn [)",
        "(fn 1 [])",
        "(fn x)",
        "(lambda)",
        "(let)",
        "(let [a])",
        "(let x)",
        "(local)",
        "(local 1 2)",
        "(var)",
        "(set)",
        "(set 1 2)",
        "(set x)",
        "(tset)",
        "(tset t)",
        "(if)",
        "(when)",
        "(each)",
        "(each [])",
        "(each [x] x)",
        "(for)",
        "(for [i] i)",
        "(for [i 1] i)",
        "(while)",
        "(collect)",
        "(icollect [])",
        "(accumulate)",
        "(accumulate [a])",
        "(accumulate [1 2 3 4])",
        "(faccumulate [a 0])",
        "(fcollect [i])",
        "(pick-values)",
        "(pick-values :x 1)",
        "(.)",
        "(?.)",
        "(:)",
        "(: 1)",
        "(not)",
        "(not 1 2)",
        "(length)",
        "(bnot)",
        "(%)",
        "(^ 1)",
        "(lshift 1)",
        "(=)",
        "(match)",
        "(match 1 2)",
        "(case 1 (where))",
        "(case 1 (or) 2)",
        "(case 1 (1 (2)) 3)",
        "(->)",
        "(doto)",
        "(partial)",
        "(quote)",
        "(quote x)",
        "(hashfn)",
        "(unquote x)",
        "(local [& a b] [])",
        "(local [&as] [])",
        "(local {&as 1} {})",
        "(fn [1] 1)",
        "(fn [& a b] 1)",
        "(fn [... a] 1)",
        "(local & 1)",
        "(local a.b 1)",
        "(print a:b)",
        "(let [(a) 1] a)",
        "(local () 1)",
        "(each [[a] 1 (pairs {})] a)",
        "(case 1 {[1] x} x)",
        "(x.y:z)",
        "(local (a 1) 1)",
        "(-?> 1 2)",
        "(print (doto))",
        "(#)",
    ];
    for source in sources {
        let source_arc: Arc<str> = source.into();
        let Ok(forms) = read_all(&source_arc, "t.fnl") else {
            continue;
        };
        // Either way is fine, as long as it is not a panic; errors name a line.
        if let Err(e) = compile(&forms, &source_arc, "t.fnl", &options()) {
            assert_eq!(e.line, 1, "{source}: {e}");
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // Each shape recurses through different compiler paths; all must stop at
    // the nesting limit on a small (2 MiB, like a spawned thread's) stack.
    let shapes = [
        ("(do ", ")"),
        ("(let [a ", "] a)"),
        ("(fn [] ", ")"),
        ("(match 1 x ", ")"),
        ("(print (if true ", "))"),
        ("[{:a ", "}]"),
        ("(each [k (pairs ", ")] k)"),
        ("(icollect [_ v (ipairs ", ")] v)"),
        ("(-> ", " f)"),
    ];
    for (open, close) in shapes {
        // Deep enough for the compiler's limit, shallow enough for the reader's.
        let levels = open.matches(['(', '[', '{']).count();
        let depth = 999 / levels;
        let source = format!("(local f print) {}1{}", open.repeat(depth), close.repeat(depth));
        let result = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || lua_of(&source).err().map(|e| e.message))
            .expect("thread")
            .join()
            .unwrap_or_else(|_| panic!("compiling nested {open}…{close} panicked"));
        assert!(result.is_some_and(|m| m.contains("nested too deeply")), "{open}");
    }
}

// ---- line preservation -----------------------------------------------------------

#[test]
fn runtime_errors_name_the_fennel_line() {
    let source = "(local x 1)\n\n(fn helper [a]\n  (+ a 1))\n(print (helper x)\n  \"second line\")\n(error \"boom\")\n(print :never)\n";
    let output = run(source);
    assert!(output.contains("test.fnl:7: boom"), "{output}");
    // Also as the last form of the chunk (returned, not tail-called), and inside a function.
    assert!(run("(print 1)\n\n(error \"last\")").contains("test.fnl:3: last"));
    let output = run("(fn f []\n  (print :in)\n  (error \"inner\"))\n(f)");
    assert!(output.contains("test.fnl:3: inner"), "{output}");
}

#[test]
fn statements_start_on_their_fennel_line() {
    let source = "(local a 1)\n(local b\n  {:x 1\n   :y (+ a 2)})\n\n\n(print a b.y)\n(print\n  (. b :x))";
    let code = lua_of(source).unwrap();
    let lines: Vec<&str> = code.lines().collect();
    assert!(lines[0].starts_with("local a = 1"), "{code}");
    assert!(lines[1].starts_with("local b"), "{code}");
    assert!(lines[3].contains("y ="), "{code}");
    assert!(lines[6].contains("print(a, b.y)"), "{code}");
    assert!(lines[7].contains("print"), "{code}");
    assert_eq!(run(source), "1\t3\n1");
}

#[test]
fn a_runtime_error_in_a_multi_line_expression_names_its_line() {
    let source = "(local t {:a 1\n          :b (error \"in table\")})";
    assert!(run(source).contains("test.fnl:2: in table"));
}

#[test]
fn chunk_returns_the_last_form() {
    let code = lua_of("(local m {:v 1})\n{:m m :n 2}").unwrap();
    let lua = mlua::Lua::new();
    lua.load("print = function() end").exec().unwrap();
    let t: mlua::Table = lua.load(&code).eval().unwrap();
    assert_eq!(t.get::<i64>("n").unwrap(), 2);
    let code = lua_of("(fn f [] 7)").unwrap();
    let f: mlua::Function = lua.load(&code).eval().unwrap();
    assert_eq!(f.call::<i64>(()).unwrap(), 7);
}

#[test]
fn many_temporaries_do_not_exhaust_lua_locals() {
    let source = "(print (if true 1 2))\n".repeat(300);
    assert_eq!(run(&source).lines().count(), 300);
}

#[test]
fn every_special_with_odd_arguments_never_panics() {
    let atoms = [
        "[]",
        "{}",
        "()",
        "1",
        ":s",
        "x",
        "nil",
        "[x]",
        "(x)",
        "&",
        "...",
        "[& x]",
        "{:a x}",
        "(where x)",
        "(or)",
        "a.b",
        "a:b",
        "[x x]",
        "(= x)",
        "[1 2]",
    ];
    let mut names: Vec<&str> = super::specials::SPECIALS.to_vec();
    names.extend(["x", "print", "a.b", "a:b"]);
    let lua = mlua::Lua::new();
    for name in names {
        let mut arg_lists = vec![String::new()];
        for a in atoms {
            arg_lists.push(a.to_string());
            for b in &atoms[..8] {
                arg_lists.push(format!("{a} {b}"));
            }
        }
        arg_lists.extend(atoms.iter().map(|a| format!("[x 1 y 2] {a} {a}")));
        let contexts = [
            "{}",
            "(print {} 1)",
            "(print 1 {})",
            "(local y {})",
            "(fn [] {})",
            "(if {} 1 2)",
        ];
        let sources = arg_lists.iter().enumerate().flat_map(|(i, args)| {
            let form = format!("({name} {args})");
            // Every shape in statement position; a sample in the other contexts.
            let count = if i % 7 == 0 { contexts.len() } else { 1 };
            contexts[..count].iter().map(move |c| c.replace("{}", &form))
        });
        for form in sources {
            let source = format!("(local x 1) (var a {{:b 1}})\n{form}");
            let source_arc: Arc<str> = source.as_str().into();
            let Ok(forms) = read_all(&source_arc, "t.fnl") else {
                continue;
            };
            let result = std::panic::catch_unwind(|| compile(&forms, &source_arc, "t.fnl", &options()));
            let Ok(result) = result else {
                panic!("panicked on {source}")
            };
            // Whatever compiles must be valid Lua.
            if let Ok(code) = result
                && let Err(e) = lua.load(&code).into_function()
            {
                panic!("invalid Lua for {source}:\n{code}\n{e}");
            }
        }
    }
}

/// Found by the `compile` fuzz target: a call with no arguments whose callee
/// yields no values emptied the expression list and panicked.
#[test]
fn calling_the_result_of_an_empty_values_calls_nil() {
    let out = run("(print (pcall (fn [] ((values)))))");
    assert!(out.starts_with("false\t"), "{out}");
    assert!(out.contains("attempt to call a nil value"), "{out}");
    // The input as the fuzzer found it.
    let found = "(fn none [])\n(print (select \"#\" ((values)))\n(print (select 2 :a :b :cnone)))\n";
    assert!(lua_of(found).is_ok());
}
