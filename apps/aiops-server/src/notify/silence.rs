//! Silences and maintenance windows: matchers over an incident's service, endpoint, kind and
//! severity, a start and a mandatory end. A silence holds back notifications only; detection,
//! incidents and resolution go on.

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::alert::LabelSet;

/// The labels a matcher may name.
pub const MATCHABLE: [&str; 4] = ["service", "endpoint", "kind", "severity"];

/// One condition on a label: equal (or not) to a value, or matching (or not) a regular
/// expression anchored at both ends, as in Alertmanager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    /// `service`, `endpoint`, `kind` or `severity`.
    pub name: String,
    /// The value, or the regular expression.
    pub value: String,
    /// `value` is a regular expression.
    #[serde(default)]
    pub is_regex: bool,
    /// Matches when equal (or matching); false: when not.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Matcher {
    /// Checks the matcher; the message says what is wrong and what is accepted.
    pub fn check(&self) -> Result<(), String> {
        if !MATCHABLE.contains(&self.name.as_str()) {
            return Err(format!(
                "invalid matcher name {:?}; accepted: {}",
                self.name,
                MATCHABLE.join(", ")
            ));
        }
        if self.is_regex {
            self.regex().map_err(|error| {
                format!(
                    "invalid regular expression {:?} for {}: {error}; accepted: a regular \
                     expression in Rust's regex syntax (anchored at both ends)",
                    self.value, self.name
                )
            })?;
        }
        Ok(())
    }

    fn regex(&self) -> Result<Regex, regex::Error> {
        Regex::new(&format!("^(?:{})$", self.value))
    }

    /// Whether `labels` satisfy this matcher (a missing label is the empty value).
    pub fn matches(&self, labels: &LabelSet) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        let found = if self.is_regex {
            self.regex().is_ok_and(|regex| regex.is_match(value))
        } else {
            value == self.value
        };
        found == self.is_equal
    }
}

/// Where a silence stands at some time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    /// In force.
    Active,
    /// Ended (or deleted).
    Expired,
}

/// A silence as kept and stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Unique id (a UUID).
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// When it starts, Unix nanoseconds.
    pub starts_at_unix_nanos: u64,
    /// When it ends, Unix nanoseconds; deleting a silence ends it at once.
    pub ends_at_unix_nanos: u64,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was made, Unix nanoseconds.
    pub created_at_unix_nanos: u64,
}

impl Silence {
    /// Its state at `now_unix_nanos`.
    pub fn state(&self, now_unix_nanos: u64) -> SilenceState {
        if now_unix_nanos >= self.ends_at_unix_nanos {
            SilenceState::Expired
        } else if now_unix_nanos < self.starts_at_unix_nanos {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// Whether it is in force at `now_unix_nanos` and holds back notifications about an alert
    /// with `labels`.
    pub fn silences(&self, labels: &LabelSet, now_unix_nanos: u64) -> bool {
        self.state(now_unix_nanos) == SilenceState::Active
            && self.matchers.iter().all(|matcher| matcher.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> LabelSet {
        [
            ("service", "shop"),
            ("endpoint", "/payment"),
            ("kind", "error_storm"),
            ("severity", "critical"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn matcher(name: &str, value: &str, is_regex: bool, is_equal: bool) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    fn silence(matchers: Vec<Matcher>) -> Silence {
        Silence {
            id: "s".into(),
            matchers,
            starts_at_unix_nanos: 10,
            ends_at_unix_nanos: 20,
            created_by: "ops".into(),
            comment: "deploy".into(),
            created_at_unix_nanos: 5,
        }
    }

    #[test]
    fn matchers_compare_equal_and_anchored_regexes_either_way() {
        let labels = labels();
        assert!(matcher("service", "shop", false, true).matches(&labels));
        assert!(!matcher("service", "sho", false, true).matches(&labels));
        assert!(matcher("service", "sho", false, false).matches(&labels));
        assert!(matcher("endpoint", "/pay.*", true, true).matches(&labels));
        // Anchored: a partial match is no match.
        assert!(!matcher("endpoint", "pay", true, true).matches(&labels));
        assert!(matcher("kind", "latency_.*", true, false).matches(&labels));
    }

    #[test]
    fn bad_matchers_say_what_is_accepted() {
        let error = matcher("team", "x", false, true).check().expect_err("name");
        assert!(
            error.contains("service, endpoint, kind, severity"),
            "{error}"
        );
        let error = matcher("service", "(", true, true)
            .check()
            .expect_err("regex");
        assert!(error.contains("regular expression"), "{error}");
    }

    #[test]
    fn a_silence_is_pending_active_then_expired_and_silences_only_while_active() {
        let silence = silence(vec![matcher("severity", "critical|high", true, true)]);
        assert_eq!(silence.state(9), SilenceState::Pending);
        assert_eq!(silence.state(10), SilenceState::Active);
        assert_eq!(silence.state(20), SilenceState::Expired);
        assert!(!silence.silences(&labels(), 9));
        assert!(silence.silences(&labels(), 15));
        assert!(!silence.silences(&labels(), 20));
    }
}
