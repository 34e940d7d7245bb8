//! Renders an org back into policy YAML: block style, quoting only where YAML would
//! otherwise read the text as something else.

use serde_json::Value as Json;

use crate::model::DesiredOrg;

/// The org as one policy file. Loading the result gives back an equal [`DesiredOrg`].
pub fn to_yaml(desired: &DesiredOrg) -> String {
    let mut json = serde_json::to_value(desired).expect("the model always serializes");
    if let Json::Object(map) = &mut json {
        let mut with_version = serde_json::Map::new();
        with_version.insert("version".into(), Json::from(super::SUPPORTED_VERSION));
        with_version.extend(std::mem::take(map));
        *map = with_version;
    }
    let mut out = String::new();
    emit_block(&json, 0, &mut out);
    out
}

fn emit_block(value: &Json, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Json::Object(map) => {
            for (key, value) in map {
                out.push_str(&pad);
                out.push_str(&scalar_text(key));
                out.push(':');
                emit_after_key(value, indent, out);
            }
        }
        Json::Array(items) => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                emit_nested_or_inline(item, indent, out);
            }
        }
        scalar => {
            out.push_str(&pad);
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

fn emit_after_key(value: &Json, indent: usize, out: &mut String) {
    // Short lists of scalars read best inline, as people write model and role lists.
    if let Json::Array(items) = value
        && items.iter().all(is_scalar)
    {
        emit_inline(value, out);
        return;
    }
    emit_nested_or_inline(value, indent, out);
}

/// What follows a `key:` or a list's `-`: a non-empty map or list as a block on the lines
/// below, anything else on the same line.
fn emit_nested_or_inline(value: &Json, indent: usize, out: &mut String) {
    let nested = match value {
        Json::Object(map) => !map.is_empty(),
        Json::Array(items) => !items.is_empty(),
        _ => false,
    };
    if nested {
        out.push('\n');
        emit_block(value, indent + 2, out);
    } else {
        emit_inline(value, out);
    }
}

fn emit_inline(value: &Json, out: &mut String) {
    out.push(' ');
    out.push_str(&inline(value));
    out.push('\n');
}

fn is_scalar(value: &Json) -> bool {
    !matches!(value, Json::Object(_) | Json::Array(_))
}

fn inline(value: &Json) -> String {
    match value {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => number_text(n),
        Json::String(text) => scalar_text(text),
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Json::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(key, value)| format!("{}: {}", scalar_text(key), inline(value)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

/// A number as people write it: amounts held as floating point (spend limits) read `3000`
/// when whole, not `3000.0`, and keep their fraction (`12.5`) otherwise.
fn number_text(number: &serde_json::Number) -> String {
    // Beyond 2^53 a float no longer holds every whole number exactly; leave such values as
    // serde_json writes them rather than print digits the value does not have.
    const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;
    match number.as_f64() {
        Some(value)
            if !number.is_i64()
                && !number.is_u64()
                && value.fract() == 0.0
                && value.abs() < EXACT_INTEGER_LIMIT =>
        {
            format!("{}", value as i64)
        }
        _ => number.to_string(),
    }
}

/// Text as a YAML scalar: plain when it would read back as the same text, in flow context
/// too, and double-quoted (JSON escaping is valid YAML) otherwise.
pub fn scalar_text(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_owned()
    } else {
        serde_json::to_string(text).expect("strings always serialize")
    }
}

fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if first.is_whitespace() || text.ends_with(char::is_whitespace) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        // `*` alone is common (every model) but is an alias indicator: quote it.
        return false;
    }
    if text.contains(": ")
        || text.contains(" #")
        || text.ends_with(':')
        || text.chars().any(|c| c.is_control() || ",[]{}".contains(c))
    {
        return false;
    }
    // Text that the core schema would resolve to null, a boolean or a number stays text
    // only when quoted.
    matches!(
        super::yaml::parse(super::source::FileId(0), text).map(|node| node.map(|node| node.value)),
        Ok(Some(super::yaml::Value::Str(ref parsed))) if parsed == text
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_text_is_quoted() {
        assert_eq!(scalar_text("alice@acme.example"), "alice@acme.example");
        assert_eq!(scalar_text("*"), "\"*\"");
        assert_eq!(scalar_text("true"), "\"true\"");
        assert_eq!(scalar_text("2027-03-01"), "2027-03-01");
        assert_eq!(scalar_text("12"), "\"12\"");
        assert_eq!(scalar_text("a: b"), "\"a: b\"");
        assert_eq!(scalar_text(""), "\"\"");
        assert_eq!(scalar_text("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(scalar_text("Small models, fast"), "\"Small models, fast\"");
    }

    #[test]
    fn whole_amounts_are_written_without_a_fraction() {
        let number = |value: f64| serde_json::Number::from_f64(value).expect("finite");
        assert_eq!(number_text(&number(3000.0)), "3000");
        assert_eq!(number_text(&number(-20.0)), "-20");
        assert_eq!(number_text(&number(0.0)), "0");
        assert_eq!(number_text(&number(12.5)), "12.5");
        assert_eq!(number_text(&serde_json::Number::from(60_u64)), "60");
        assert_eq!(number_text(&number(1e300)), number(1e300).to_string());
    }
}
