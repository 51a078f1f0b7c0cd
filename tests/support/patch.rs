//! The model tests' merge patch: RFC 7386, written independently of the store's own
//! implementation. A suite includes it with `#[path = "../support/patch.rs"] mod patch;`.

use serde_json::{Map, Value};

/// Applies the merge patch `patch` to `target` (RFC 7386).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(fields) = target {
        for (key, value) in patch {
            if value.is_null() {
                fields.remove(key);
            } else {
                merge_patch(fields.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}
