//! Stripe's request encoding: `application/x-www-form-urlencoded` with bracket keys
//! (`items[0][price]=p`, `metadata[k]=v`, `expand[]=x`), decoded into nested JSON. Objects whose
//! keys are all indices become arrays; every leaf is a string, as on the wire.

use serde_json::{Map, Value};

/// Why a body or query string is not valid Stripe form encoding.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormError {
    #[error("Invalid parameter name: {0}")]
    BadKey(String),
    #[error("Conflicting values given for parameter: {0}")]
    Conflict(String),
}

/// Decodes `input` into a JSON object.
pub fn parse(input: &str) -> Result<Value, FormError> {
    let mut root = Map::new();
    for pair in input.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key);
        insert(&mut root, &key, &segments(&key)?, decode(value))?;
    }
    Ok(arrayify(Value::Object(root)))
}

/// `a[b][0]` → `["a", "b", "0"]`; `a[]` → `["a", ""]`.
fn segments(key: &str) -> Result<Vec<&str>, FormError> {
    let bad = || FormError::BadKey(key.to_owned());
    let (head, mut rest) = key.split_once('[').map_or((key, ""), |(h, r)| (h, r));
    if head.is_empty() {
        return Err(bad());
    }
    let mut out = vec![head];
    if key.contains('[') {
        rest = rest.strip_suffix(']').ok_or_else(bad)?;
        for segment in rest.split("][") {
            if segment.contains(['[', ']']) {
                return Err(bad());
            }
            out.push(segment);
        }
    }
    Ok(out)
}

fn insert(map: &mut Map<String, Value>, key: &str, path: &[&str], value: String) -> Result<(), FormError> {
    let conflict = || FormError::Conflict(key.to_owned());
    let Some((first, rest)) = path.split_first() else {
        return Err(conflict());
    };
    // `[]` appends: the next free index.
    let name = if first.is_empty() {
        map.len().to_string()
    } else {
        (*first).to_owned()
    };
    if rest.is_empty() {
        return match map.insert(name, Value::String(value)) {
            None => Ok(()),
            Some(_) => Err(conflict()),
        };
    }
    match map.entry(name).or_insert_with(|| Value::Object(Map::new())) {
        Value::Object(child) => insert(child, key, rest, value),
        _ => Err(conflict()),
    }
}

/// Turns every non-empty object keyed `0..n` into an array, depth first.
fn arrayify(value: Value) -> Value {
    let Value::Object(map) = value else { return value };
    let entries: Vec<(String, Value)> = map.into_iter().map(|(k, v)| (k, arrayify(v))).collect();
    let index = |key: &str| {
        key.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| key.parse::<usize>().ok())
            .flatten()
    };
    let indices: Option<Vec<usize>> = entries.iter().map(|(key, _)| index(key)).collect();
    match indices {
        Some(indices) if !indices.is_empty() => {
            let mut items: Vec<(usize, Value)> = indices.into_iter().zip(entries.into_iter().map(|(_, v)| v)).collect();
            items.sort_by_key(|(i, _)| *i);
            Value::Array(items.into_iter().map(|(_, v)| v).collect())
        }
        _ => Value::Object(entries.into_iter().collect()),
    }
}

/// Percent-decoding with `+` as space; malformed escapes are kept as written.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn flat_and_nested_keys_become_objects() {
        let form = parse("email=a%40b.c&name=Ann+Lee&metadata[tenant_id]=t1&subscription_data[metadata][k]=v")
            .expect("parses");
        assert_eq!(
            form,
            json!({"email": "a@b.c", "name": "Ann Lee", "metadata": {"tenant_id": "t1"},
                   "subscription_data": {"metadata": {"k": "v"}}})
        );
    }

    #[test]
    fn index_keys_become_arrays_in_index_order() {
        let form = parse("line_items[1][price]=b&line_items[0][price]=a&line_items[0][quantity]=2").expect("parses");
        assert_eq!(
            form,
            json!({"line_items": [{"price": "a", "quantity": "2"}, {"price": "b"}]})
        );
    }

    #[test]
    fn percent_encoded_brackets_and_empty_brackets_are_understood() {
        let form = parse("items%5B0%5D%5Bid%5D=si_1&expand[]=x&expand[]=y").expect("parses");
        assert_eq!(form, json!({"items": [{"id": "si_1"}], "expand": ["x", "y"]}));
    }

    #[test]
    fn empty_value_and_missing_equals_are_empty_strings() {
        assert_eq!(
            parse("metadata[k]=&flag").expect("parses"),
            json!({"metadata": {"k": ""}, "flag": ""})
        );
        assert_eq!(parse("").expect("parses"), json!({}));
    }

    #[test]
    fn malformed_keys_and_conflicts_are_refused() {
        assert!(matches!(parse("a[b=1"), Err(FormError::BadKey(_))));
        assert!(matches!(parse("[a]=1"), Err(FormError::BadKey(_))));
        assert!(matches!(parse("a=1&a[b]=2"), Err(FormError::Conflict(_))));
        assert!(matches!(parse("a=1&a=2"), Err(FormError::Conflict(_))));
    }

    #[test]
    fn bad_percent_escapes_are_kept_literally() {
        assert_eq!(
            parse("q=100%25&r=%zz").expect("parses"),
            json!({"q": "100%", "r": "%zz"})
        );
    }
}
