//! Plain scalars to JSON values the way the `yaml` npm package (Backstage's reader) resolves
//! them: YAML 1.2's core schema by default, its YAML 1.1 schema after a `%YAML 1.1` directive.
//! Quoted and block scalars are always strings; numbers come out as JavaScript numbers would.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Number, Value};

/// Which typing rules a document follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// YAML 1.2 core schema (the default).
    Core,
    /// YAML 1.1 (`yes`/`no`/`on`/`off`, `0123` octal, `_` in numbers, sexagesimal, timestamps).
    Yaml11,
}

/// The explicit core tags a scalar may carry (`!!str`, `!!int`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreTag {
    Str,
    Null,
    Bool,
    Int,
    Float,
}

impl CoreTag {
    pub fn from_suffix(suffix: &str) -> Option<Self> {
        Some(match suffix {
            "str" => Self::Str,
            "null" => Self::Null,
            "bool" => Self::Bool,
            "int" => Self::Int,
            "float" => Self::Float,
            _ => return None,
        })
    }
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the schema's patterns are valid")
}

static NULL: LazyLock<Regex> = LazyLock::new(|| regex(r"^(?:~|[Nn]ull|NULL)?$"));
static BOOL: LazyLock<Regex> = LazyLock::new(|| regex(r"^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$"));
static INT_OCT: LazyLock<Regex> = LazyLock::new(|| regex(r"^0o[0-7]+$"));
static INT: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?[0-9]+$"));
static INT_HEX: LazyLock<Regex> = LazyLock::new(|| regex(r"^0x[0-9a-fA-F]+$"));
static FLOAT_NAN: LazyLock<Regex> = LazyLock::new(|| regex(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$"));
static FLOAT_EXP: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"));
static FLOAT: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$"));

static TRUE_11: LazyLock<Regex> = LazyLock::new(|| regex(r"^(?:Y|y|[Yy]es|YES|[Tt]rue|TRUE|[Oo]n|ON)$"));
static FALSE_11: LazyLock<Regex> = LazyLock::new(|| regex(r"^(?:N|n|[Nn]o|NO|[Ff]alse|FALSE|[Oo]ff|OFF)$"));
static INT_BIN_11: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?0b[0-1_]+$"));
static INT_OCT_11: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?0[0-7_]+$"));
static INT_11: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?[0-9][0-9_]*$"));
static INT_HEX_11: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?0x[0-9a-fA-F_]+$"));
static FLOAT_EXP_11: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"));
static FLOAT_11: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*$"));
static SEXAGESIMAL_11: LazyLock<Regex> = LazyLock::new(|| regex(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$"));
static TIMESTAMP_11: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:(?:t|T|[ \t]+)([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(\.[0-9]+)?(?:[ \t]*(Z|[-+][012]?[0-9](?::[0-9]{2})?))?)?$",
    )
});

/// The JSON value of a plain (unquoted, untagged) scalar.
pub fn plain(text: &str, version: Version) -> Value {
    match version {
        Version::Core => core(text, None).unwrap_or_else(|| Value::String(text.to_owned())),
        Version::Yaml11 => yaml11(text, None).unwrap_or_else(|| Value::String(text.to_owned())),
    }
}

/// The JSON value of a scalar with an explicit core tag: only that type's forms are tried; a
/// value that fits none stays a string (the `yaml` package warns and keeps the text).
pub fn tagged(text: &str, tag: CoreTag, version: Version) -> Value {
    let resolved = match (tag, version) {
        (CoreTag::Str, _) => None,
        (_, Version::Core) => core(text, Some(tag)),
        (_, Version::Yaml11) => yaml11(text, Some(tag)),
    };
    resolved.unwrap_or_else(|| Value::String(text.to_owned()))
}

fn core(text: &str, only: Option<CoreTag>) -> Option<Value> {
    let wants = |tag| only.is_none_or(|only| only == tag);
    if wants(CoreTag::Null) && NULL.is_match(text) {
        return Some(Value::Null);
    }
    if wants(CoreTag::Bool) && BOOL.is_match(text) {
        return Some(Value::Bool(text.eq_ignore_ascii_case("true")));
    }
    if wants(CoreTag::Int) {
        if INT_OCT.is_match(text) {
            return Some(integer_radix(&text[2..], 8, false));
        }
        if INT.is_match(text) {
            return Some(decimal_integer(text));
        }
        if INT_HEX.is_match(text) {
            return Some(integer_radix(&text[2..], 16, false));
        }
    }
    if wants(CoreTag::Float) {
        if FLOAT_NAN.is_match(text) {
            // NaN and ±Infinity have no JSON form: JSON.stringify writes null.
            return Some(Value::Null);
        }
        if FLOAT_EXP.is_match(text) || FLOAT.is_match(text) {
            return Some(float(text));
        }
    }
    None
}

fn yaml11(text: &str, only: Option<CoreTag>) -> Option<Value> {
    let wants = |tag| only.is_none_or(|only| only == tag);
    if wants(CoreTag::Null) && NULL.is_match(text) {
        return Some(Value::Null);
    }
    if wants(CoreTag::Bool) {
        if TRUE_11.is_match(text) {
            return Some(Value::Bool(true));
        }
        if FALSE_11.is_match(text) {
            return Some(Value::Bool(false));
        }
    }
    if wants(CoreTag::Int) {
        let (negative, digits) = sign(&text.replace('_', ""));
        if INT_BIN_11.is_match(text) {
            return Some(integer_radix(&digits[2..], 2, negative));
        }
        if INT_OCT_11.is_match(text) {
            return Some(integer_radix(&digits[1..], 8, negative));
        }
        if INT_11.is_match(text) {
            return Some(decimal_integer(&text.replace('_', "")));
        }
        if INT_HEX_11.is_match(text) {
            return Some(integer_radix(&digits[2..], 16, negative));
        }
    }
    if wants(CoreTag::Float) {
        if FLOAT_NAN.is_match(text) {
            return Some(Value::Null);
        }
        if FLOAT_EXP_11.is_match(text) || FLOAT_11.is_match(text) {
            return Some(float(&text.replace('_', "")));
        }
    }
    if only.is_none() && SEXAGESIMAL_11.is_match(text) {
        return Some(sexagesimal(&text.replace('_', "")));
    }
    if only.is_none() {
        if let Some(timestamp) = timestamp(text) {
            return Some(Value::String(timestamp));
        }
    }
    None
}

fn sign(text: &str) -> (bool, String) {
    match text.as_bytes().first() {
        Some(b'-') => (true, text[1..].to_owned()),
        Some(b'+') => (false, text[1..].to_owned()),
        _ => (false, text.to_owned()),
    }
}

/// A JavaScript number from a decimal integer: exact up to 2^53, then rounded like `Number()`.
fn decimal_integer(text: &str) -> Value {
    match text.parse::<i64>() {
        Ok(n) if n.unsigned_abs() <= 1 << 53 => Value::Number(n.into()),
        _ => number(text.parse::<f64>().unwrap_or(f64::NAN)),
    }
}

fn integer_radix(digits: &str, radix: u32, negative: bool) -> Value {
    let value =
        digits.chars().filter_map(|c| c.to_digit(radix)).fold(0f64, |acc, d| acc * f64::from(radix) + f64::from(d));
    number(if negative { -value } else { value })
}

fn float(text: &str) -> Value {
    number(text.parse::<f64>().unwrap_or(f64::NAN))
}

fn sexagesimal(text: &str) -> Value {
    let (negative, rest) = sign(text);
    let value = rest.split(':').fold(0f64, |acc, part| acc * 60.0 + part.parse::<f64>().unwrap_or(f64::NAN));
    number(if negative { -value } else { value })
}

/// A number as `JSON.stringify` writes it: integral values without a fraction, NaN and
/// infinities as null.
pub fn number(value: f64) -> Value {
    if !value.is_finite() {
        return Value::Null;
    }
    #[allow(clippy::cast_possible_truncation)]
    if value.fract() == 0.0 && value.abs() <= 9_007_199_254_740_992.0 {
        return Value::Number((value as i64).into());
    }
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// A YAML 1.1 timestamp as JavaScript's `Date#toJSON` writes it (UTC, milliseconds).
fn timestamp(text: &str) -> Option<String> {
    use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
    let caps = TIMESTAMP_11.captures(text)?;
    let part = |i: usize| caps.get(i).map_or("0", |m| m.as_str()).parse::<u32>().ok();
    let year = caps.get(1)?.as_str().parse::<i32>().ok()?;
    let date = NaiveDate::from_ymd_opt(year, part(2)?, part(3)?)?;
    let millis = caps.get(7).map_or(0, |m| {
        let digits: String = m.as_str()[1..].chars().chain(std::iter::repeat('0')).take(3).collect();
        digits.parse::<u32>().unwrap_or(0)
    });
    let time = NaiveTime::from_hms_milli_opt(part(4)?, part(5)?, part(6)?, millis)?;
    let mut at = NaiveDateTime::new(date, time);
    if let Some(zone) = caps.get(8).map(|m| m.as_str()).filter(|z| *z != "Z") {
        let (negative, rest) = sign(zone);
        let (hours, minutes) = rest.split_once(':').unwrap_or((rest.as_str(), "0"));
        let offset = i64::from(hours.parse::<u32>().ok()?) * 60 + i64::from(minutes.parse::<u32>().ok()?);
        let offset = TimeDelta::minutes(if negative { -offset } else { offset });
        at = at.checked_sub_signed(offset)?;
    }
    Some(at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn core_schema_scalars_read_as_javascript_sees_them() {
        let cases = [
            ("", json!(null)),
            ("~", json!(null)),
            ("Null", json!(null)),
            ("true", json!(true)),
            ("FALSE", json!(false)),
            ("yes", json!("yes")),
            ("0123", json!(123)),
            ("-17", json!(-17)),
            ("0o17", json!(15)),
            ("0x1F", json!(31)),
            ("1.0", json!(1)),
            ("1.5", json!(1.5)),
            ("1e3", json!(1000)),
            (".inf", json!(null)),
            ("1_000", json!("1_000")),
            ("12345678901234567890", json!(12_345_678_901_234_567_000.0_f64)),
            ("2001-12-14", json!("2001-12-14")),
        ];
        for (text, expected) in cases {
            assert_eq!(plain(text, Version::Core), expected, "{text:?}");
        }
    }

    #[test]
    fn yaml_1_1_scalars_follow_the_older_rules() {
        let cases = [
            ("yes", json!(true)),
            ("Off", json!(false)),
            ("y", json!(true)),
            ("0123", json!(83)),
            ("1_000", json!(1000)),
            ("0b101", json!(5)),
            ("190:20:30", json!(685_230)),
            ("2001-12-14", json!("2001-12-14T00:00:00.000Z")),
            ("2001-12-14t21:59:43.10-05:00", json!("2001-12-15T02:59:43.100Z")),
            ("hello", json!("hello")),
        ];
        for (text, expected) in cases {
            assert_eq!(plain(text, Version::Yaml11), expected, "{text:?}");
        }
    }

    #[test]
    fn explicit_tags_try_only_their_own_type() {
        assert_eq!(tagged("123", CoreTag::Str, Version::Core), json!("123"));
        assert_eq!(tagged("123", CoreTag::Int, Version::Core), json!(123));
        assert_eq!(tagged("abc", CoreTag::Int, Version::Core), json!("abc"));
        assert_eq!(tagged("true", CoreTag::Null, Version::Core), json!("true"));
    }
}
