//! PostgreSQL's text output for the types whose Arrow rendering differs from it: floats
//! (`1` not `1.0`, `Infinity`, `1e+20`), timestamps (fraction trimmed, `timestamptz` in the
//! session's time zone, BC years), times, dates and intervals.
//!
//! Drivers parse these strings (JDBC rejects `inf`; psycopg reads `+00` offsets), so the
//! wire's text format and `COPY ... TO` both go through here. The rules are PostgreSQL
//! 15's `float8out`/`float4out` (shortest round-trip digits; exponent form below 1e-4
//! and from 1e15, or 1e6 for float4), `EncodeDateTime` (ISO DateStyle) and
//! `EncodeInterval` (IntervalStyle postgres).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::array::timezone::Tz;
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
    DurationSecondType, Float32Type, Float64Type, IntervalDayTimeType, IntervalMonthDayNanoType,
    IntervalUnit, IntervalYearMonthType, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// Digits a float8 shows before PostgreSQL switches to exponent form (`DBL_DIG`).
const FLOAT8_DIGITS: i32 = 15;
/// The same for float4 (`FLT_DIG`).
const FLOAT4_DIGITS: i32 = 6;

/// Whether PostgreSQL prints this type differently from the Arrow/pgwire default.
pub fn needs_pg_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Float32
            | DataType::Float64
            | DataType::Timestamp(..)
            | DataType::Date32
            | DataType::Date64
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Interval(_)
            | DataType::Duration(_)
    )
}

/// The column as PostgreSQL text (nulls stay null). `zone` is the session's `TimeZone`,
/// in which `timestamptz` values are shown. Types that [`needs_pg_text`] rejects are
/// returned unchanged.
pub fn to_pg_text(array: &ArrayRef, zone: &Tz) -> ArrayRef {
    let text = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        let mut out = StringBuilder::with_capacity(array.len(), array.len() * 16);
        for i in 0..array.len() {
            if array.is_null(i) {
                out.append_null();
            } else {
                out.append_value(f(i));
            }
        }
        Arc::new(out.finish()) as ArrayRef
    };
    match array.data_type() {
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            text(&|i| float8(a.value(i)))
        }
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            text(&|i| float4(a.value(i)))
        }
        DataType::Timestamp(unit, tz) => {
            let micros = timestamp_micros(array, unit);
            match tz {
                Some(_) => text(&|i| timestamptz(micros(i), zone)),
                None => text(&|i| timestamp(micros(i))),
            }
        }
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            text(&|i| date(a.value(i) as i64))
        }
        DataType::Date64 => {
            let a = array.as_primitive::<Date64Type>();
            text(&|i| date(a.value(i).div_euclid(86_400_000)))
        }
        DataType::Time32(TimeUnit::Second) => {
            let a = array.as_primitive::<Time32SecondType>();
            text(&|i| time(a.value(i) as i64 * MICROS_PER_SECOND))
        }
        DataType::Time32(_) => {
            let a = array.as_primitive::<Time32MillisecondType>();
            text(&|i| time(a.value(i) as i64 * 1000))
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let a = array.as_primitive::<Time64MicrosecondType>();
            text(&|i| time(a.value(i)))
        }
        DataType::Time64(_) => {
            let a = array.as_primitive::<Time64NanosecondType>();
            text(&|i| time(nanos_to_micros(a.value(i))))
        }
        DataType::Interval(IntervalUnit::YearMonth) => {
            let a = array.as_primitive::<IntervalYearMonthType>();
            text(&|i| interval(a.value(i), 0, 0))
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let a = array.as_primitive::<IntervalDayTimeType>();
            text(&|i| {
                let v = a.value(i);
                interval(0, v.days, v.milliseconds as i64 * 1000)
            })
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let a = array.as_primitive::<IntervalMonthDayNanoType>();
            text(&|i| {
                let v = a.value(i);
                interval(v.months, v.days, nanos_to_micros(v.nanoseconds))
            })
        }
        DataType::Duration(unit) => {
            let micros: Box<dyn Fn(usize) -> i64> = match unit {
                TimeUnit::Second => {
                    let a = array.as_primitive::<DurationSecondType>().clone();
                    Box::new(move |i| a.value(i).saturating_mul(MICROS_PER_SECOND))
                }
                TimeUnit::Millisecond => {
                    let a = array.as_primitive::<DurationMillisecondType>().clone();
                    Box::new(move |i| a.value(i).saturating_mul(1000))
                }
                TimeUnit::Microsecond => {
                    let a = array.as_primitive::<DurationMicrosecondType>().clone();
                    Box::new(move |i| a.value(i))
                }
                TimeUnit::Nanosecond => {
                    let a = array.as_primitive::<DurationNanosecondType>().clone();
                    Box::new(move |i| nanos_to_micros(a.value(i)))
                }
            };
            // A duration is what subtracting timestamps gives; PostgreSQL shows that as
            // days and time (justify_hours), e.g. `63 days 15:00:00`.
            text(&|i| {
                let us = micros(i);
                interval(0, (us / MICROS_PER_DAY) as i32, us % MICROS_PER_DAY)
            })
        }
        _ => array.clone(),
    }
}

fn timestamp_micros<'a>(array: &'a ArrayRef, unit: &TimeUnit) -> Box<dyn Fn(usize) -> i64 + 'a> {
    match unit {
        TimeUnit::Second => {
            let a = array.as_primitive::<TimestampSecondType>();
            Box::new(move |i| a.value(i).saturating_mul(MICROS_PER_SECOND))
        }
        TimeUnit::Millisecond => {
            let a = array.as_primitive::<TimestampMillisecondType>();
            Box::new(move |i| a.value(i).saturating_mul(1000))
        }
        TimeUnit::Microsecond => {
            let a = array.as_primitive::<TimestampMicrosecondType>();
            Box::new(move |i| a.value(i))
        }
        TimeUnit::Nanosecond => {
            let a = array.as_primitive::<TimestampNanosecondType>();
            Box::new(move |i| nanos_to_micros(a.value(i)))
        }
    }
}

/// PostgreSQL keeps microseconds; nanoseconds round to the nearest (half to even).
fn nanos_to_micros(ns: i64) -> i64 {
    let (q, r) = (ns.div_euclid(1000), ns.rem_euclid(1000));
    if r > 500 || (r == 500 && q % 2 != 0) {
        q + 1
    } else {
        q
    }
}

/// `float8out`: shortest round-trip digits, exponent form when the decimal exponent is
/// below -4 or at least `digits`.
fn float_text(v: f64, shortest: String, digits: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    // `shortest` is Rust's `{:e}`: `-1.2345e-7`, `1e15`, `0e0`.
    let (mantissa, exponent) = shortest.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits_str: String = mantissa.chars().filter(|c| *c != '.').collect();
    if v == 0.0 {
        return format!("{sign}0");
    }
    if exponent < -4 || exponent >= digits {
        let (first, rest) = digits_str.split_at(1);
        let dot = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}e{exp_sign}{:02}", exponent.abs());
    }
    if exponent < 0 {
        let zeros = "0".repeat((-exponent - 1) as usize);
        return format!("{sign}0.{zeros}{digits_str}");
    }
    let int_len = exponent as usize + 1;
    if digits_str.len() <= int_len {
        format!("{sign}{digits_str}{}", "0".repeat(int_len - digits_str.len()))
    } else {
        format!("{sign}{}.{}", &digits_str[..int_len], &digits_str[int_len..])
    }
}

pub fn float8(v: f64) -> String {
    float_text(v, format!("{v:e}"), FLOAT8_DIGITS)
}

pub fn float4(v: f32) -> String {
    float_text(v as f64, format!("{v:e}"), FLOAT4_DIGITS)
}

/// `YYYY-MM-DD`, years before 1 as `YYYY-MM-DD BC` (the era goes at the very end).
fn date_part(d: NaiveDate) -> (String, bool) {
    let year = d.year();
    let bc = year <= 0;
    let shown = if bc { 1 - year } else { year };
    (format!("{shown:04}-{:02}-{:02}", d.month(), d.day()), bc)
}

fn era(bc: bool) -> &'static str {
    if bc {
        " BC"
    } else {
        ""
    }
}

/// `HH:MM:SS` plus the fraction without trailing zeros.
fn clock(hour: u32, minute: u32, second: u32, micros: u32) -> String {
    let mut s = format!("{hour:02}:{minute:02}:{second:02}");
    if micros != 0 {
        let frac = format!("{micros:06}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s
}

fn naive(micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc())
}

pub fn timestamp(micros: i64) -> String {
    let Some(t) = naive(micros) else { return micros.to_string() };
    let (day, bc) = date_part(t.date());
    format!("{day} {}{}", clock(t.hour(), t.minute(), t.second(), t.nanosecond() / 1000), era(bc))
}

pub fn timestamptz(micros: i64, zone: &Tz) -> String {
    let Some(utc) = DateTime::from_timestamp_micros(micros) else { return micros.to_string() };
    let local = zone.from_utc_datetime(&utc.naive_utc());
    let offset = local.offset().fix().local_minus_utc();
    let t = local.naive_local();
    let (day, bc) = date_part(t.date());
    format!("{day} {}{}{}", clock(t.hour(), t.minute(), t.second(), t.nanosecond() / 1000), utc_offset(offset), era(bc))
}

/// `+00`, `+05:30`, `-03:30`, `+00:19:32`.
fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    match (m, sec) {
        (0, 0) => format!("{sign}{h:02}"),
        (_, 0) => format!("{sign}{h:02}:{m:02}"),
        _ => format!("{sign}{h:02}:{m:02}:{sec:02}"),
    }
}

pub fn date(days_since_epoch: i64) -> String {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    match epoch.checked_add_signed(chrono::TimeDelta::days(days_since_epoch)) {
        Some(d) => {
            let (day, bc) = date_part(d);
            format!("{day}{}", era(bc))
        }
        None => days_since_epoch.to_string(),
    }
}

pub fn time(micros: i64) -> String {
    let us = micros.rem_euclid(MICROS_PER_DAY);
    let secs = us / MICROS_PER_SECOND;
    clock((secs / 3600) as u32, (secs / 60 % 60) as u32, (secs % 60) as u32, (us % MICROS_PER_SECOND) as u32)
}

/// `EncodeInterval` with IntervalStyle `postgres`: `1 year 2 mons 3 days 04:05:06.5`,
/// `-1 days +02:00:00`, `00:00:00`.
pub fn interval(months: i32, days: i32, micros: i64) -> String {
    let mut out = String::new();
    let mut negative_before = false;
    let mut part = |value: i64, unit: &str, out: &mut String| {
        if value == 0 {
            return;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let plus = if negative_before && value > 0 { "+" } else { "" };
        let plural = if value == 1 { "" } else { "s" };
        out.push_str(&format!("{plus}{value} {unit}{plural}"));
        negative_before |= value < 0;
    };
    part((months / 12) as i64, "year", &mut out);
    part((months % 12) as i64, "mon", &mut out);
    part(days as i64, "day", &mut out);
    if out.is_empty() || micros != 0 {
        if !out.is_empty() {
            out.push(' ');
        }
        let sign = if micros < 0 {
            "-"
        } else if negative_before {
            "+"
        } else {
            ""
        };
        let us = micros.unsigned_abs();
        let secs = us / MICROS_PER_SECOND as u64;
        let hours = secs / 3600;
        let rest = clock(0, (secs / 60 % 60) as u32, (secs % 60) as u32, (us % MICROS_PER_SECOND as u64) as u32);
        // `clock` printed `00:` for the hour; hours may exceed 24 here.
        out.push_str(&format!("{sign}{hours:02}{}", &rest[2..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray, TimestampMicrosecondArray};

    fn as_strings(array: &ArrayRef) -> Option<&StringArray> {
        array.as_any().downcast_ref::<StringArray>()
    }

    // Every expected string below was printed by PostgreSQL 15.

    #[test]
    fn floats_like_float8out() {
        let cases: [(f64, &str); 14] = [
            (1e15, "1e+15"),
            (1e14, "100000000000000"),
            (123456789012345.0, "123456789012345"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.5, "1.5"),
            (100.0, "100"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
            (-0.0, "-0"),
            (1.2345678901234567e17, "1.2345678901234566e+17"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-2.5e-6, "-2.5e-06"),
        ];
        for (v, want) in cases {
            assert_eq!(float8(v), want, "{v:?}");
        }
        let cases4: [(f32, &str); 6] =
            [(1e6, "1e+06"), (123456.0, "123456"), (1e-5, "1e-05"), (0.1, "0.1"), (1234567.0, "1.234567e+06"), (3.4e38, "3.4e+38")];
        for (v, want) in cases4 {
            assert_eq!(float4(v), want, "{v:?}");
        }
    }

    #[test]
    fn datetimes_like_encode_date_time() {
        let micros = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap().and_utc().timestamp_micros();
        assert_eq!(timestamp(micros("2024-01-01 10:00:00.5")), "2024-01-01 10:00:00.5");
        assert_eq!(timestamp(micros("2024-01-01 10:00:00")), "2024-01-01 10:00:00");
        assert_eq!(timestamp(micros("-0043-03-15 12:00:00")), "0044-03-15 12:00:00 BC");
        let at = micros("2024-01-01 10:00:00");
        assert_eq!(timestamptz(at, &"UTC".parse().unwrap()), "2024-01-01 10:00:00+00");
        assert_eq!(timestamptz(at, &"Asia/Kolkata".parse().unwrap()), "2024-01-01 15:30:00+05:30");
        assert_eq!(timestamptz(at, &"America/St_Johns".parse().unwrap()), "2024-01-01 06:30:00-03:30");
        // Local mean time offsets have seconds (Amsterdam in 1900 was +00:19:32).
        assert_eq!(utc_offset(19 * 60 + 32), "+00:19:32");
        assert_eq!(timestamptz(micros("-0043-03-15 12:00:00"), &"UTC".parse().unwrap()), "0044-03-15 12:00:00+00 BC");
        assert_eq!(date(-719163), "0001-12-31 BC");
        assert_eq!(date(2932897), "10000-01-01");
        assert_eq!(time(((12 * 60 + 30) * 60) * MICROS_PER_SECOND + 250_000), "12:30:00.25");
        assert_eq!(nanos_to_micros(1500), 2);
        assert_eq!(nanos_to_micros(2500), 2);
        assert_eq!(nanos_to_micros(2501), 3);
    }

    #[test]
    fn intervals_like_encode_interval() {
        let h = 3600 * MICROS_PER_SECOND;
        assert_eq!(interval(0, 63, 15 * h), "63 days 15:00:00");
        assert_eq!(interval(14, 3, 4 * h + 5 * 60 * MICROS_PER_SECOND + 6_500_000), "1 year 2 mons 3 days 04:05:06.5");
        assert_eq!(interval(0, -1, 2 * h), "-1 days +02:00:00");
        assert_eq!(interval(0, 1, -2 * h), "1 day -02:00:00");
        assert_eq!(interval(0, 0, 0), "00:00:00");
        assert_eq!(interval(-14, 0, 0), "-1 years -2 mons");
        assert_eq!(interval(1, 0, 0), "1 mon");
        assert_eq!(interval(0, 0, 1527 * h), "1527:00:00");
        assert_eq!(interval(0, 0, -1_500_000), "-00:00:01.5");
    }

    #[test]
    fn columns_keep_nulls() {
        let a: ArrayRef = Arc::new(Float64Array::from(vec![Some(1.0), None]));
        let utc: Tz = "UTC".parse().unwrap();
        let text = to_pg_text(&a, &utc);
        let s = as_strings(&text).unwrap();
        assert_eq!(s.value(0), "1");
        assert!(s.is_null(1));
        let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC"));
        assert_eq!(as_strings(&to_pg_text(&ts, &"+08:00".parse().unwrap())).unwrap().value(0), "1970-01-01 08:00:00+08");
    }
}
