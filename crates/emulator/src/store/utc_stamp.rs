//! The timestamp shape clients nearly always send and Snowflake hands back, RFC 3339 in UTC
//! (`2024-05-12T04:36:00.123Z`), read and written by hand. The `time` crate's general RFC 3339 parser and
//! formatter cost as much as the rest of an insert row's validation; these give the same answers for
//! this one shape and decline anything else, which then takes the general path.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// The parts of a `YYYY-MM-DDTHH:MM:SS[.f]Z` text, checked to make a valid date and time.
struct Parts {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
}

/// Splits `s` if it has the shape (1 to 9 fraction digits) and names a real date and time (seconds
/// below 60). Checked by hand: the `time` crate's constructors cost more than the rest of a value.
fn parts(s: &str) -> Option<Parts> {
    let b = s.as_bytes();
    let (head, frac) = (b.get(..19)?, b.get(19..b.len().checked_sub(1)?)?);
    if b.last() != Some(&b'Z')
        || head[4] != b'-'
        || head[7] != b'-'
        || head[10] != b'T'
        || head[13] != b':'
        || head[16] != b':'
    {
        return None;
    }
    let nanos = match frac {
        [] => 0,
        [b'.', f @ ..] if (1..=9).contains(&f.len()) => {
            // Scale the fraction to nanoseconds: `.5` is 500 000 000.
            digits(f)? * 10u32.pow(u32::try_from(9 - f.len()).ok()?)
        }
        _ => return None,
    };
    let p = Parts {
        year: digits(&head[0..4])?,
        month: digits(&head[5..7])?,
        day: digits(&head[8..10])?,
        hour: digits(&head[11..13])?,
        minute: digits(&head[14..16])?,
        second: digits(&head[17..19])?,
        nanos,
    };
    let valid = (1..=12).contains(&p.month)
        && (1..=days_in_month(p.year, p.month)).contains(&p.day)
        && p.hour < 24
        && p.minute < 60
        && p.second < 60;
    valid.then_some(p)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.f]Z` (1 to 9 fraction digits, valid date, seconds below 60), exactly as
/// `OffsetDateTime::parse(s, &Rfc3339)` reads it; `None` for any other text.
pub(crate) fn parse(s: &str) -> Option<OffsetDateTime> {
    let p = parts(s)?;
    let date = Date::from_calendar_date(
        i32::try_from(p.year).ok()?,
        Month::try_from(u8::try_from(p.month).ok()?).ok()?,
        u8::try_from(p.day).ok()?,
    )
    .ok()?;
    let time = Time::from_hms_nano(
        u8::try_from(p.hour).ok()?,
        u8::try_from(p.minute).ok()?,
        u8::try_from(p.second).ok()?,
        p.nanos,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// What formatting [`parse`]'s answer gives, without parsing or formatting: the text of `s` up to its
/// last non-zero fraction digit (or to the seconds), to which TIMESTAMP_TZ and _LTZ add `Z` and _NTZ
/// nothing. `None` where [`parse`] declines.
pub(crate) fn canonical_prefix(s: &str) -> Option<&str> {
    parts(s)?;
    // `parts` checked the shape: 19 characters of date and time, an optional fraction, `Z`.
    let frac = s.get(19..s.len() - 1)?;
    let kept = frac.trim_end_matches('0');
    Some(if kept.len() <= 1 {
        &s[..19]
    } else {
        &s[..19 + kept.len()]
    })
}

/// The value of a run of ASCII digits (at most 9, so no overflow).
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// Writes `dt` as `dt.format(&Rfc3339)` does when it is in UTC and its year has four digits;
/// `None` otherwise.
pub(crate) fn format(dt: OffsetDateTime) -> Option<String> {
    let year = u16::try_from(dt.year()).ok().filter(|y| *y < 10_000)?;
    if !dt.offset().is_utc() {
        return None;
    }
    let mut out = String::with_capacity(30);
    push_two(&mut out, year / 100);
    push_two(&mut out, year % 100);
    out.push('-');
    push_two(&mut out, u8::from(dt.month()).into());
    out.push('-');
    push_two(&mut out, dt.day().into());
    out.push('T');
    push_two(&mut out, dt.hour().into());
    out.push(':');
    push_two(&mut out, dt.minute().into());
    out.push(':');
    push_two(&mut out, dt.second().into());
    let mut nanos = dt.nanosecond();
    if nanos != 0 {
        // The fraction's nine digits, without their trailing zeros.
        let mut digits = [b'0'; 9];
        for d in digits.iter_mut().rev() {
            *d = b'0' + u8::try_from(nanos % 10).unwrap_or(0);
            nanos /= 10;
        }
        let kept = digits.iter().rposition(|d| *d != b'0').map_or(0, |i| i + 1);
        out.push('.');
        out.extend(digits[..kept].iter().map(|d| char::from(*d)));
    }
    out.push('Z');
    Some(out)
}

/// Pushes `n` (below 100) as two digits.
fn push_two(out: &mut String, n: u16) {
    let [tens, ones] =
        [n / 10 % 10, n % 10].map(|d| char::from(b'0' + u8::try_from(d).unwrap_or(0)));
    out.push(tens);
    out.push(ones);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::{UtcOffset, format_description::well_known::Rfc3339};

    use super::*;

    fn general(s: &str) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(s, &Rfc3339).ok()
    }

    #[test]
    fn reads_and_writes_like_the_general_path() {
        for s in [
            "2024-05-12T04:36:00.000Z",
            "2024-05-12T04:36:00Z",
            "2024-02-29T23:59:59.999999999Z",
            "0000-01-01T00:00:00.1Z",
            "9999-12-31T23:59:59.05Z",
        ] {
            let dt = parse(s).unwrap();
            assert_eq!(Some(dt), general(s), "{s}");
            assert_eq!(format(dt), dt.format(&Rfc3339).ok(), "{s}");
        }
        // Declined: other shapes, which the general path decides on.
        for s in [
            "2023-02-29T00:00:00Z",
            "2024-05-12T04:36:60Z",
            "2024-05-12t04:36:00Z",
            "2024-05-12T04:36:00z",
            "2024-05-12T04:36:00.Z",
            "2024-05-12T04:36:00.1234567890Z",
            "2024-05-12T04:36:00+00:00",
            "2024-05-12 04:36:00Z",
            "+2024-05-12T04:36:00Z",
            "2024-05-12T04:36:0aZ",
            "2024-5-12T04:36:00Z",
            "2024-05-12T04:36Z",
            "Z",
            "",
            "２０２４-05-12T04:36:00Z",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
        let offset = general("2024-05-12T04:36:00+02:00").unwrap();
        assert_eq!(format(offset), None);
        // Years before 0 (the general formatter refuses them; the caller falls back).
        let early = general("2024-05-12T04:36:00Z")
            .unwrap()
            .replace_year(-1)
            .unwrap();
        assert_eq!(format(early), None);
        assert!(early.format(&Rfc3339).is_err());
    }

    #[test]
    fn canonical_prefixes() {
        for (s, want) in [
            ("2024-05-12T04:36:00.000Z", Some("2024-05-12T04:36:00")),
            ("2024-05-12T04:36:00Z", Some("2024-05-12T04:36:00")),
            ("2024-05-12T04:36:00.120Z", Some("2024-05-12T04:36:00.12")),
            (
                "2024-05-12T04:36:00.000000001Z",
                Some("2024-05-12T04:36:00.000000001"),
            ),
            ("2024-05-12T04:36:00.0Z", Some("2024-05-12T04:36:00")),
            ("2024-05-12T04:36:00+00:00", None),
            ("2023-02-29T04:36:00Z", None),
        ] {
            assert_eq!(canonical_prefix(s), want, "{s}");
        }
    }

    #[test]
    fn dates_and_times_are_checked_as_the_time_crate_checks_them() {
        for year in [
            0, 1, 4, 100, 200, 400, 1900, 1999, 2000, 2023, 2024, 2100, 9996, 9999,
        ] {
            for month in 0..=13 {
                for day in 0..=32 {
                    let text = format!("{year:04}-{month:02}-{day:02}T00:00:00Z");
                    let by_time = Month::try_from(month)
                        .ok()
                        .and_then(|m| Date::from_calendar_date(year, m, day).ok());
                    assert_eq!(parts(&text).is_some(), by_time.is_some(), "{text}");
                }
            }
        }
        for (h, m, s) in [
            (23, 59, 59),
            (24, 0, 0),
            (0, 60, 0),
            (0, 0, 60),
            (99, 99, 99),
        ] {
            let text = format!("2024-01-01T{h:02}:{m:02}:{s:02}Z");
            let by_time = Time::from_hms(h, m, s).ok();
            assert_eq!(parts(&text).is_some(), by_time.is_some(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn canonical_prefix_is_the_formatted_value(
            s in "[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{1,9})?Z"
        ) {
            match (canonical_prefix(&s), parse(&s)) {
                (Some(prefix), Some(dt)) => {
                    prop_assert_eq!(format!("{prefix}Z"), dt.format(&Rfc3339).unwrap());
                }
                (None, None) => {}
                (prefix, dt) => prop_assert!(false, "{:?} but {:?}", prefix, dt),
            }
        }

        #[test]
        fn agrees_with_the_general_parser(
            s in "[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,10})?[Zz+]"
        ) {
            if let Some(dt) = parse(&s) {
                prop_assert_eq!(Some(dt), general(&s));
            }
        }

        #[test]
        fn writes_like_the_general_formatter(
            secs in -62_167_219_200i64..253_402_300_800, nanos in 0u32..1_000_000_000, zeros in 0u32..9
        ) {
            // Nanoseconds with some trailing zeros, as real timestamps have.
            let nanos = nanos / 10u32.pow(zeros) * 10u32.pow(zeros);
            let dt = OffsetDateTime::from_unix_timestamp(secs).unwrap().replace_nanosecond(nanos).unwrap();
            prop_assert_eq!(format(dt), dt.format(&Rfc3339).ok());
            let text = dt.format(&Rfc3339).unwrap();
            prop_assert_eq!(parse(&text), Some(dt));
            prop_assert_eq!(format(dt.to_offset(UtcOffset::from_hms(1, 0, 0).unwrap())), None);
        }
    }
}
