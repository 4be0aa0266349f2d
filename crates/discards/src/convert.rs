//! The conversion rules for one value whose event type differs from the table's type.

use serde_json::Value;
use snowpipe_grouping::WarehouseType;

use crate::text::text_form;

/// What becomes of one value whose type in the event differs from the table's.
#[derive(Debug, Clone, PartialEq)]
pub enum Conversion {
    /// The value stays as it is.
    Keep,
    /// The value is replaced.
    Replace(Value),
    /// The value cannot be converted: it becomes null and a discard row is due.
    Discard,
}

/// Converts a value (its raw JSON text and parsed form) from `event_type` to `table_type`, following the
/// behaviour contract's rules in order:
///
/// - the same type (`int`≈`bigint`, `string`≈`text`) or a null value: kept;
/// - table `string`/`text`: a value of event type `json` is kept, any other becomes its [text form];
/// - event `int`/`bigint`, table `float`: a number becomes a float, anything else is discarded;
/// - event `float`, table `int`/`bigint`: a number is truncated toward zero to an integer (discarded when
///   that does not fit in 64 bits), anything else is discarded;
/// - table `json`: a value of event type `int`/`bigint`/`float`/`boolean` becomes its text form, an array
///   is kept, anything else becomes a JSON string of its text form (`abc` → `"\"abc\""`);
/// - any other pair: discarded.
///
/// Arrays that are kept still go out as JSON text; that is the caller's last step (see [`crate::Coercer`]).
///
/// [text form]: crate::text_form
///
/// ```
/// use serde_json::json;
/// use snowpipe_discards::{Conversion, convert};
/// use snowpipe_grouping::WarehouseType::*;
///
/// assert_eq!(convert("1.9", Float, Int), Conversion::Replace(json!(1)));
/// assert_eq!(convert("2", Int, Float), Conversion::Replace(json!(2.0)));
/// assert_eq!(convert("2", Int, String), Conversion::Replace(json!("2")));
/// assert_eq!(convert("\"abc\"", String, Json), Conversion::Replace(json!("\"abc\"")));
/// assert_eq!(convert("\"yes\"", String, Boolean), Conversion::Discard);
/// ```
#[must_use]
pub fn convert(raw: &str, event_type: WarehouseType, table_type: WarehouseType) -> Conversion {
    if event_type.same_as(table_type) {
        return Conversion::Keep;
    }
    let Ok(value) = serde_json::from_str::<Value>(raw) else {
        // Raw values come from validated rows; anything else cannot be trusted into the table.
        return Conversion::Discard;
    };
    if value.is_null() {
        return Conversion::Keep;
    }
    let text = || Value::String(text_form(raw, &value).into_owned());
    match (event_type.canonical(), table_type.canonical()) {
        (WarehouseType::Json, WarehouseType::String) => Conversion::Keep,
        (_, WarehouseType::String) => Conversion::Replace(text()),
        (WarehouseType::Int, WarehouseType::Float) => match value.as_f64() {
            Some(f) if value.is_number() => Conversion::Replace(Value::from(f)),
            _ => Conversion::Discard,
        },
        (WarehouseType::Float, WarehouseType::Int) => {
            truncate(&value).map_or(Conversion::Discard, Conversion::Replace)
        }
        (
            WarehouseType::Int | WarehouseType::Float | WarehouseType::Boolean,
            WarehouseType::Json,
        ) => Conversion::Replace(text()),
        (_, WarehouseType::Json) if value.is_array() => Conversion::Keep,
        (_, WarehouseType::Json) => {
            let quoted = serde_json::to_string(text_form(raw, &value).as_ref())
                .expect("serialising a string cannot fail");
            Conversion::Replace(Value::String(quoted))
        }
        _ => Conversion::Discard,
    }
}

/// A number truncated toward zero, if the result fits in 64 bits.
fn truncate(value: &Value) -> Option<Value> {
    let Value::Number(n) = value else { return None };
    if n.is_i64() || n.is_u64() {
        return Some(value.clone());
    }
    let t = n.as_f64()?.trunc();
    // 2^63 and 2^64 are exact in f64; the casts below are exact for whole numbers in range.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "range checked just before"
    )]
    if (-TWO_63..TWO_63).contains(&t) {
        Some(Value::from(t as i64))
    } else if (0.0..TWO_64).contains(&t) {
        Some(Value::from(t as u64))
    } else {
        None
    }
}

/// The reason written into a discard row.
///
/// ```
/// use snowpipe_discards::discard_reason;
/// use snowpipe_grouping::WarehouseType::*;
///
/// assert_eq!(discard_reason(Boolean, String), "incompatible schema conversion from boolean to string");
/// ```
#[must_use]
pub fn discard_reason(table_type: WarehouseType, event_type: WarehouseType) -> String {
    format!("incompatible schema conversion from {table_type} to {event_type}")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use snowpipe_grouping::WarehouseType::{self, *};

    use super::{Conversion, convert};

    fn check(raw: &str, event: WarehouseType, table: WarehouseType, expected: &Conversion) {
        assert_eq!(
            &convert(raw, event, table),
            expected,
            "{raw}: {event} → {table}"
        );
    }

    fn replace(v: Value) -> Conversion {
        Conversion::Replace(v)
    }

    #[test]
    fn same_types_and_nulls_are_kept() {
        check("1", Int, Bigint, &Conversion::Keep);
        check("\"a\"", Text, String, &Conversion::Keep);
        check("\"not a number\"", Int, Int, &Conversion::Keep);
        for table in WarehouseType::ALL {
            for event in WarehouseType::ALL {
                check("null", event, table, &Conversion::Keep);
            }
        }
    }

    #[test]
    fn into_string_tables_values_become_text_unless_the_event_says_json() {
        check("1", Int, String, &replace(json!("1")));
        check("1.5", Float, Text, &replace(json!("1.5")));
        check("2.0", Float, String, &replace(json!("2")));
        check("true", Boolean, String, &replace(json!("true")));
        check(
            "\"2023-05-12T04:36:50.199Z\"",
            Datetime,
            String,
            &replace(json!("2023-05-12T04:36:50.199Z")),
        );
        check(r#"{"a":1}"#, Json, String, &Conversion::Keep);
        check("[1,2]", Json, Text, &Conversion::Keep);
        check("7", Json, String, &Conversion::Keep);
        // An int column whose value is an object still becomes text.
        check(r#"{"b": 1}"#, Int, String, &replace(json!(r#"{"b": 1}"#)));
    }

    #[test]
    fn ints_into_float_tables_become_floats() {
        check("2", Int, Float, &replace(json!(2.0)));
        check("-3", Bigint, Float, &replace(json!(-3.0)));
        check("2.5", Int, Float, &replace(json!(2.5)));
        check("\"2\"", Int, Float, &Conversion::Discard);
        check("true", Bigint, Float, &Conversion::Discard);
        assert_eq!(serde_json::to_string(&json!(2.0)).unwrap(), "2.0");
    }

    #[test]
    fn floats_into_int_tables_are_truncated_toward_zero() {
        check("1.9", Float, Int, &replace(json!(1)));
        check("-1.9", Float, Bigint, &replace(json!(-1)));
        check("-0.5", Float, Int, &replace(json!(0)));
        check("5", Float, Int, &replace(json!(5)));
        check(
            "18446744073709551615",
            Float,
            Int,
            &replace(json!(18_446_744_073_709_551_615_u64)),
        );
        check(
            "1e19",
            Float,
            Int,
            &replace(json!(10_000_000_000_000_000_000_u64)),
        );
        check("-9.3e18", Float, Int, &Conversion::Discard);
        check("1e300", Float, Int, &Conversion::Discard);
        check("\"1.5\"", Float, Int, &Conversion::Discard);
    }

    #[test]
    fn into_json_tables() {
        check("1", Int, Json, &replace(json!("1")));
        check("1", Bigint, Json, &replace(json!("1")));
        check("1.25", Float, Json, &replace(json!("1.25")));
        check("false", Boolean, Json, &replace(json!("false")));
        check("[1,\"a\"]", String, Json, &Conversion::Keep);
        check("[1,\"a\"]", Int, Json, &replace(json!("[1,\"a\"]")));
        check("\"abc\"", String, Json, &replace(json!("\"abc\"")));
        check(
            "\"say \\\"hi\\\"\"",
            Text,
            Json,
            &replace(json!(r#""say \"hi\"""#)),
        );
        check(
            "\"2023-05-12\"",
            Datetime,
            Json,
            &replace(json!("\"2023-05-12\"")),
        );
        check(
            r#"{"a":1}"#,
            String,
            Json,
            &replace(json!(r#""{\"a\":1}""#)),
        );
    }

    #[test]
    fn every_other_pair_is_discarded() {
        let convertible = |event: WarehouseType, table: WarehouseType| {
            event.same_as(table)
                || table.is_text()
                || table == Json
                || (event.is_integer() && table == Float)
                || (event == Float && table.is_integer())
        };
        let mut discarded = 0;
        for table in WarehouseType::ALL {
            for event in WarehouseType::ALL {
                if !convertible(event, table) {
                    check("\"x\"", event, table, &Conversion::Discard);
                    check("1", event, table, &Conversion::Discard);
                    discarded += 1;
                }
            }
        }
        // int, bigint and float tables refuse five event types each; boolean and datetime tables seven.
        assert_eq!(discarded, 29);
        check("\"2023-05-12\"", String, Datetime, &Conversion::Discard);
        check("1", Int, Boolean, &Conversion::Discard);
        check("true", Boolean, Int, &Conversion::Discard);
    }
}
