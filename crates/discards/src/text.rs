//! Text forms of JSON values: what a user expects to read in a VARCHAR column.

use std::borrow::Cow;

use serde_json::{Number, Value};

/// The text form of a JSON value, given its raw text and its parsed value.
///
/// - strings: their contents;
/// - integers: without a decimal point (`1`, `-7`, `18446744073709551615`);
/// - other numbers: the shortest text that reads back as the same float, positional between 1e-7 and 1e21
///   and in exponent form outside (`1.5`, `1`, `0.000001`, `1e-7`, `1e+21`), as JavaScript writes numbers;
/// - booleans: `true` / `false`; null: `null`;
/// - objects and arrays: their JSON text exactly as in the event.
///
/// ```
/// use serde_json::Value;
/// use snowpipe_discards::text_form;
///
/// let form = |raw: &str| text_form(raw, &serde_json::from_str::<Value>(raw).unwrap()).into_owned();
/// assert_eq!(form("\"a1\""), "a1");
/// assert_eq!(form("1.0"), "1");
/// assert_eq!(form("1.5"), "1.5");
/// assert_eq!(form("1e21"), "1e+21");
/// assert_eq!(form("true"), "true");
/// assert_eq!(form(r#"{"b":1,"a":[2]}"#), r#"{"b":1,"a":[2]}"#);
/// ```
#[must_use]
pub fn text_form<'a>(raw: &'a str, value: &'a Value) -> Cow<'a, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        Value::Number(n) => Cow::Owned(number_text(n)),
        Value::Bool(true) => Cow::Borrowed("true"),
        Value::Bool(false) => Cow::Borrowed("false"),
        Value::Null => Cow::Borrowed("null"),
        Value::Array(_) | Value::Object(_) => Cow::Borrowed(raw),
    }
}

fn number_text(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    n.as_f64().map_or_else(|| n.to_string(), float_text)
}

/// A float as JavaScript's `Number.prototype.toString` writes it.
pub(crate) fn float_text(f: f64) -> String {
    if f == 0.0 {
        return "0".to_owned();
    }
    // `{:e}` gives the shortest round-trip digits: `-1.2345e8`, `1e21`, `1.5e-7`.
    let scientific = format!("{:e}", f.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    // The decimal point sits after `n` digits.
    let n = exponent + 1;
    let mut out = String::with_capacity(digits.len() + 8);
    if f < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n(
            '0',
            usize::try_from(n - k).unwrap_or(0),
        ));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', usize::try_from(-n).unwrap_or(0)));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if n > 0 { '+' } else { '-' });
        out.push_str(&(n - 1).abs().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::{float_text, text_form};

    fn form(raw: &str) -> String {
        text_form(raw, &serde_json::from_str::<Value>(raw).unwrap()).into_owned()
    }

    #[test]
    fn integers_have_no_decimal_point() {
        assert_eq!(form("0"), "0");
        assert_eq!(form("-7"), "-7");
        assert_eq!(form("9223372036854775807"), "9223372036854775807");
        assert_eq!(form("-9223372036854775808"), "-9223372036854775808");
        assert_eq!(form("18446744073709551615"), "18446744073709551615");
        assert_eq!(form("1.0"), "1");
        assert_eq!(form("1e2"), "100");
        assert_eq!(form("123456789.0"), "123456789");
        assert_eq!(form("-0.0"), "0");
    }

    #[test]
    fn floats_are_shortest_round_trip_like_javascript() {
        let cases = [
            ("1.5", "1.5"),
            ("-1.5", "-1.5"),
            ("0.1", "0.1"),
            ("0.30000000000000004", "0.30000000000000004"),
            ("123.456", "123.456"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("0.00000123", "0.00000123"),
            ("1.5e-7", "1.5e-7"),
            ("1e21", "1e+21"),
            ("1.25e21", "1.25e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345678901234567890", "1.2345678901234568e+29"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ];
        for (raw, expected) in cases {
            assert_eq!(form(raw), expected, "{raw}");
        }
    }

    #[test]
    fn other_values() {
        assert_eq!(form("true"), "true");
        assert_eq!(form("false"), "false");
        assert_eq!(form("null"), "null");
        assert_eq!(form(r#""a\"b\u00e9""#), "a\"bé");
        assert_eq!(
            form(r#"[1, "x" ,{"b":2,"a":1}]"#),
            r#"[1, "x" ,{"b":2,"a":1}]"#
        );
    }

    proptest! {
        #[test]
        fn float_text_reads_back_as_the_same_float(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            let text = float_text(f);
            let back: f64 = text.parse().unwrap();
            prop_assert!(back == f, "{f} → {text} → {back}");
            prop_assert!(!text.ends_with(".0"), "{text}");
        }
    }
}
