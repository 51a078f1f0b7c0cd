//! Checks of user input against [`Limits`] (docs/DESIGN.md §2), and RFC 7386 merge patches.

use serde_json::{Map, Value};

use crate::document::json_type_name;
use crate::error::{Error, Result};
use crate::options::Limits;

fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

/// What is wrong with an id or a kind (1..=`max` bytes, no NUL), if anything.
fn name_problem(name: &str, max: usize) -> Option<String> {
    if name.is_empty() {
        Some("it is empty".to_owned())
    } else if name.len() > max {
        Some(format!(
            "it is {} bytes, over the limit of {max}",
            name.len()
        ))
    } else if name.contains('\0') {
        Some("it contains NUL".to_owned())
    } else {
        None
    }
}

pub(crate) fn id(id: &str, limits: &Limits) -> Result<()> {
    match name_problem(id, limits.max_id_bytes) {
        Some(reason) => Err(Error::InvalidId {
            id: cut(id),
            reason,
        }),
        None => Ok(()),
    }
}

pub(crate) fn kind(kind: &str, limits: &Limits) -> Result<()> {
    match name_problem(kind, limits.max_kind_bytes) {
        Some(reason) => Err(Error::InvalidKind {
            kind: cut(kind),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks shape, depth and field names without recursion (a hostile value may nest deeper than
/// the stack allows), then encodes and checks the size.
pub(crate) fn body(id: &str, body: &Value, limits: &Limits) -> Result<Vec<u8>> {
    check_value(id, body, limits)?;
    let mut bytes = Vec::with_capacity(512);
    serde_json::to_writer(&mut bytes, body).map_err(|source| Error::Decode {
        id: id.to_owned(),
        source,
    })?;
    check_size(id, &bytes, limits)?;
    Ok(bytes)
}

fn check_size(id: &str, bytes: &[u8], limits: &Limits) -> Result<()> {
    if bytes.len() > limits.max_document_bytes {
        return Err(Error::DocumentTooLarge {
            id: id.to_owned(),
            size: bytes.len(),
            limit: limits.max_document_bytes,
        });
    }
    Ok(())
}

/// Checks JSON text given as a body against the same limits as [`body`], and returns the bytes
/// to store: the text as given (surrounding whitespace cut), or re-encoded if an object repeats
/// a key, so that what is stored reads back the same in any parser.
///
/// The size is checked first and the depth by a scan of the bytes before anything parses them,
/// so neither a huge nor a deeply nested text costs more than one pass.
pub(crate) fn raw_body(id: &str, mut bytes: Vec<u8>, limits: &Limits) -> Result<Vec<u8>> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let end = bytes.len() - bytes.iter().rev().take_while(|b| is_space(b)).count();
    bytes.truncate(end);
    let start = bytes.iter().take_while(|b| is_space(b)).count();
    bytes.drain(..start);
    check_size(id, &bytes, limits)?;
    let Some(members) = scan(&bytes, limits.max_depth) else {
        return Err(Error::DocumentTooDeep {
            id: id.to_owned(),
            limit: limits.max_depth,
        });
    };
    // At most `Limits::MAX_DEPTH` (127) levels now: serde_json parses and drops them.
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidBody {
        id: id.to_owned(),
        reason: format!("malformed JSON: {e}"),
    })?;
    let keys = check_value(id, &value, limits)?;
    if keys == members {
        return Ok(bytes);
    }
    // An object repeats a key: store what the parse kept (readers disagree about repeats).
    let bytes = serde_json::to_vec(&value).map_err(|source| Error::Decode {
        id: id.to_owned(),
        source,
    })?;
    check_size(id, &bytes, limits)?;
    Ok(bytes)
}

/// The number of object members in JSON text (its colons outside strings), or `None` if it
/// nests arrays and objects deeper than `max_depth`. Malformed text gives some count; the parse
/// that follows refuses it.
fn scan(bytes: &[u8], max_depth: usize) -> Option<usize> {
    let (mut depth, mut members) = (0usize, 0usize);
    let mut iter = bytes.iter();
    while let Some(&b) = iter.next() {
        match b {
            b'"' => {
                // Skip the string, escapes included.
                while let Some(&c) = iter.next() {
                    match c {
                        b'\\' => {
                            iter.next();
                        }
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return None;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b':' => members += 1,
            _ => {}
        }
    }
    Some(members)
}

/// Checks that `body` is an object within the depth and field-name limits, without recursion;
/// returns the number of object members in it.
fn check_value(id: &str, body: &Value, limits: &Limits) -> Result<usize> {
    if !body.is_object() {
        return Err(Error::InvalidBody {
            id: id.to_owned(),
            reason: format!("a body must be a JSON object, not {}", json_type_name(body)),
        });
    }
    let too_deep = || Error::DocumentTooDeep {
        id: id.to_owned(),
        limit: limits.max_depth,
    };
    // Only containers go on the stack; a scalar needs no visit.
    let mut stack: Vec<(&Value, usize)> = vec![(body, 1)];
    let mut members = 0;
    while let Some((value, depth)) = stack.pop() {
        if depth > limits.max_depth {
            return Err(too_deep());
        }
        match value {
            Value::Object(map) => {
                members += map.len();
                for (key, child) in map {
                    if key.len() > limits.max_field_name_bytes {
                        return Err(Error::FieldNameTooLong {
                            id: id.to_owned(),
                            len: key.len(),
                            limit: limits.max_field_name_bytes,
                        });
                    }
                    if child.is_object() || child.is_array() {
                        stack.push((child, depth + 1));
                    }
                }
            }
            Value::Array(items) => stack.extend(
                items
                    .iter()
                    .filter(|c| c.is_object() || c.is_array())
                    .map(|c| (c, depth + 1)),
            ),
            _ => {}
        }
    }
    Ok(members)
}

/// Whether `value` nests objects and arrays deeper than `max_depth` (the value itself is level
/// 1), found without recursion. Every recursive walk of a caller's value checks this first.
pub(crate) fn deeper_than(value: &Value, max_depth: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(map) => Box::new(map.values()),
            Value::Array(items) => Box::new(items.iter()),
            _ => continue,
        };
        if depth > max_depth {
            return true;
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    false
}

/// Drops `value` without recursion (serde_json's drop recurses once per level).
pub(crate) fn dismantle(value: Value) {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
}

/// Applies an RFC 7386 merge patch to `target`. It recurses as deep as `patch` nests: callers
/// check [`deeper_than`] first (a merge never gives a body less deep than its patch, so a patch
/// over the depth limit would be refused afterwards anyway).
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        // Keys keep their place (bodies keep the order they were written in, serde_json's
        // `preserve_order`): a removal shifts the rest, a new key goes last.
        for (key, value) in patch {
            if value.is_null() {
                map.shift_remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        // The test cases of RFC 7386 appendix A.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut target, patch, expected) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }

    #[test]
    fn deep_values_are_rejected_without_recursion() {
        let mut v = json!(1);
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        let mut map = Map::new();
        map.insert("x".to_owned(), v);
        let body = Value::Object(map);
        let err = body_check(&body);
        assert!(
            matches!(err, Err(Error::DocumentTooDeep { limit: 64, .. })),
            "{err:?}"
        );
        // Dropping a value this deep would overflow serde_json's recursive drop; leak it.
        std::mem::forget(body);
    }

    #[test]
    fn depth_is_measured_and_deep_values_drop_without_recursion() {
        let deep = |levels: usize| {
            let mut v = json!({});
            for _ in 1..levels {
                v = Value::Array(vec![v]);
            }
            v
        };
        assert!(!deeper_than(&json!({"a": 1}), 1));
        assert!(deeper_than(&json!({"a": {}}), 1));
        assert!(!deeper_than(&deep(5), 5) && deeper_than(&deep(6), 5));
        assert!(!deeper_than(&json!(1), 0));
        // Recursive drop of this value would overflow the test thread's stack.
        dismantle(deep(1_000_000));
        // `Limits::MAX_DEPTH` is the deepest body serde_json reads back.
        let text = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        let max = Limits::MAX_DEPTH;
        assert!(serde_json::from_str::<Value>(&text(max)).is_ok());
        assert!(serde_json::from_str::<Value>(&text(max + 1)).is_err());
    }

    fn body_check(v: &Value) -> Result<Vec<u8>> {
        body("/t", v, &Limits::default())
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits::default()
            .with_max_document_bytes(20)
            .with_max_field_name_bytes(3);
        assert!(matches!(
            body("/t", &json!([]), &limits),
            Err(Error::InvalidBody { .. })
        ));
        assert!(matches!(
            body("/t", &json!({"abcd":1}), &limits),
            Err(Error::FieldNameTooLong { len: 4, .. })
        ));
        assert!(matches!(
            body("/t", &json!({"a":"0123456789012345678"}), &limits),
            Err(Error::DocumentTooLarge { .. })
        ));
        assert!(body("/t", &json!({"a":1}), &limits).is_ok());
        assert!(matches!(id("", &limits), Err(Error::InvalidId { .. })));
        assert!(matches!(id("a\0b", &limits), Err(Error::InvalidId { .. })));
        assert!(matches!(
            id(&"x".repeat(1025), &limits),
            Err(Error::InvalidId { .. })
        ));
        assert!(matches!(
            kind(&"x".repeat(257), &limits),
            Err(Error::InvalidKind { .. })
        ));
    }
}
