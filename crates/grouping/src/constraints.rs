//! What a table's columns can hold beyond their type: a `VARCHAR(n)`'s length, a `NUMBER(p,s)`'s range,
//! `NOT NULL`.
//!
//! Snowflake's REST API checks rows against the table only when it commits them, and reports a rejected
//! row as a counter, not with the append. Rows are therefore checked before they go: a value the column
//! cannot hold goes the discards way (null, and a discard row), as a type mismatch does, and a row that
//! would put a null in a `NOT NULL` column aborts its job. Only limits that can bind are kept: the
//! maximum `VARCHAR` (16,777,216) and `NUMBER(38,0)` hold anything an event carries, as far as this check
//! is concerned, so tables the manager creates have no constraints and their rows pay nothing for it.

use std::fmt;

/// Snowflake's longest `VARCHAR`: a column of this length limits nothing a row can carry.
const MAX_VARCHAR: u64 = 16_777_216;

/// What one column can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Constraint {
    /// A text column's length in characters (`VARCHAR(n)`, `CHAR(n)`), when below the maximum.
    pub max_chars: Option<u64>,
    /// A fixed-point column's precision and scale (`NUMBER(p,s)`): at most `p - s` digits before the point.
    pub number: Option<(u32, u32)>,
    /// The column takes no nulls.
    pub not_null: bool,
}

impl Constraint {
    /// The constraint of a column of Snowflake type `data_type` (as `DESCRIBE TABLE` writes it), or `None`
    /// when it limits nothing.
    pub fn from_snowflake(data_type: &str, nullable: bool) -> Option<Self> {
        let (base, args) = match data_type.find('(') {
            Some(open) => (&data_type[..open], Some(&data_type[open + 1..])),
            None => (data_type, None),
        };
        let base = base.trim().to_ascii_uppercase();
        let numbers: Vec<u64> = args
            .map(|a| {
                a.split(')')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let mut constraint = Self {
            not_null: !nullable,
            ..Self::default()
        };
        match base.as_str() {
            "VARCHAR" | "CHAR" | "CHARACTER" | "STRING" | "TEXT" | "NCHAR" | "NVARCHAR" => {
                constraint.max_chars = numbers.first().copied().filter(|&n| n < MAX_VARCHAR);
            }
            "NUMBER" | "DECIMAL" | "NUMERIC" => {
                let precision = numbers.first().copied().unwrap_or(38);
                let scale = numbers.get(1).copied().unwrap_or(0);
                if precision < 38 || scale > 0 {
                    constraint.number = Some((
                        u32::try_from(precision).unwrap_or(38),
                        u32::try_from(scale).unwrap_or(0),
                    ));
                }
            }
            _ => {}
        }
        (constraint != Self::default()).then_some(constraint)
    }

    /// Why a JSON value (its text) cannot go into the column, or `None` when it can. Nulls are the
    /// caller's concern (`not_null`).
    pub fn violation(&self, raw: &str) -> Option<String> {
        let raw = raw.trim();
        if let Some(max) = self.max_chars
            && raw.starts_with('"')
        {
            let chars = serde_json::from_str::<String>(raw)
                .map(|s| s.chars().count() as u64)
                .unwrap_or(0);
            if chars > max {
                return Some(format!(
                    "value of {chars} characters is longer than the column's VARCHAR({max})"
                ));
            }
        }
        if let Some((precision, scale)) = self.number
            && raw.starts_with(|c: char| c == '-' || c.is_ascii_digit())
        {
            let digits = integer_digits(raw);
            let allowed = u64::from(precision.saturating_sub(scale));
            if digits > allowed {
                return Some(format!(
                    "number {raw} has {digits} digits before the point, more than the column's NUMBER({precision},{scale}) holds ({allowed})"
                ));
            }
        }
        None
    }
}

/// Digits before the point of a JSON number's text, exponent applied (`1.5e3` has 4; `0.25` has 0).
fn integer_digits(raw: &str) -> u64 {
    let unsigned = raw.trim_start_matches('-');
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (
            &unsigned[..at],
            unsigned[at + 1..].parse::<i64>().unwrap_or(0),
        ),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = whole.chars().chain(fraction.chars()).collect();
    let leading_zeros = digits.chars().take_while(|&c| c == '0').count();
    let significant = &digits[leading_zeros..];
    if significant.is_empty() {
        return 0;
    }
    // The point sits after `whole.len()` digits, moved by the exponent; leading zeros do not count.
    let point = i64::try_from(whole.len()).unwrap_or(i64::MAX) + exponent
        - i64::try_from(leading_zeros).unwrap_or(0);
    u64::try_from(point.max(0)).unwrap_or(0)
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(max) = self.max_chars {
            parts.push(format!("VARCHAR({max})"));
        }
        if let Some((p, s)) = self.number {
            parts.push(format!("NUMBER({p},{s})"));
        }
        if self.not_null {
            parts.push("NOT NULL".to_owned());
        }
        f.write_str(&parts.join(" "))
    }
}

/// The constraints of a table's columns, by column name; empty for a table that has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints(Vec<(Box<str>, Constraint)>);

impl Constraints {
    /// No constraint.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a column's constraint.
    pub fn insert(&mut self, column: &str, constraint: Constraint) {
        self.0.push((column.into(), constraint));
    }

    /// The constraint of `column`, if it has one.
    #[must_use]
    pub fn get(&self, column: &str) -> Option<&Constraint> {
        self.0.iter().find(|(c, _)| &**c == column).map(|(_, k)| k)
    }

    /// Whether no column has a constraint.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Columns that take no nulls.
    pub fn not_null(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter(|(_, k)| k.not_null).map(|(c, _)| &**c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_limits_that_can_bind_are_kept() {
        assert_eq!(Constraint::from_snowflake("VARCHAR(16777216)", true), None);
        assert_eq!(Constraint::from_snowflake("NUMBER(38,0)", true), None);
        assert_eq!(Constraint::from_snowflake("FLOAT", true), None);
        assert_eq!(
            Constraint::from_snowflake("VARCHAR(16)", true),
            Some(Constraint {
                max_chars: Some(16),
                ..Constraint::default()
            })
        );
        assert_eq!(
            Constraint::from_snowflake("NUMBER(5,2)", true).and_then(|c| c.number),
            Some((5, 2))
        );
        assert_eq!(
            Constraint::from_snowflake("VARIANT", false),
            Some(Constraint {
                not_null: true,
                ..Constraint::default()
            })
        );
    }

    #[test]
    fn values_too_long_or_out_of_range_are_named() {
        let text = Constraint::from_snowflake("VARCHAR(3)", true).unwrap();
        assert_eq!(text.violation(r#""abc""#), None);
        assert_eq!(text.violation(r#""été""#), None, "characters, not bytes");
        assert!(text.violation(r#""abcd""#).unwrap().contains("VARCHAR(3)"));
        let number = Constraint::from_snowflake("NUMBER(5,2)", true).unwrap();
        assert_eq!(number.violation("999.999"), None, "the fraction is rounded");
        assert_eq!(number.violation("-123"), None);
        assert!(number.violation("1234").is_some());
        assert!(number.violation("1.5e3").is_some());
        assert_eq!(number.violation("0.0005"), None);
        assert_eq!(number.violation("12e-5"), None);
    }

    #[test]
    fn integer_digits_follow_the_exponent() {
        for (raw, digits) in [
            ("0", 0),
            ("7", 1),
            ("-42.5", 2),
            ("0.25", 0),
            ("1.5e3", 4),
            ("15e-1", 1),
            ("007", 1),
        ] {
            assert_eq!(integer_digits(raw), digits, "{raw}");
        }
    }
}
