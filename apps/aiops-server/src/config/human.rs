//! Durations and switches as people write them: `500ms`, `30s`, `2m`, `24h`, `7d` or a bare
//! number of seconds; `on`/`off`. One syntax for flags, environment variables, the
//! configuration file (through the serde forms below) and the API's query parameters.

use std::time::Duration;

/// Largest duration accepted, so that arithmetic on nanoseconds never overflows.
const MAX_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// Units from the largest down, in milliseconds, for writing a duration back (in hours rather
/// than days: `24h` reads better than `1d`).
const UNITS: [(&str, u128); 3] = [("h", 3_600_000), ("m", 60_000), ("s", 1000)];

/// What [`parse_duration`] and [`parse_millis`] accept, as their errors say it.
const DURATION_ACCEPTED: &str = "a non-negative number of seconds, or a number with a unit ms, \
     s, m, h or d (e.g. 500ms, 30s, 2m, 24h), at most 365d";

/// What [`parse_switch`] accepts, as its error says it.
const SWITCH_ACCEPTED: &str = "on, off, true, false, yes, no, 1, 0";

/// A value written the way people write them that is not one: what was given, and (in the
/// message) what is accepted instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HumanValueError {
    /// Not a duration: no number, an unknown unit, or a duration that is negative, not finite
    /// or longer than 365 days.
    #[error("invalid duration {text:?}; accepted: {accepted}", accepted = DURATION_ACCEPTED)]
    Duration {
        /// The text given, as given.
        text: String,
    },
    /// Not one of the spellings of a switch.
    #[error("invalid switch {text:?}; accepted: {accepted}", accepted = SWITCH_ACCEPTED)]
    Switch {
        /// The text given, as given.
        text: String,
    },
}

impl HumanValueError {
    fn duration(text: &str) -> Self {
        Self::Duration {
            text: text.to_owned(),
        }
    }
}

/// Parses `500ms`, `30s`, `2.5m`, `24h`, `7d`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, HumanValueError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(HumanValueError::duration(text)),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| HumanValueError::duration(text))?;
    seconds(value * scale, text)
}

/// Parses a bare number of milliseconds (`5000`) or a duration with a unit (`5s`): the options
/// whose flags are named `-ms`.
pub fn parse_millis(text: &str) -> Result<Duration, HumanValueError> {
    match text.trim().parse::<f64>() {
        Ok(millis) => seconds(millis / 1000.0, text),
        Err(_) => parse_duration(text),
    }
}

/// Writes `duration` in the largest unit that keeps it whole: `30s`, `2m`, `24h`, `250ms`.
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let millis = duration.as_millis();
    if Duration::from_millis(millis as u64) != duration {
        return format!("{}s", duration.as_secs_f64());
    }
    UNITS
        .iter()
        .find(|(_, size)| millis.is_multiple_of(*size))
        .map(|(unit, size)| format!("{}{unit}", millis / size))
        .unwrap_or_else(|| format!("{millis}ms"))
}

/// Writes a value of the settings tree as people write it: text without quotes, switches
/// as `on`/`off`, an unset option as `none`.
pub fn render_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Bool(true) => "on".to_owned(),
        serde_json::Value::Bool(false) => "off".to_owned(),
        serde_json::Value::Null => "none".to_owned(),
        serde_json::Value::Array(items) if items.is_empty() => "none".to_owned(),
        serde_json::Value::Array(items) => {
            items.iter().map(render_value).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }
}

/// Parses an on/off switch: `on`/`off`, `true`/`false`, `yes`/`no`, `1`/`0`.
pub fn parse_switch(text: &str) -> Result<bool, HumanValueError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(HumanValueError::Switch {
            text: text.to_owned(),
        }),
    }
}

/// `secs` seconds as a duration, if it is one accepted; `text` is what it was read from.
fn seconds(secs: f64, text: &str) -> Result<Duration, HumanValueError> {
    if !secs.is_finite() || !(0.0..=MAX_SECS).contains(&secs) {
        return Err(HumanValueError::duration(text));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Serde form of a [`Duration`] in the configuration file: written back as text with a unit,
/// read from text with a unit or from a bare number of seconds.
pub(crate) mod duration {
    use std::time::Duration;

    use serde::{Deserializer, Serialize, Serializer};

    /// Writes `"30s"`, `"24h"`, `"250ms"`.
    pub(crate) fn serialize<S: Serializer>(value: &Duration, out: S) -> Result<S::Ok, S::Error> {
        super::format_duration(*value).serialize(out)
    }

    /// Reads `"30s"`, `"2m"`, or `30` (seconds).
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Duration, D::Error> {
        input.deserialize_any(super::DurationVisitor {
            bare_unit_secs: 1.0,
        })
    }
}

/// Like [`duration`], for the options named in milliseconds: a bare number is milliseconds.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Writes `"5s"`, `"20ms"`.
    pub(crate) fn serialize<S: Serializer>(value: &Duration, out: S) -> Result<S::Ok, S::Error> {
        super::duration::serialize(value, out)
    }

    /// Reads `"5s"`, `"20ms"`, or `5000` (milliseconds).
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Duration, D::Error> {
        input.deserialize_any(super::DurationVisitor {
            bare_unit_secs: 1e-3,
        })
    }
}

/// Serde form of a switch in the configuration file: `true`/`false`, or any spelling
/// [`parse_switch`] takes (`"on"`, `"off"`, ...); written back as `true`/`false`.
pub(crate) mod switch {
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};
    use serde::{Serialize, Serializer};

    /// Writes `true` or `false`.
    pub(crate) fn serialize<S: Serializer>(value: &bool, out: S) -> Result<S::Ok, S::Error> {
        value.serialize(out)
    }

    /// Reads `true`, `false`, `"on"`, `"off"`, ...
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<bool, D::Error> {
        input.deserialize_any(SwitchVisitor)
    }

    struct SwitchVisitor;

    impl Visitor<'_> for SwitchVisitor {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true, false, \"on\" or \"off\"")
        }

        fn visit_bool<E: de::Error>(self, value: bool) -> Result<bool, E> {
            Ok(value)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<bool, E> {
            super::parse_switch(text).map_err(E::custom)
        }
    }
}

/// Reads a duration from text with a unit, or from a bare number of `bare_unit_secs` seconds.
struct DurationVisitor {
    bare_unit_secs: f64,
}

impl serde::de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = if self.bare_unit_secs == 1.0 {
            "seconds"
        } else {
            "milliseconds"
        };
        write!(f, "a duration such as \"30s\" or a number of {unit}")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
        parse_duration(text).map_err(E::custom)
    }

    fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<Duration, E> {
        seconds(number * self.bare_unit_secs, &number.to_string()).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<Duration, E> {
        self.visit_f64(number as f64)
    }

    fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<Duration, E> {
        self.visit_f64(number as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_bare_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_durations_say_what_is_accepted() {
        for text in ["", "-1s", "NaN", "5 parsecs", "1e400", "400d", "ms"] {
            let error = parse_duration(text).expect_err(text);
            assert_eq!(error, HumanValueError::duration(text));
            assert!(error.to_string().contains("accepted"), "{error}");
        }
    }

    #[test]
    fn messages_name_the_value_and_what_is_accepted() {
        assert_eq!(
            parse_duration("5 parsecs").expect_err("a unit").to_string(),
            "invalid duration \"5 parsecs\"; accepted: a non-negative number of seconds, or a \
             number with a unit ms, s, m, h or d (e.g. 500ms, 30s, 2m, 24h), at most 365d"
        );
        assert_eq!(
            parse_millis("-1").expect_err("negative").to_string(),
            "invalid duration \"-1\"; accepted: a non-negative number of seconds, or a number \
             with a unit ms, s, m, h or d (e.g. 500ms, 30s, 2m, 24h), at most 365d"
        );
        assert_eq!(
            parse_switch("maybe").expect_err("a switch").to_string(),
            "invalid switch \"maybe\"; accepted: on, off, true, false, yes, no, 1, 0"
        );
    }

    #[test]
    fn millisecond_options_take_bare_milliseconds_or_units() {
        assert_eq!(parse_millis("5000"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_millis("20.5"), Ok(Duration::from_micros(20_500)));
        assert_eq!(parse_millis("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_millis("-1").is_err());
    }

    #[test]
    fn durations_are_written_in_the_largest_whole_unit_and_read_back() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(1800), "30m"),
            (Duration::from_secs(86_400), "24h"),
            (Duration::from_micros(1500), "0.0015s"),
        ] {
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration), "{text}");
        }
    }

    #[test]
    fn switches_accept_common_spellings() {
        assert_eq!(parse_switch("OFF"), Ok(false));
        assert_eq!(parse_switch("on"), Ok(true));
        assert!(parse_switch("maybe").is_err());
    }
}
