use proptest::prelude::*;

use super::*;
use crate::ast::SystemField;

#[track_caller]
fn p(text: &str) -> Query {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// The syntax error of `text`: position, expected, found.
#[track_caller]
fn syntax(text: &str) -> (usize, String, String) {
    match parse(text) {
        Err(Error::Syntax {
            position,
            expected,
            found,
        }) => (position, expected, found),
        other => panic!("{text:?}: not a syntax error: {other:?}"),
    }
}

/// Asserts the syntax error's position and found excerpt, and that `expected` is in its message.
#[track_caller]
fn fails_at(text: &str, position: usize, expected: &str, found: &str) {
    let (pos, exp, fnd) = syntax(text);
    assert_eq!(
        (pos, fnd.as_str()),
        (position, found),
        "{text:?}: expected {exp}"
    );
    assert!(exp.contains(expected), "{text:?}: expected {exp:?}");
}

fn word(w: &str) -> Query {
    Query::Match {
        field: None,
        text: w.to_owned(),
    }
}

fn sys(f: SystemField) -> Field {
    Field::System(f)
}

fn body(path: &str) -> Field {
    Field::Body(path.to_owned())
}

fn term(field: Field, value: impl Into<Scalar>) -> Query {
    Query::Term {
        field,
        value: value.into(),
        case_insensitive: false,
    }
}

fn must(items: Vec<Query>) -> Query {
    Query::Bool(BoolQuery {
        must: items,
        ..BoolQuery::default()
    })
}

fn should(items: Vec<Query>) -> Query {
    Query::Bool(BoolQuery {
        should: items,
        ..BoolQuery::default()
    })
}

fn bool_of(must: Vec<Query>, must_not: Vec<Query>) -> Query {
    Query::Bool(BoolQuery {
        must,
        must_not,
        ..BoolQuery::default()
    })
}

fn not(q: Query) -> Query {
    bool_of(vec![], vec![q])
}

fn range(field: Field) -> Range {
    Range {
        field,
        gt: None,
        gte: None,
        lt: None,
        lte: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Clauses

#[test]
fn parser_empty_and_match_all() {
    for text in ["", "   ", "\t\n", "*", "*:*", " *:* ", "(*)"] {
        assert_eq!(p(text), Query::All, "{text:?}");
    }
}

#[test]
fn parser_bare_words_and_phrases() {
    assert_eq!(p("hello"), word("hello"));
    assert_eq!(p("héllo"), word("héllo"));
    assert_eq!(p("and"), word("and"), "lowercase keywords are words");
    assert_eq!(p("a&&b"), word("a&&b"));
    assert_eq!(p("hello!"), word("hello!"));
    assert_eq!(p("a\\:b"), word("a:b"));
    assert_eq!(p("a\\ b"), word("a b"));
    assert_eq!(p("\\AND"), word("AND"));
    assert_eq!(p("\\*"), word("*"));
    assert_eq!(p("5"), word("5"));
    assert_eq!(
        p("\"hello world\""),
        Query::Phrase {
            field: None,
            text: "hello world".into()
        }
    );
    assert_eq!(
        p(r#""say \"hi\" \\ bye""#),
        Query::Phrase {
            field: None,
            text: r#"say "hi" \ bye"#.into()
        }
    );
    assert_eq!(p("hello world"), must(vec![word("hello"), word("world")]));
}

#[test]
fn parser_term_values() {
    assert_eq!(p("n:12"), term(body("n"), 12));
    assert_eq!(p("n:-3"), term(body("n"), -3));
    assert_eq!(p("n:0"), term(body("n"), 0));
    assert_eq!(
        p("n:9223372036854775807"),
        term(body("n"), Scalar::Int(i64::MAX))
    );
    assert_eq!(
        p("n:9223372036854775808"),
        term(body("n"), Scalar::UInt(1 << 63))
    );
    assert_eq!(
        p("n:18446744073709551615"),
        term(body("n"), Scalar::UInt(u64::MAX))
    );
    assert_eq!(
        p("n:18446744073709551616"),
        term(body("n"), Scalar::Float(18446744073709551616.0))
    );
    assert_eq!(p("n:1.5"), term(body("n"), 1.5));
    assert_eq!(p("n:-1.5e3"), term(body("n"), -1500.0));
    assert_eq!(p("n:1E2"), term(body("n"), 100.0));
    assert_eq!(p("n:true"), term(body("n"), true));
    assert_eq!(p("n:false"), term(body("n"), false));
    // Not numbers in JSON's syntax: strings.
    for s in [
        "True", "007", "1.", ".5", "+5", "1e", "1e400", "0x10", "inf", "NaN", "1_000",
    ] {
        assert_eq!(p(&format!("n:{s}")), term(body("n"), s), "{s}");
    }
    // An escape makes a string.
    assert_eq!(p("n:\\5"), term(body("n"), "5"));
    assert_eq!(p("n:\\true"), term(body("n"), "true"));
    assert_eq!(p("status:open"), term(body("status"), "open"));
    assert_eq!(p("a.b.c:x"), term(body("a.b.c"), "x"));
    assert_eq!(p("@timestamp:x"), term(body("@timestamp"), "x"));
    assert_eq!(p("my-field_2:x"), term(body("my-field_2"), "x"));
    assert_eq!(p("_private:x"), term(body("_private"), "x"));
    assert_eq!(p("url:http://x.org/a"), term(body("url"), "http://x.org/a"));
    assert_eq!(p("a:b:c"), term(body("a"), "b:c"));
    assert_eq!(p("a:AND"), term(body("a"), "AND"));
    assert_eq!(p("a:-b"), term(body("a"), "-b"));
    assert_eq!(p("a:!b"), term(body("a"), "!b"));
    assert_eq!(p("a:b[1]"), term(body("a"), "b[1]"));
    assert_eq!(p("a:x\\(1\\)"), term(body("a"), "x(1)"));
    // Whitespace after the colon.
    assert_eq!(p("a: b"), term(body("a"), "b"));
}

#[test]
fn parser_phrases_on_fields() {
    assert_eq!(
        p("title:\"hello world\""),
        Query::Phrase {
            field: Some("title".into()),
            text: "hello world".into()
        }
    );
    assert_eq!(
        p("title:\"a \\\"b\\\"\""),
        Query::Phrase {
            field: Some("title".into()),
            text: "a \"b\"".into()
        }
    );
    // On a system field a quoted value is an exact string.
    assert_eq!(
        p("_id:\"/users/a b\""),
        term(sys(SystemField::Id), "/users/a b")
    );
    assert_eq!(p("_kind:\"\""), term(sys(SystemField::Kind), ""));
}

#[test]
fn parser_system_fields() {
    assert_eq!(p("_kind:user"), term(sys(SystemField::Kind), "user"));
    assert_eq!(p("_kind:123"), term(sys(SystemField::Kind), "123"));
    assert_eq!(
        p("_id:/users/ada"),
        term(sys(SystemField::Id), "/users/ada")
    );
    assert_eq!(
        p("_id:/users/*"),
        Query::Prefix {
            field: sys(SystemField::Id),
            prefix: "/users/".into()
        }
    );
    assert_eq!(p("_seq:5"), term(sys(SystemField::Seq), 5));
    assert_eq!(
        p("_version:>3"),
        Query::Range(Range {
            gt: Some(Scalar::Int(3)),
            ..range(sys(SystemField::Version))
        })
    );
    assert_eq!(
        p("_updated:[2026-01-01T00:00:00Z TO *]"),
        Query::Range(Range {
            gte: Some("2026-01-01T00:00:00Z".into()),
            ..range(sys(SystemField::Updated))
        })
    );
    assert_eq!(
        p("_updated:>=2026-01-01T00:00:00Z"),
        Query::Range(Range {
            gte: Some("2026-01-01T00:00:00Z".into()),
            ..range(sys(SystemField::Updated))
        })
    );
    assert_eq!(
        p("_updated:2026-01-01T00:00:00+01:00"),
        term(sys(SystemField::Updated), "2026-01-01T00:00:00+01:00")
    );
    assert_eq!(
        p("_kind:*"),
        Query::Exists {
            field: sys(SystemField::Kind)
        }
    );
    // Prefix and wildcard on a number are rejected by `validate`.
    assert!(matches!(parse("_seq:1*"), Err(Error::InvalidQuery { .. })));
}

#[test]
fn parser_prefix_wildcard_exists() {
    let prefix = |f: &str, s: &str| Query::Prefix {
        field: body(f),
        prefix: s.into(),
    };
    let wildcard = |f: &str, s: &str| Query::Wildcard {
        field: body(f),
        pattern: s.into(),
    };
    assert_eq!(p("name:ad*"), prefix("name", "ad"));
    assert_eq!(p("name:a\\*b*"), prefix("name", "a*b"));
    assert_eq!(p("name:a\\?*"), prefix("name", "a?"));
    assert_eq!(p("name:w?ld*"), wildcard("name", "w?ld*"));
    assert_eq!(p("name:*ada"), wildcard("name", "*ada"));
    assert_eq!(p("name:a*b"), wildcard("name", "a*b"));
    assert_eq!(p("name:**"), wildcard("name", "**"));
    assert_eq!(p("name:a?"), wildcard("name", "a?"));
    assert_eq!(p("name:?"), wildcard("name", "?"));
    assert_eq!(
        p("name:*"),
        Query::Exists {
            field: body("name")
        }
    );
    assert_eq!(p("name:\\*"), term(body("name"), "*"));
    assert_eq!(
        p("(name:*)"),
        Query::Exists {
            field: body("name")
        }
    );
    fails_at("name:a\\*b?", 5, "without an escaped", "`a\\*b?`");
}

#[test]
fn parser_fuzzy() {
    let fuzzy = |f: Option<&str>, w: &str, d: u8| Query::Fuzzy {
        field: f.map(str::to_owned),
        word: w.into(),
        distance: d,
    };
    assert_eq!(p("name:ada~"), fuzzy(Some("name"), "ada", 2));
    assert_eq!(p("name:ada~0"), fuzzy(Some("name"), "ada", 0));
    assert_eq!(p("name:ada~1"), fuzzy(Some("name"), "ada", 1));
    assert_eq!(p("name:ada~2"), fuzzy(Some("name"), "ada", 2));
    assert_eq!(p("ada~1"), fuzzy(None, "ada", 1));
    assert_eq!(p("ada~"), fuzzy(None, "ada", 2));
    assert_eq!(p("(ada~)"), fuzzy(None, "ada", 2));
    assert_eq!(p("a\\~b"), word("a~b"));
    fails_at("name:ada~3", 9, "0, 1 or 2", "`3`");
    fails_at("name:ada~12", 9, "0, 1 or 2", "`12`");
    fails_at("ada~x", 4, "fuzzy distance", "`x`");
    fails_at("a~b c", 2, "fuzzy distance", "`b`");
    fails_at("~1", 0, "a word before `~`", "`~1`");
    fails_at("name:~", 5, "a word before `~`", "`~`");
    fails_at("a*~1", 0, "without wildcards", "`a*~1`");
    fails_at("_id:ada~1", 7, "a body field", "`~1`");
    fails_at("_kind:ada~", 9, "a body field", "`~`");
}

#[test]
fn parser_ranges() {
    let r = |gt: Option<i64>, gte: Option<i64>, lt: Option<i64>, lte: Option<i64>| {
        Query::Range(Range {
            gt: gt.map(Scalar::Int),
            gte: gte.map(Scalar::Int),
            lt: lt.map(Scalar::Int),
            lte: lte.map(Scalar::Int),
            ..range(body("n"))
        })
    };
    assert_eq!(p("n:[1 TO 5]"), r(None, Some(1), None, Some(5)));
    assert_eq!(p("n:{1 TO 5}"), r(Some(1), None, Some(5), None));
    assert_eq!(p("n:[1 TO 5}"), r(None, Some(1), Some(5), None));
    assert_eq!(p("n:{1 TO 5]"), r(Some(1), None, None, Some(5)));
    assert_eq!(p("n:[ -1   TO\t5 ]"), r(None, Some(-1), None, Some(5)));
    assert_eq!(p("n:[* TO 5]"), r(None, None, None, Some(5)));
    assert_eq!(p("n:{1 TO *}"), r(Some(1), None, None, None));
    assert_eq!(p("n:[* TO *]"), Query::Exists { field: body("n") });
    assert_eq!(p("n:>5"), r(Some(5), None, None, None));
    assert_eq!(p("n:>=5"), r(None, Some(5), None, None));
    assert_eq!(p("n:<5"), r(None, None, Some(5), None));
    assert_eq!(p("n:<=5"), r(None, None, None, Some(5)));
    assert_eq!(p("n:> 5"), r(Some(5), None, None, None));
    assert_eq!(p("n:>-5"), r(Some(-5), None, None, None));
    assert_eq!(
        p("n:[1.5 TO 2e3]"),
        Query::Range(Range {
            gte: Some(Scalar::Float(1.5)),
            lte: Some(Scalar::Float(2000.0)),
            ..range(body("n"))
        })
    );
    assert_eq!(
        p("name:[a TO \"m z\"}"),
        Query::Range(Range {
            gte: Some("a".into()),
            lt: Some("m z".into()),
            ..range(body("name"))
        })
    );
    assert_eq!(
        p("name:[true TO \\*]"),
        Query::Range(Range {
            gte: Some("true".into()),
            lte: Some("*".into()),
            ..range(body("name"))
        }),
        "bare words in ranges are strings; an escaped star is a star"
    );
    assert_eq!(
        p("at:[2026-01-01T00:00:00Z TO 2026-02-01T00:00:00Z}"),
        Query::Range(Range {
            gte: Some("2026-01-01T00:00:00Z".into()),
            lt: Some("2026-02-01T00:00:00Z".into()),
            ..range(body("at"))
        })
    );
    assert_eq!(
        p("_id:[/a TO /b]"),
        Query::Range(Range {
            gte: Some("/a".into()),
            lte: Some("/b".into()),
            ..range(sys(SystemField::Id))
        })
    );
    assert_eq!(p("(n:[1 TO 2])"), r(None, Some(1), None, Some(2)));
    fails_at("n:[1 5]", 5, "`TO`", "`5]`");
    fails_at("n:[1 to 5]", 5, "`TO`", "`to`");
    fails_at("n:[1TO 5]", 7, "`TO`", "`5]`");
    fails_at("n:[1 TO 5", 9, "`]` or `}`", "end of input");
    fails_at("n:[1 TO 5)", 9, "`]` or `}`", "`)`");
    fails_at("n:[1 TO]", 7, "an upper bound", "`]`");
    fails_at("n:[ TO 5]", 4, "a lower bound", "`TO`");
    fails_at("n:[]", 3, "a lower bound", "`]`");
    fails_at("n:[1 TO 5]x", 10, "whitespace", "`x`");
    fails_at("n:>", 3, "a value after `>`", "end of input");
    fails_at("n:>=)", 4, "a value after `>=`", "`)`");
    fails_at("n:> AND x", 4, "a value after `>`", "`AND`");
    fails_at("n:>*", 3, "a value after `>`", "`*`");
    fails_at("[1 TO 5]", 0, "a field before a range", "`[`");
    fails_at(">5", 0, "a field before a range", "`>5`");
}

#[test]
fn parser_field_groups() {
    assert_eq!(
        p("tags:(rust OR go)"),
        Query::Terms {
            field: body("tags"),
            values: vec!["rust".into(), "go".into()]
        }
    );
    assert_eq!(
        p("tags:(rust || go || 3)"),
        Query::Terms {
            field: body("tags"),
            values: vec!["rust".into(), "go".into(), Scalar::Int(3)]
        }
    );
    assert_eq!(
        p("n:(-5 OR 6)"),
        Query::Terms {
            field: body("n"),
            values: vec![Scalar::Int(-5), Scalar::Int(6)]
        }
    );
    assert_eq!(
        p("tags:(a OR (b OR c))"),
        Query::Terms {
            field: body("tags"),
            values: vec!["a".into(), "b".into(), "c".into()]
        }
    );
    assert_eq!(
        p("_kind:(user OR \"team\")"),
        Query::Terms {
            field: sys(SystemField::Kind),
            values: vec!["user".into(), "team".into()]
        }
    );
    assert_eq!(p("tags:(rust)"), term(body("tags"), "rust"));
    // Juxtaposition is AND here too.
    assert_eq!(
        p("tags:(rust go)"),
        must(vec![term(body("tags"), "rust"), term(body("tags"), "go")])
    );
    assert_eq!(
        p("tags:(rust AND NOT go)"),
        bool_of(
            vec![term(body("tags"), "rust")],
            vec![term(body("tags"), "go")]
        )
    );
    assert_eq!(
        p("tags:(rust -go)"),
        bool_of(
            vec![term(body("tags"), "rust")],
            vec![term(body("tags"), "go")]
        )
    );
    assert_eq!(
        p("title:(\"a b\" OR c*)"),
        should(vec![
            Query::Phrase {
                field: Some("title".into()),
                text: "a b".into()
            },
            Query::Prefix {
                field: body("title"),
                prefix: "c".into()
            }
        ])
    );
    assert_eq!(
        p("n:(>5 OR [1 TO 2])"),
        should(vec![
            Query::Range(Range {
                gt: Some(Scalar::Int(5)),
                ..range(body("n"))
            }),
            Query::Range(Range {
                gte: Some(Scalar::Int(1)),
                lte: Some(Scalar::Int(2)),
                ..range(body("n"))
            })
        ])
    );
    // Colons are part of values in a group.
    assert_eq!(
        p("_updated:(2026-01-01T00:00:00Z OR x:y)"),
        Query::Terms {
            field: sys(SystemField::Updated),
            values: vec!["2026-01-01T00:00:00Z".into(), "x:y".into()]
        }
    );
    assert_eq!(p("a:(x) b"), must(vec![term(body("a"), "x"), word("b")]));
    fails_at("a:()", 3, "a query", "`)`");
    fails_at("a:(x", 4, "`)` to close the `(` at byte 2", "end of input");
    fails_at("a:(x OR)", 7, "a query after `OR`", "`)`");
}

// ---------------------------------------------------------------------------------------------
// Operators

#[test]
fn parser_boolean_operators() {
    let (a, b, c) = (word("a"), word("b"), word("c"));
    for text in [
        "a AND b",
        "a && b",
        "a b",
        "+a +b",
        "a\tAND\nb",
        "(a)&&(b)",
        "a AND(b)",
    ] {
        assert_eq!(p(text), must(vec![a.clone(), b.clone()]), "{text:?}");
    }
    for text in ["a OR b", "a || b", "(a)||(b)", "a OR(b)"] {
        assert_eq!(p(text), should(vec![a.clone(), b.clone()]), "{text:?}");
    }
    for text in [
        "NOT a",
        "!a",
        "-a",
        "! a",
        "- a",
        "NOT(a)",
        "+-a",
        "NOT NOT NOT a",
    ] {
        assert_eq!(p(text), not(a.clone()), "{text:?}");
    }
    for text in [
        "NOT NOT a",
        "!!a",
        "--a",
        "-(-a)",
        "NOT (NOT a)",
        "+a",
        "(a)",
        "((a))",
    ] {
        assert_eq!(p(text), a, "{text:?}");
    }
    assert_eq!(
        p("a AND b AND c"),
        must(vec![a.clone(), b.clone(), c.clone()])
    );
    assert_eq!(p("a b c"), must(vec![a.clone(), b.clone(), c.clone()]));
    assert_eq!(
        p("a OR b OR c"),
        should(vec![a.clone(), b.clone(), c.clone()])
    );
    assert_eq!(p("a AND NOT b"), bool_of(vec![a.clone()], vec![b.clone()]));
    assert_eq!(p("a -b"), bool_of(vec![a.clone()], vec![b.clone()]));
    assert_eq!(p("a NOT b"), bool_of(vec![a.clone()], vec![b.clone()]));
    assert_eq!(p("a OR NOT b"), should(vec![a.clone(), not(b.clone())]));
    assert_eq!(
        p("NOT a AND NOT b"),
        bool_of(vec![], vec![a.clone(), b.clone()])
    );
    assert_eq!(p("-a -b"), bool_of(vec![], vec![a.clone(), b.clone()]));
    assert_eq!(
        p("+a -b c"),
        bool_of(vec![a.clone(), c.clone()], vec![b.clone()])
    );
    // Flattening through parentheses.
    assert_eq!(
        p("(a AND b) AND c"),
        must(vec![a.clone(), b.clone(), c.clone()])
    );
    assert_eq!(p("a (b c)"), must(vec![a.clone(), b.clone(), c.clone()]));
    assert_eq!(
        p("a OR (b OR c)"),
        should(vec![a.clone(), b.clone(), c.clone()])
    );
    assert_eq!(
        p("a (b -c)"),
        bool_of(vec![a.clone(), b.clone()], vec![c.clone()])
    );
    assert_eq!(p("NOT (a OR b)"), not(should(vec![a.clone(), b.clone()])));
    assert_eq!(p("NOT (a AND b)"), not(must(vec![a.clone(), b.clone()])));
    // `NOT` before a phrase or a group needs no space.
    assert_eq!(
        p("NOT\"a b\""),
        not(Query::Phrase {
            field: None,
            text: "a b".into()
        })
    );
    // Keywords glued to words are words.
    assert_eq!(p("ANDROID"), word("ANDROID"));
    assert_eq!(p("NOTE"), word("NOTE"));
    assert_eq!(p("ORb"), word("ORb"));
    assert_eq!(p("a ||b"), must(vec![a.clone(), word("||b")]));
}

#[test]
fn parser_precedence() {
    let (a, b, c, d) = (word("a"), word("b"), word("c"), word("d"));
    // AND binds tighter than OR.
    assert_eq!(
        p("a OR b AND c"),
        should(vec![a.clone(), must(vec![b.clone(), c.clone()])])
    );
    assert_eq!(
        p("a AND b OR c"),
        should(vec![must(vec![a.clone(), b.clone()]), c.clone()])
    );
    assert_eq!(
        p("a b OR c d"),
        should(vec![
            must(vec![a.clone(), b.clone()]),
            must(vec![c.clone(), d.clone()])
        ])
    );
    // NOT binds tighter than AND and OR.
    assert_eq!(p("NOT a AND b"), bool_of(vec![b.clone()], vec![a.clone()]));
    assert_eq!(p("NOT a OR b"), should(vec![not(a.clone()), b.clone()]));
    assert_eq!(
        p("a b OR NOT c d"),
        should(vec![
            must(vec![a.clone(), b.clone()]),
            bool_of(vec![d.clone()], vec![c.clone()])
        ])
    );
    // Parentheses override.
    assert_eq!(
        p("(a OR b) AND c"),
        must(vec![should(vec![a.clone(), b.clone()]), c.clone()])
    );
    assert_eq!(
        p("a AND (b OR c)"),
        must(vec![a.clone(), should(vec![b.clone(), c.clone()])])
    );
    assert_eq!(
        p("((a OR (b AND (c OR d))))"),
        should(vec![
            a.clone(),
            must(vec![b.clone(), should(vec![c.clone(), d.clone()])])
        ])
    );
}

#[test]
fn parser_realistic_queries() {
    assert_eq!(
        p("title:\"hello world\" AND (tags:rust OR tags:go) -draft:true"),
        bool_of(
            vec![
                Query::Phrase {
                    field: Some("title".into()),
                    text: "hello world".into()
                },
                should(vec![term(body("tags"), "rust"), term(body("tags"), "go")]),
            ],
            vec![term(body("draft"), true)]
        )
    );
    assert_eq!(
        p("_kind:user _id:/users/* _updated:[2026-01-01T00:00:00Z TO *]"),
        must(vec![
            term(sys(SystemField::Kind), "user"),
            Query::Prefix {
                field: sys(SystemField::Id),
                prefix: "/users/".into()
            },
            Query::Range(Range {
                gte: Some("2026-01-01T00:00:00Z".into()),
                ..range(sys(SystemField::Updated))
            })
        ])
    );
    assert_eq!(
        p("section:python size:[1000 TO 5000} NOT priority:optional"),
        Query::term("section", "python")
            .and(Query::range("size", 1000..5000))
            .and_not(Query::term("priority", "optional"))
    );
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn parser_syntax_errors_positions() {
    fails_at("title:", 6, "a value after `title:`", "end of input");
    fails_at("title: ", 7, "a value after `title:`", "end of input");
    fails_at("(title:)", 7, "a value after `title:`", "`)`");
    fails_at("a: OR b", 3, "a value after `a:`", "`OR`");
    fails_at("(a", 2, "`)` to close the `(` at byte 0", "end of input");
    fails_at(
        "((a) b",
        6,
        "`)` to close the `(` at byte 0",
        "end of input",
    );
    fails_at("a)", 1, "the end of input", "`)`");
    fails_at("a) b", 1, "the end of input", "`)`");
    fails_at(")", 0, "a query", "`)`");
    fails_at("()", 1, "a query", "`)`");
    fails_at("a AND", 5, "a query after `AND`", "end of input");
    fails_at("a &&  ", 6, "a query after `&&`", "end of input");
    fails_at("a OR OR b", 5, "a query after `OR`", "`OR`");
    fails_at("a AND OR b", 6, "a query after `AND`", "`OR`");
    fails_at("(a OR)", 5, "a query after `OR`", "`)`");
    fails_at("AND a", 0, "a query", "`AND`");
    fails_at("OR", 0, "a query", "`OR`");
    fails_at("a NOT", 5, "a query after `NOT`", "end of input");
    fails_at("!", 1, "a query after `!`", "end of input");
    fails_at("-", 1, "a query after `-`", "end of input");
    fails_at("a - OR b", 4, "a query after `-`", "`OR`");
    fails_at(
        "\"abc",
        4,
        "`\"` to close the string opened at byte 0",
        "end of input",
    );
    fails_at("a:\"abc\\\"", 8, "opened at byte 2", "end of input");
    fails_at("\"a\"b", 3, "whitespace", "`b`");
    fails_at("\"a b\"~2", 5, "phrase slop", "`~2`");
    fails_at("\"\"", 0, "a non-empty phrase", "`\"`");
    fails_at("t:\"\"", 2, "a non-empty phrase", "`\"`");
    fails_at("a\\", 1, "a character after `\\`", "`\\`");
    fails_at("n:[a\\", 4, "a character after `\\`", "`\\`");
    fails_at("foo*", 0, "a field before a wildcard", "`foo*`");
    fails_at("a ?", 2, "a field before a wildcard", "`?`");
    fails_at("a$b:c", 3, "a field name", "`:c`");
    fails_at(":x", 0, "a field name", "`:x`");
    fails_at("a b:c:d e:", 10, "a value after `e:`", "end of input");
    fails_at("ab(c)", 2, "whitespace before `(`", "`(`");
    fails_at("a:b\"c", 3, "whitespace before `\"`", "`\"`");
    fails_at("*foo", 0, "a field before a wildcard", "`*foo`");
    fails_at("*:x", 1, "a field name", "`:x`");
    // Invalid field paths are syntax errors at the field.
    fails_at("a..b:c", 0, "a valid field name", "`a..b:c`");
    fails_at(".a:c", 0, "empty segment", "`.a:c`");
    fails_at("x a.:c", 2, "empty segment", "`a.:c`");
    let long = format!("{}:x", "f".repeat(1025));
    fails_at(
        &long,
        0,
        "at most 1024 bytes",
        &format!("`{}…`", "f".repeat(20)),
    );
}

#[test]
fn parser_positions_are_byte_offsets() {
    // `é` is two bytes, `日` three.
    fails_at("é:", 3, "a value after `é:`", "end of input");
    fails_at("日本 (", 8, "a query", "end of input");
    fails_at("日本 AND", 10, "a query after `AND`", "end of input");
    fails_at("\"ü", 3, "`\"`", "end of input");
    fails_at("日本)", 6, "the end of input", "`)`");
    assert_eq!(p("名前:値"), term(body("名前"), "値"));
    assert_eq!(p("日本"), word("日本"));
}

#[test]
fn parser_found_is_truncated() {
    let text = format!("a:[1 {}]", "x".repeat(30));
    let (position, _, found) = syntax(&text);
    assert_eq!(position, 5);
    assert_eq!(found, format!("`{}…`", "x".repeat(20)));
    let text = format!("a:[1 {}]", "é".repeat(19));
    assert_eq!(syntax(&text).2, format!("`{}]`", "é".repeat(19)));
    let e = parse("title:").unwrap_err().to_string();
    assert_eq!(
        e,
        "query syntax error at byte 6: expected a value after `title:`, found end of input"
    );
}

#[test]
fn parser_depth_is_limited() {
    let nest = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(p(&nest(MAX_QUERY_DEPTH)), word("a"));
    assert!(matches!(
        parse(&nest(MAX_QUERY_DEPTH + 1)),
        Err(Error::QueryTooDeep {
            limit: MAX_QUERY_DEPTH
        })
    ));
    // Far deeper than any stack would take, without overflowing.
    assert!(matches!(
        parse(&"(".repeat(30_000)),
        Err(Error::QueryTooDeep { .. })
    ));
    let field_group = |n: usize| format!("f:{}a{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(p(&field_group(MAX_QUERY_DEPTH)), term(body("f"), "a"));
    assert!(matches!(
        parse(&field_group(MAX_QUERY_DEPTH + 1)),
        Err(Error::QueryTooDeep { .. })
    ));
    // `x OR y (...)` nests two Bools per group; `validate` bounds that.
    let nest_bools = |n: usize| (0..n).fold("a".to_owned(), |t, _| format!("x OR y ({t})"));
    assert!(parse(&nest_bools(20)).is_ok());
    assert!(matches!(
        parse(&nest_bools(40)),
        Err(Error::QueryTooDeep { .. })
    ));
    // Long chains of negations cancel out rather than nest.
    assert_eq!(p(&format!("{}a", "!".repeat(60_000))), word("a"));
    assert_eq!(p(&format!("{}a", "NOT ".repeat(10_001))), not(word("a")));
}

#[test]
fn parser_input_size_is_limited() {
    let ok = "a ".repeat(MAX_TEXT_BYTES / 2);
    assert_eq!(ok.len(), MAX_TEXT_BYTES);
    let Query::Bool(b) = p(&ok) else {
        panic!("not a Bool")
    };
    assert_eq!(b.must.len(), MAX_TEXT_BYTES / 2);
    let too_long = format!("{ok}b");
    assert!(matches!(parse(&too_long), Err(Error::InvalidQuery { .. })));
    // A huge unterminated phrase and a huge word.
    let huge = format!("\"{}", "x".repeat(MAX_TEXT_BYTES - 1));
    assert_eq!(syntax(&huge).0, MAX_TEXT_BYTES);
    let huge = "x".repeat(MAX_TEXT_BYTES);
    assert_eq!(p(&huge), word(&huge));
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Syntax errors point inside the text, at a character boundary, and say something.
fn check_error(text: &str, e: &Error) {
    if let Error::Syntax {
        position,
        expected,
        found,
    } = e
    {
        assert!(*position <= text.len(), "{text:?}: {e}");
        assert!(text.is_char_boundary(*position), "{text:?}: {e}");
        assert!(!expected.is_empty() && !found.is_empty(), "{text:?}: {e}");
    }
}

/// Parses `text`; a successful parse round-trips through the JSON form.
fn check_parse(text: &str) {
    match parse(text) {
        Ok(q) => {
            let json = q.to_json();
            let back = Query::from_json(&json)
                .unwrap_or_else(|e| panic!("{text:?}: {json} does not parse back: {e}"));
            assert_eq!(back, q, "{text:?}: {json}");
        }
        Err(e) => check_error(text, &e),
    }
}

/// A boolean expression over atoms `f<i>:v<j>`.
#[derive(Debug, Clone)]
enum Expr {
    Atom(u8, u8),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = (0..3u8, 0..2u8).prop_map(|(f, v)| Expr::Atom(f, v));
    leaf.prop_recursive(5, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

fn pick(choices: &mut impl Iterator<Item = u8>, options: &[&'static str]) -> &'static str {
    options[usize::from(choices.next().unwrap_or(0)) % options.len()]
}

/// Prints `e` with as few parentheses as precedence allows (plus some redundant ones), picking
/// operator spellings from `choices`.
fn print(e: &Expr, min_prec: u8, choices: &mut impl Iterator<Item = u8>, out: &mut String) {
    let prec = match e {
        Expr::Or(_) => 1,
        Expr::And(_) => 2,
        Expr::Not(_) => 3,
        Expr::Atom(..) => 4,
    };
    let extra = pick(choices, &["", "", "", "("]) == "(";
    let parens = prec < min_prec || extra;
    if parens {
        out.push_str(pick(choices, &["(", "( "]));
    }
    match e {
        Expr::Atom(f, v) => out.push_str(&format!("f{f}:v{v}")),
        Expr::Not(inner) => {
            out.push_str(pick(choices, &["NOT ", "!", "-", "! ", "NOT"]));
            if out.ends_with("NOT") {
                // `NOT` needs a space unless a parenthesis follows.
                out.push('(');
                print(inner, 0, choices, out);
                out.push(')');
            } else {
                print(inner, 3, choices, out);
            }
        }
        Expr::And(items) | Expr::Or(items) => {
            let ops: &[&str] = if matches!(e, Expr::And(_)) {
                &[" AND ", " && ", " ", "  AND\t"]
            } else {
                &[" OR ", " || ", "\nOR "]
            };
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(pick(choices, ops));
                }
                // Operands of the same operator need no parentheses (both are associative).
                print(item, prec, choices, out);
            }
        }
    }
    if parens {
        out.push_str(pick(choices, &[")", " )"]));
    }
}

fn eval_expr(e: &Expr, truth: u64) -> bool {
    match e {
        Expr::Atom(f, v) => truth >> (f * 2 + v) & 1 == 1,
        Expr::And(items) => items.iter().all(|e| eval_expr(e, truth)),
        Expr::Or(items) => items.iter().any(|e| eval_expr(e, truth)),
        Expr::Not(e) => !eval_expr(e, truth),
    }
}

/// Evaluates a parsed query of atoms as [`Query::Bool`] is specified.
fn eval_query(q: &Query, truth: u64) -> bool {
    match q {
        Query::All => true,
        Query::Term {
            field: Field::Body(f),
            value: Scalar::Str(v),
            case_insensitive: false,
        } => {
            let f: u8 = f[1..].parse().unwrap();
            let v: u8 = v[1..].parse().unwrap();
            eval_expr(&Expr::Atom(f, v), truth)
        }
        Query::Bool(b) => {
            assert!(
                b.must.is_empty() || b.should.is_empty(),
                "a Bool mixes must and should: {q:?}"
            );
            b.must.iter().all(|q| eval_query(q, truth))
                && !b.must_not.iter().any(|q| eval_query(q, truth))
                && (!b.must.is_empty()
                    || b.should.is_empty()
                    || b.should.iter().any(|q| eval_query(q, truth)))
        }
        q => panic!("unexpected {q:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parser_never_panics_on_any_string(text in any::<String>()) {
        check_parse(&text);
    }

    #[test]
    fn parser_never_panics_on_syntax_soup(
        text in "[ab_:()\\[\\]{}\"*?~\\\\<>=!+\\-. \t0-9éTOANDR&|]{0,60}"
    ) {
        check_parse(&text);
    }

    #[test]
    fn parser_never_panics_on_token_soup(
        tokens in prop::collection::vec(prop_oneof![
            Just("a"), Just("b:"), Just("_id:"), Just("_version:"), Just("("), Just(")"),
            Just(" "), Just("AND "), Just("OR "), Just("NOT "), Just("&&"), Just("||"),
            Just("!"), Just("-"), Just("+"), Just("\""), Just("["), Just("]"), Just("{"),
            Just("}"), Just(" TO "), Just("*"), Just("?"), Just("~"), Just("1"), Just("-2.5"),
            Just(">="), Just("<"), Just("\\"), Just(":"), Just("é"), Just("2026-01-01T00:00:00Z"),
        ], 0..30)
    ) {
        check_parse(&tokens.concat());
    }

    /// Printing a boolean expression and parsing it gives a query with the same truth table.
    #[test]
    fn parser_boolean_round_trip(e in expr(), choices in prop::collection::vec(any::<u8>(), 64)) {
        let mut text = String::new();
        print(&e, 0, &mut choices.iter().copied().cycle(), &mut text);
        let q = parse(&text).unwrap_or_else(|err| panic!("{text:?}: {err}"));
        for truth in 0..64 {
            prop_assert_eq!(
                eval_query(&q, truth),
                eval_expr(&e, truth),
                "{:?} parsed as {:?}, assignment {:06b}", text, q, truth
            );
        }
        check_parse(&text);
    }
}
