//! Snowflake column types: how DDL names them, how the service describes them in `tableSchema`, and
//! which JSON values each can hold (the check that turns a bad value into a row error on insert).
//!
//! Values are normalised the way Snowflake stores them (a numeric string in a NUMBER column becomes a
//! number, a timestamp becomes RFC 3339), so what the inspection API shows is what a query would return.

use std::borrow::Cow;

use serde_json::{Number, Value, json};
use time::{
    Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset,
    format_description::well_known::Rfc3339,
};

use super::{field::Field, utc_stamp};

/// Longest VARCHAR (and default length) in characters.
pub(crate) const MAX_VARCHAR: u32 = 16_777_216;
/// Longest BINARY (and default length) in bytes.
pub(crate) const MAX_BINARY: u32 = 8_388_608;

/// A Snowflake column type, as stored after DDL synonyms are resolved (`INT` is `NUMBER(38,0)`,
/// `DOUBLE PRECISION` is `FLOAT`, `STRING` is `VARCHAR(16777216)`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `NUMBER(precision, scale)`.
    Number {
        /// Total digits, 1..=38.
        precision: u8,
        /// Digits after the point, 0..=precision.
        scale: u8,
    },
    /// `FLOAT` (every floating point synonym).
    Float,
    /// `VARCHAR(length)` in characters.
    Varchar {
        /// Maximum characters.
        length: u32,
    },
    /// `BINARY(length)` in bytes, given as hex text.
    Binary {
        /// Maximum bytes.
        length: u32,
    },
    /// `BOOLEAN`.
    Boolean,
    /// `DATE`.
    Date,
    /// `TIME(scale)`.
    Time {
        /// Fractional second digits, 0..=9.
        scale: u8,
    },
    /// `TIMESTAMP_NTZ(scale)` (also `TIMESTAMP` and `DATETIME`).
    TimestampNtz {
        /// Fractional second digits, 0..=9.
        scale: u8,
    },
    /// `TIMESTAMP_LTZ(scale)`.
    TimestampLtz {
        /// Fractional second digits, 0..=9.
        scale: u8,
    },
    /// `TIMESTAMP_TZ(scale)`.
    TimestampTz {
        /// Fractional second digits, 0..=9.
        scale: u8,
    },
    /// `VARIANT`: any JSON.
    Variant,
    /// `OBJECT`: a JSON object.
    Object,
    /// `ARRAY`: a JSON array.
    Array,
}

impl ColumnType {
    /// Resolves a DDL type name (upper case, words joined by one space) and its numeric arguments.
    pub(crate) fn from_sql(name: &str, args: &[u32]) -> Result<Self, String> {
        let arg = |i: usize| args.get(i).copied();
        let too_many = |max: usize| {
            if args.len() > max {
                Err(format!("too many arguments for type {name}"))
            } else {
                Ok(())
            }
        };
        let scale = |default: u8| -> Result<u8, String> {
            match arg(0) {
                None => Ok(default),
                Some(s) => u8::try_from(s)
                    .ok()
                    .filter(|s| *s <= 9)
                    .ok_or_else(|| format!("scale {s} is out of range [0, 9] for type {name}")),
            }
        };
        let ty = match name {
            "NUMBER" | "DECIMAL" | "NUMERIC" => {
                too_many(2)?;
                let precision = arg(0).unwrap_or(38);
                let scale = arg(1).unwrap_or(0);
                if !(1..=38).contains(&precision) {
                    return Err(format!("precision {precision} is out of range [1, 38]"));
                }
                if scale > precision {
                    return Err(format!("scale {scale} is out of range [0, {precision}]"));
                }
                let (Ok(precision), Ok(scale)) = (u8::try_from(precision), u8::try_from(scale))
                else {
                    return Err(format!("bad precision or scale for type {name}"));
                };
                Self::Number { precision, scale }
            }
            "INT" | "INTEGER" | "BIGINT" | "SMALLINT" | "TINYINT" | "BYTEINT" => {
                too_many(0)?;
                Self::Number {
                    precision: 38,
                    scale: 0,
                }
            }
            "FLOAT" | "FLOAT4" | "FLOAT8" | "DOUBLE" | "DOUBLE PRECISION" | "REAL" => {
                // Snowflake accepts and ignores a precision on FLOAT.
                too_many(1)?;
                Self::Float
            }
            "VARCHAR" | "STRING" | "TEXT" | "NVARCHAR" | "NVARCHAR2" | "CHAR VARYING"
            | "NCHAR VARYING" => {
                too_many(1)?;
                Self::Varchar {
                    length: length_arg(arg(0), MAX_VARCHAR, name)?,
                }
            }
            "CHAR" | "CHARACTER" | "NCHAR" => {
                too_many(1)?;
                Self::Varchar {
                    length: length_arg(arg(0).or(Some(1)), MAX_VARCHAR, name)?,
                }
            }
            "BINARY" | "VARBINARY" => {
                too_many(1)?;
                Self::Binary {
                    length: length_arg(arg(0), MAX_BINARY, name)?,
                }
            }
            "BOOLEAN" => {
                too_many(0)?;
                Self::Boolean
            }
            "DATE" => {
                too_many(0)?;
                Self::Date
            }
            "TIME" => {
                too_many(1)?;
                Self::Time { scale: scale(9)? }
            }
            "TIMESTAMP"
            | "TIMESTAMP_NTZ"
            | "DATETIME"
            | "TIMESTAMPNTZ"
            | "TIMESTAMP WITHOUT TIME ZONE" => {
                too_many(1)?;
                Self::TimestampNtz { scale: scale(9)? }
            }
            "TIMESTAMP_LTZ" | "TIMESTAMPLTZ" | "TIMESTAMP WITH LOCAL TIME ZONE" => {
                too_many(1)?;
                Self::TimestampLtz { scale: scale(9)? }
            }
            "TIMESTAMP_TZ" | "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => {
                too_many(1)?;
                Self::TimestampTz { scale: scale(9)? }
            }
            "VARIANT" => {
                too_many(0)?;
                Self::Variant
            }
            "OBJECT" => {
                too_many(0)?;
                Self::Object
            }
            "ARRAY" => {
                too_many(0)?;
                Self::Array
            }
            _ => return Err(format!("unsupported data type '{name}'")),
        };
        Ok(ty)
    }

    /// The type as Snowflake prints it, e.g. `NUMBER(38,0)` or `TIMESTAMP_TZ(9)`.
    #[must_use]
    pub fn sql_name(&self) -> String {
        match self {
            Self::Number { precision, scale } => format!("NUMBER({precision},{scale})"),
            Self::Float => "FLOAT".to_owned(),
            Self::Varchar { length } => format!("VARCHAR({length})"),
            Self::Binary { length } => format!("BINARY({length})"),
            Self::Boolean => "BOOLEAN".to_owned(),
            Self::Date => "DATE".to_owned(),
            Self::Time { scale } => format!("TIME({scale})"),
            Self::TimestampNtz { scale } => format!("TIMESTAMP_NTZ({scale})"),
            Self::TimestampLtz { scale } => format!("TIMESTAMP_LTZ({scale})"),
            Self::TimestampTz { scale } => format!("TIMESTAMP_TZ({scale})"),
            Self::Variant => "VARIANT".to_owned(),
            Self::Object => "OBJECT".to_owned(),
            Self::Array => "ARRAY".to_owned(),
        }
    }

    /// Snowflake's logical type name, as the ingest SDK reports it.
    #[must_use]
    pub fn logical_type(&self) -> &'static str {
        match self {
            Self::Number { .. } => "FIXED",
            Self::Float => "REAL",
            Self::Varchar { .. } => "TEXT",
            Self::Binary { .. } => "BINARY",
            Self::Boolean => "BOOLEAN",
            Self::Date => "DATE",
            Self::Time { .. } => "TIME",
            Self::TimestampNtz { .. } => "TIMESTAMP_NTZ",
            Self::TimestampLtz { .. } => "TIMESTAMP_LTZ",
            Self::TimestampTz { .. } => "TIMESTAMP_TZ",
            Self::Variant => "VARIANT",
            Self::Object => "OBJECT",
            Self::Array => "ARRAY",
        }
    }

    /// One column's entry in a `tableSchema` answer.
    pub(crate) fn schema_entry(&self, nullable: bool) -> Value {
        let (precision, scale, byte_length, length) = match *self {
            Self::Number { precision, scale } => {
                (json!(precision), json!(scale), Value::Null, Value::Null)
            }
            Self::Varchar { length } => {
                let bytes = length.saturating_mul(4).min(MAX_VARCHAR);
                (Value::Null, Value::Null, json!(bytes), json!(length))
            }
            Self::Binary { length } => (Value::Null, Value::Null, json!(length), json!(length)),
            Self::Time { scale }
            | Self::TimestampNtz { scale }
            | Self::TimestampLtz { scale }
            | Self::TimestampTz { scale } => (json!(0), json!(scale), Value::Null, Value::Null),
            _ => (Value::Null, Value::Null, Value::Null, Value::Null),
        };
        json!({
            "type": self.sql_name(),
            "logicalType": self.logical_type(),
            "precision": precision,
            "scale": scale,
            "byteLength": byte_length,
            "length": length,
            "nullable": nullable,
        })
    }

    /// Checks that `value` (not null) fits this type and returns it as Snowflake would store it. The
    /// result borrows from `value` where it is stored as given (a VARCHAR string), so the common case
    /// copies nothing.
    pub(crate) fn coerce<'v>(&self, value: &'v Field<'_>) -> Result<Field<'v>, String> {
        match *self {
            Self::Number { precision, scale } => coerce_number(value, precision, scale),
            Self::Float => coerce_float(value),
            Self::Varchar { length } => coerce_varchar(value, length),
            Self::Binary { length } => coerce_binary(value, length),
            Self::Boolean => coerce_boolean(value),
            Self::Date => {
                parse_datetime_value(value).map(|dt| Field::owned(format_date(dt.date())))
            }
            Self::Time { .. } => coerce_time(value),
            // Timestamps nearly always come in UTC RFC 3339 already: normalised by cutting the text.
            Self::TimestampNtz { .. } => match utc_prefix(value) {
                Some(prefix) => Ok(Field::Str(Cow::Borrowed(prefix))),
                None => parse_datetime_value(value)
                    .map(|dt| Field::owned(format_ntz(dt.date(), dt.time()))),
            },
            Self::TimestampLtz { .. } => match utc_prefix(value) {
                Some(prefix) => Ok(Field::Joined(prefix, "Z")),
                None => parse_datetime_value(value)
                    .map(|dt| Field::owned(format_tz(dt.to_offset(UtcOffset::UTC)))),
            },
            Self::TimestampTz { .. } => match utc_prefix(value) {
                Some(prefix) => Ok(Field::Joined(prefix, "Z")),
                None => parse_datetime_value(value).map(|dt| Field::owned(format_tz(dt))),
            },
            Self::Variant => Ok(value.reborrow()),
            Self::Object => match value {
                Field::Json(v) if v.is_object() => Ok(value.reborrow()),
                Field::Str(s) => match serde_json::from_str::<Value>(s) {
                    Ok(v @ Value::Object(_)) => Ok(Field::Json(Cow::Owned(v))),
                    _ => Err("Not a valid JSON object".to_owned()),
                },
                _ => Err("Not a valid JSON object".to_owned()),
            },
            // The ingest SDK wraps a single value into a one-element array.
            Self::Array => match value {
                Field::Json(v) if v.is_array() => Ok(value.reborrow()),
                other => Ok(Field::Json(Cow::Owned(Value::Array(vec![
                    other.to_value(),
                ])))),
            },
        }
    }

    /// [`Self::coerce`] on and to `serde_json::Value`s, for tests that write values as `json!`.
    #[cfg(test)]
    pub(crate) fn coerce_value(&self, value: &Value) -> Result<Value, String> {
        self.coerce(&Field::from(value)).map(|v| v.to_value())
    }
}

fn length_arg(arg: Option<u32>, max: u32, name: &str) -> Result<u32, String> {
    match arg {
        None => Ok(max),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(format!(
            "length {n} is out of range [1, {max}] for type {name}"
        )),
    }
}

/// Is `s` a decimal literal (`-12`, `3.50`, `1e3`, `.5`)?
fn is_decimal_literal(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn coerce_number(value: &Field<'_>, precision: u8, scale: u8) -> Result<Field<'static>, String> {
    let number = match value {
        Field::Number(n) => n.clone(),
        Field::Str(s) => {
            let t = s.trim();
            if !is_decimal_literal(t) {
                return Err(format!("Numeric value '{s}' is not recognized"));
            }
            if let Ok(i) = t.parse::<i64>() {
                Number::from(i)
            } else if let Ok(u) = t.parse::<u64>() {
                Number::from(u)
            } else {
                match t.parse::<f64>().ok().and_then(Number::from_f64) {
                    Some(n) => n,
                    None => return Err(format!("Numeric value '{s}' is out of range")),
                }
            }
        }
        other => {
            return Err(format!(
                "Cannot ingest a {} into a NUMBER column",
                other.describe()
            ));
        }
    };
    let max_integer_digits = u32::from(precision - scale);
    // The value as given, for the message; only built when it is needed.
    let out_of_range = || {
        let text = match value {
            Field::Str(s) => s.trim().to_owned(),
            _ => number.to_string(),
        };
        format!("Number out of representable range: type NUMBER({precision},{scale}), value {text}")
    };
    if let Some(i) = number.as_i64() {
        if integer_digits(i.unsigned_abs()) > max_integer_digits {
            return Err(out_of_range());
        }
        return Ok(Field::Number(number));
    }
    if let Some(u) = number.as_u64() {
        if integer_digits(u) > max_integer_digits {
            return Err(out_of_range());
        }
        return Ok(Field::Number(number));
    }
    let f = number.as_f64().unwrap_or(f64::NAN);
    if !f.is_finite() {
        return Err(out_of_range());
    }
    // Snowflake rounds half away from zero to the column's scale.
    let factor = 10f64.powi(i32::from(scale));
    let rounded = (f * factor).round() / factor;
    let limit = 10f64.powi(i32::try_from(max_integer_digits).unwrap_or(38));
    if rounded.abs() >= limit {
        return Err(out_of_range());
    }
    if scale == 0 && rounded.abs() < 9.0e15 {
        // Exactly representable: store an integer, as Snowflake shows NUMBER(p,0).
        #[allow(clippy::cast_possible_truncation)]
        let as_int = rounded as i64;
        return Ok(Field::Number(Number::from(as_int)));
    }
    Number::from_f64(rounded)
        .map(Field::Number)
        .ok_or_else(out_of_range)
}

fn integer_digits(mut n: u64) -> u32 {
    let mut digits = 0;
    while n > 0 {
        digits += 1;
        n /= 10;
    }
    digits
}

fn coerce_float(value: &Field<'_>) -> Result<Field<'static>, String> {
    match value {
        Field::Number(n) => Ok(Field::Number(n.clone())),
        Field::Str(s) => {
            let t = s.trim();
            match t.to_ascii_lowercase().as_str() {
                "nan" => return Ok(Field::owned("NaN".to_owned())),
                "inf" | "+inf" | "infinity" | "+infinity" => {
                    return Ok(Field::owned("inf".to_owned()));
                }
                "-inf" | "-infinity" => return Ok(Field::owned("-inf".to_owned())),
                _ => {}
            }
            if !is_decimal_literal(t) {
                return Err(format!("Numeric value '{s}' is not recognized"));
            }
            t.parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Field::Number)
                .ok_or_else(|| format!("Numeric value '{s}' is out of range"))
        }
        other => Err(format!(
            "Cannot ingest a {} into a FLOAT column",
            other.describe()
        )),
    }
}

fn coerce_varchar<'v>(value: &'v Field<'_>, length: u32) -> Result<Field<'v>, String> {
    let text: Cow<'v, str> = match value {
        Field::Str(s) => Cow::Borrowed(s),
        Field::Number(n) => Cow::Owned(n.to_string()),
        Field::Bool(b) => Cow::Owned(b.to_string()),
        other => {
            return Err(format!(
                "Cannot ingest a {} into a VARCHAR column",
                other.describe()
            ));
        }
    };
    // A character takes at least a byte, so text no longer in bytes than the limit needs no count.
    if u64::try_from(text.len()).unwrap_or(u64::MAX) > u64::from(length) {
        let chars = text.chars().count();
        if u64::try_from(chars).unwrap_or(u64::MAX) > u64::from(length) {
            return Err(format!(
                "String too long: length={chars} characters maxLength={length} characters"
            ));
        }
    }
    Ok(Field::Str(text))
}

fn coerce_binary(value: &Field<'_>, length: u32) -> Result<Field<'static>, String> {
    let Field::Str(s) = value else {
        return Err(format!(
            "Cannot ingest a {} into a BINARY column",
            value.describe()
        ));
    };
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("Not a valid hex string".to_owned());
    }
    let bytes = s.len() / 2;
    if u64::try_from(bytes).unwrap_or(u64::MAX) > u64::from(length) {
        return Err(format!(
            "Binary too long: length={bytes} maxLength={length}"
        ));
    }
    Ok(Field::owned(s.to_ascii_uppercase()))
}

fn coerce_boolean(value: &Field<'_>) -> Result<Field<'static>, String> {
    match value {
        Field::Bool(b) => Ok(Field::Bool(*b)),
        Field::Number(n) => Ok(Field::Bool(n.as_f64().is_some_and(|f| f != 0.0))),
        Field::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "on" | "1" => Ok(Field::Bool(true)),
            "false" | "f" | "no" | "n" | "off" | "0" => Ok(Field::Bool(false)),
            _ => Err(format!("Boolean value '{s}' is not recognized")),
        },
        other => Err(format!(
            "Cannot ingest a {} into a BOOLEAN column",
            other.describe()
        )),
    }
}

fn coerce_time(value: &Field<'_>) -> Result<Field<'static>, String> {
    let bad = || format!("Time value {value} is not recognized");
    let time = match value {
        Field::Str(s) => parse_time(s.trim()).ok_or_else(bad)?,
        Field::Number(n) => {
            let secs = n.as_u64().filter(|s| *s < 86_400).ok_or_else(bad)?;
            let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
            let (Ok(h), Ok(m), Ok(s)) = (u8::try_from(h), u8::try_from(m), u8::try_from(s)) else {
                return Err(bad());
            };
            Time::from_hms(h, m, s).map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    Ok(Field::owned(format_time(time)))
}

/// For a string in UTC RFC 3339 (surrounding spaces aside, as [`parse_datetime_value`] takes it),
/// the part of it that, with `Z` or without, is the timestamp as Snowflake stores it.
fn utc_prefix<'v>(value: &'v Field<'_>) -> Option<&'v str> {
    match value {
        Field::Str(s) => utc_stamp::canonical_prefix(s.trim()),
        _ => None,
    }
}

/// Parses a date, timestamp or epoch value the way Snowflake's `AUTO` format does, for the forms the
/// manager and people commonly send: RFC 3339, `YYYY-MM-DD[ T]HH:MM:SS[.fff][Z|±HH[:MM]]`, a bare date,
/// or epoch seconds / milliseconds / microseconds / nanoseconds (chosen by magnitude, as Snowflake does).
/// A value without an offset is taken as UTC.
fn parse_datetime_value(value: &Field<'_>) -> Result<OffsetDateTime, String> {
    match value {
        Field::Str(s) => {
            let t = s.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                return t
                    .parse::<i64>()
                    .ok()
                    .and_then(from_epoch)
                    .ok_or_else(|| format!("Timestamp '{s}' is not recognized"));
            }
            parse_datetime(t).ok_or_else(|| format!("Timestamp '{s}' is not recognized"))
        }
        Field::Number(n) => n
            .as_i64()
            .and_then(from_epoch)
            .ok_or_else(|| format!("Timestamp {n} is not recognized")),
        other => Err(format!(
            "Cannot ingest a {} into a date or time column",
            other.describe()
        )),
    }
}

fn from_epoch(n: i64) -> Option<OffsetDateTime> {
    const SECONDS: i64 = 31_536_000_000;
    let nanos = i128::from(n);
    let nanos = match n.unsigned_abs() {
        a if a < SECONDS.unsigned_abs() => nanos * 1_000_000_000,
        a if a < (SECONDS * 1000).unsigned_abs() => nanos * 1_000_000,
        a if a < (SECONDS * 1_000_000).unsigned_abs() => nanos * 1_000,
        _ => nanos,
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    if let Some(dt) = utc_stamp::parse(s) {
        return Some(dt);
    }
    if let Ok(dt) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(dt);
    }
    let date = parse_date(s.get(..10)?)?;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc());
    }
    let rest = rest.strip_prefix(['T', ' '])?;
    // The time runs up to the offset, if any.
    let split = rest.find(['Z', 'z', '+', '-', ' ']).unwrap_or(rest.len());
    let time = parse_time(&rest[..split])?;
    let offset = parse_offset(rest[split..].trim_start())?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i32 = s[..4].parse().ok()?;
    let month: u8 = s[5..7].parse().ok()?;
    let day: u8 = s[8..10].parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn parse_time(s: &str) -> Option<Time> {
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut parts = hms.split(':');
    let h: u8 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let sec: u8 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    if parts.next().is_some() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Time::from_hms_nano(h, m, sec, nanos).ok()
}

fn parse_offset(s: &str) -> Option<UtcOffset> {
    if s.is_empty() || s.eq_ignore_ascii_case("z") {
        return Some(UtcOffset::UTC);
    }
    let sign: i8 = match s.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if !(digits.len() == 2 || digits.len() == 4) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i8 = digits[..2].parse().ok()?;
    let m: i8 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn format_time(t: Time) -> String {
    let base = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    if t.nanosecond() == 0 {
        base
    } else {
        let frac = format!("{:09}", t.nanosecond());
        format!("{base}.{}", frac.trim_end_matches('0'))
    }
}

fn format_ntz(d: Date, t: Time) -> String {
    format!("{}T{}", format_date(d), format_time(t))
}

fn format_tz(dt: OffsetDateTime) -> String {
    if let Some(text) = utc_stamp::format(dt) {
        return text;
    }
    dt.format(&Rfc3339)
        .unwrap_or_else(|_| format!("{}T{}", format_date(dt.date()), format_time(dt.time())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::needless_pass_by_value)] // Table rows read better with values than references.
    fn check(ty: ColumnType, input: Value, expect: Result<Value, ()>) {
        let got = ty.coerce_value(&input).map_err(|_| ());
        assert_eq!(got, expect, "{} <- {input}", ty.sql_name());
    }

    #[test]
    fn numbers() {
        let int = ColumnType::Number {
            precision: 38,
            scale: 0,
        };
        check(int, json!(42), Ok(json!(42)));
        check(int, json!("42"), Ok(json!(42)));
        check(int, json!(" -7 "), Ok(json!(-7)));
        check(int, json!(1.5), Ok(json!(2)));
        check(int, json!("abc"), Err(()));
        check(int, json!(true), Err(()));
        check(int, json!({"a": 1}), Err(()));
        let small = ColumnType::Number {
            precision: 3,
            scale: 1,
        };
        check(small, json!(99.94), Ok(json!(99.9)));
        check(small, json!(100), Err(()));
        check(small, json!("1e1"), Ok(json!(10.0)));
    }

    #[test]
    fn text_boolean_binary_float() {
        let v = ColumnType::Varchar { length: 3 };
        check(v, json!("abc"), Ok(json!("abc")));
        check(v, json!("abcd"), Err(()));
        check(v, json!(12), Ok(json!("12")));
        check(v, json!([1]), Err(()));
        check(ColumnType::Boolean, json!("yes"), Ok(json!(true)));
        check(ColumnType::Boolean, json!(0), Ok(json!(false)));
        check(ColumnType::Boolean, json!("maybe"), Err(()));
        check(
            ColumnType::Binary { length: 2 },
            json!("0aFF"),
            Ok(json!("0AFF")),
        );
        check(ColumnType::Binary { length: 2 }, json!("0aF"), Err(()));
        check(ColumnType::Float, json!("1.25"), Ok(json!(1.25)));
        check(ColumnType::Float, json!("NaN"), Ok(json!("NaN")));
        check(ColumnType::Float, json!("x"), Err(()));
    }

    #[test]
    fn timestamps() {
        let tz = ColumnType::TimestampTz { scale: 9 };
        check(
            tz,
            json!("2023-05-12T04:36:50.199Z"),
            Ok(json!("2023-05-12T04:36:50.199Z")),
        );
        check(
            tz,
            json!("2023-05-12 04:36:50 +02:00"),
            Ok(json!("2023-05-12T04:36:50+02:00")),
        );
        check(tz, json!("2023-05-12"), Ok(json!("2023-05-12T00:00:00Z")));
        check(tz, json!(0), Ok(json!("1970-01-01T00:00:00Z")));
        check(
            tz,
            json!("1683866210199"),
            Ok(json!("2023-05-12T04:36:50.199Z")),
        );
        check(tz, json!("not a time"), Err(()));
        check(tz, json!("2023-13-12T04:36:50Z"), Err(()));
        check(
            ColumnType::TimestampNtz { scale: 9 },
            json!("2023-05-12T04:36:50+02:00"),
            Ok(json!("2023-05-12T04:36:50")),
        );
        check(
            ColumnType::TimestampLtz { scale: 9 },
            json!("2023-05-12T04:36:50+02:00"),
            Ok(json!("2023-05-12T02:36:50Z")),
        );
        check(
            ColumnType::Date,
            json!("2023-05-12T04:36:50Z"),
            Ok(json!("2023-05-12")),
        );
        check(
            ColumnType::Time { scale: 9 },
            json!("04:36:50.5"),
            Ok(json!("04:36:50.5")),
        );
        check(ColumnType::Time { scale: 9 }, json!("25:00:00"), Err(()));
    }

    proptest::proptest! {
        #[test]
        fn utc_timestamps_cut_short_as_the_general_path_formats_them(
            s in " ?[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,10})?[Z+] ?"
        ) {
            let value = Field::Str(Cow::Borrowed(&s));
            let dt = parse_datetime_value(&value);
            let general = [
                dt.clone().map(format_tz),
                dt.clone().map(|dt| format_tz(dt.to_offset(UtcOffset::UTC))),
                dt.map(|dt| format_ntz(dt.date(), dt.time())),
            ];
            let types = [
                ColumnType::TimestampTz { scale: 9 },
                ColumnType::TimestampLtz { scale: 9 },
                ColumnType::TimestampNtz { scale: 9 },
            ];
            for (ty, want) in types.into_iter().zip(general) {
                let got = ty.coerce(&value).map(|v| v.to_value());
                proptest::prop_assert_eq!(got, want.map(Value::String), "{} {}", ty.sql_name(), s);
            }
        }
    }

    #[test]
    fn variant_object_array() {
        check(
            ColumnType::Variant,
            json!({"a": [1]}),
            Ok(json!({"a": [1]})),
        );
        check(ColumnType::Object, json!("{\"a\":1}"), Ok(json!({"a": 1})));
        check(ColumnType::Object, json!(1), Err(()));
        check(ColumnType::Array, json!(1), Ok(json!([1])));
    }

    #[test]
    fn type_names_resolve() {
        let t = |name: &str, args: &[u32]| ColumnType::from_sql(name, args).map(|t| t.sql_name());
        assert_eq!(t("INT", &[]), Ok("NUMBER(38,0)".to_owned()));
        assert_eq!(t("DOUBLE PRECISION", &[]), Ok("FLOAT".to_owned()));
        assert_eq!(t("STRING", &[]), Ok("VARCHAR(16777216)".to_owned()));
        assert_eq!(t("CHAR", &[]), Ok("VARCHAR(1)".to_owned()));
        assert_eq!(t("NUMBER", &[10, 2]), Ok("NUMBER(10,2)".to_owned()));
        assert_eq!(t("TIMESTAMP_TZ", &[]), Ok("TIMESTAMP_TZ(9)".to_owned()));
        assert!(t("NUMBER", &[39]).is_err());
        assert!(t("NUMBER", &[2, 3]).is_err());
        assert!(t("VARCHAR", &[0]).is_err());
        assert!(t("GEOGRAPHY", &[]).is_err());
        assert!(t("INT", &[3]).is_err());
    }
}
