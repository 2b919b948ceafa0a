//! Canonical JSON: the one text a JSON value is logged as, so that a verifier who rebuilds a fact
//! gets the same bytes and therefore the same leaf hash.
//!
//! Rules: object keys sorted by their UTF-8 bytes, recursively; no whitespace anywhere; strings
//! escaped as `serde_json` escapes them (`"`, `\` and control characters; everything else,
//! Chinese included, as UTF-8); numbers as `serde_json` prints them. The logged facts carry only
//! strings, integers, booleans and nulls, which all round-trip exactly.
//!
//! `serde_json::Value` keeps objects in a `BTreeMap` unless some crate in the build enables its
//! `preserve_order` feature, which would silently change key order everywhere in the binary.
//! Sorting here explicitly keeps the log's bytes independent of that feature.

use serde_json::Value;

/// The canonical text of `value`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::String(text) => write_string(out, text),
        // Null, booleans and numbers have exactly one compact form in serde_json.
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_string(out: &mut String, text: &str) {
    out.push_str(&Value::String(text.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_recursively_without_whitespace() {
        let value = json!({
            "kind": "receipt.issued",
            "receipt": { "number": "2026-LC01-0000042", "amount_fen": 100000, "payer": "王*测",
                         "replaces": null, "lines": [ { "b": 1, "a": true } ] },
            "a": "\"quoted\"\n",
        });
        assert_eq!(
            canonical_json(&value),
            r#"{"a":"\"quoted\"\n","kind":"receipt.issued","receipt":{"amount_fen":100000,"lines":[{"a":true,"b":1}],"number":"2026-LC01-0000042","payer":"王*测","replaces":null}}"#
        );
    }

    #[test]
    fn agrees_with_serde_json_when_maps_are_sorted() {
        // Without `preserve_order` serde_json sorts keys itself; if this ever fails, a crate in
        // the build enabled that feature, and only the explicit sort above keeps leaves stable.
        let value =
            json!({ "z": [1, { "y": 2, "x": -3 }], "m": "中文", "a": { "c": false, "b": null } });
        assert_eq!(
            canonical_json(&value),
            serde_json::to_string(&value).unwrap()
        );
    }

    #[test]
    fn parsing_and_reprinting_is_the_identity_on_canonical_text() {
        let text = r#"{"a":[],"b":{},"c":-12,"d":"x\u0001y"}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(canonical_json(&value), text);
    }
}
