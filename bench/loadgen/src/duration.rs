//! Durations on the command line, written as the server's options take them.

use std::time::Duration;

/// Units, longest suffix first so that `ms` is not read as `m`.
const UNITS: [(&str, f64); 5] = [
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3_600.0),
    ("d", 86_400.0),
];

/// Parses `500ms`, `21.5s`, `2m`, `1h`, `1d` or a bare number of seconds (`30`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let (number, unit_secs) = UNITS
        .iter()
        .find_map(|&(unit, secs)| trimmed.strip_suffix(unit).map(|number| (number, secs)))
        .unwrap_or((trimmed, 1.0));
    number
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|value| Duration::try_from_secs_f64(value * unit_secs).ok())
        .ok_or_else(|| {
            format!(
                "invalid duration {text:?}; accepted: a non-negative number of seconds, or a \
                 number with a unit ms, s, m, h or d (e.g. 500ms, 30s, 2m)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        let cases = [
            ("50ms", Duration::from_millis(50)),
            ("0s", Duration::ZERO),
            ("21.37s", Duration::from_secs_f64(21.37)),
            ("3600s", Duration::from_secs(3_600)),
            ("30", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3_600)),
            (" 1d ", Duration::from_secs(86_400)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_accepted_forms() {
        for text in ["", "s", "-1s", "5 minutes", "1w", "NaNs", "infs"] {
            let error = parse_duration(text).expect_err(text);
            assert!(error.contains("accepted: a non-negative number"), "{error}");
        }
    }
}
