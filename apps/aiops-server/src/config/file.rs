//! The JSON configuration file: read into the settings tree, each key checked against the
//! tree before a value is taken, so that every complaint names the key as written.
//!
//! A key is either a section holding options (`{"detection": {"timeout": "5s"}}`) or an option
//! at the top level (`{"timeout_ms": 5000}`), the form of earlier versions, which had no
//! sections; the option's section is the one that accepts it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde_json::{Map, Value};

use super::error::{SettingsError, Source};
use super::{Detection, Http, Log, Notify, Settings, Shop, Storage};

/// The sections of the tree, with the keys each accepts (aliases included).
fn sections() -> [(&'static str, &'static [&'static str]); 6] {
    [
        ("http", keys_of::<Http>()),
        ("detection", keys_of::<Detection>()),
        ("storage", keys_of::<Storage>()),
        ("shop", keys_of::<Shop>()),
        ("notify", keys_of::<Notify>()),
        ("log", keys_of::<Log>()),
    ]
}

/// Reads the file at `path` into settings over the defaults, recording each key as the
/// origin of its option.
pub(super) fn read(path: &Path) -> Result<Settings, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let written: Value = serde_json::from_str(&text).map_err(|error| SettingsError::NotJson {
        path: path.to_owned(),
        detail: error.to_string(),
    })?;
    let Value::Object(keys) = written else {
        return Err(SettingsError::NotAnObject {
            path: path.to_owned(),
            found: kind_of(&written),
        });
    };
    let mut tree = Tree::new(path);
    for (key, value) in keys {
        tree.place(key, value)?;
    }
    tree.into_settings()
}

/// The file's values, sorted into sections, and the key each was written under.
struct Tree {
    path: PathBuf,
    sections: Map<String, Value>,
    written: BTreeMap<(&'static str, String), String>,
}

impl Tree {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            sections: Map::new(),
            written: BTreeMap::new(),
        }
    }

    /// Sorts one top-level key of the file into its section.
    fn place(&mut self, key: String, value: Value) -> Result<(), SettingsError> {
        if let Some((section, accepted)) = sections().into_iter().find(|(name, _)| *name == key) {
            let Value::Object(options) = value else {
                return Err(SettingsError::InvalidValue {
                    path: self.path.clone(),
                    key,
                    detail: format!(
                        "expected an object of {section} options ({})",
                        accepted.join(", ")
                    ),
                });
            };
            for (option, value) in options {
                if !accepted.contains(&option.as_str()) {
                    return Err(self.unknown(format!("{section}.{option}"), &option, accepted));
                }
                let written = format!("{section}.{option}");
                self.insert(section, option, value, written)?;
            }
            return Ok(());
        }
        match sections()
            .into_iter()
            .find(|(_, accepted)| accepted.contains(&key.as_str()))
        {
            Some((section, _)) => self.insert(section, key.clone(), value, key),
            None => {
                let mut accepted: Vec<&str> = sections().iter().map(|(name, _)| *name).collect();
                accepted.extend(sections().iter().flat_map(|(_, keys)| keys.iter()));
                Err(self.unknown(key.clone(), &key, &accepted))
            }
        }
    }

    fn insert(
        &mut self,
        section: &'static str,
        option: String,
        value: Value,
        written: String,
    ) -> Result<(), SettingsError> {
        if let Some(first) = self.written.get(&(section, option.clone())) {
            return Err(SettingsError::SetTwice {
                path: self.path.clone(),
                first: first.clone(),
                second: written,
            });
        }
        self.written.insert((section, option.clone()), written);
        if let Value::Object(options) = self
            .sections
            .entry(section)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            options.insert(option, value);
        }
        Ok(())
    }

    fn unknown(&self, key: String, name: &str, accepted: &[&str]) -> SettingsError {
        let suggestion = accepted
            .iter()
            .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
            .filter(|(similarity, _)| *similarity > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, candidate)| (*candidate).to_owned());
        SettingsError::UnknownKey {
            path: self.path.clone(),
            key,
            suggestion,
            accepted: accepted.iter().map(|key| (*key).to_owned()).collect(),
        }
    }

    /// Takes the values into settings, naming the key of a value of the wrong type or form.
    fn into_settings(self) -> Result<Settings, SettingsError> {
        let mut settings: Settings = serde_path_to_error::deserialize(Value::Object(self.sections))
            .map_err(|error| {
                let segments: Vec<String> = error.path().iter().map(ToString::to_string).collect();
                let key = match segments.as_slice() {
                    [section, option, ..] => self
                        .written
                        .iter()
                        .find(|((placed, name), _)| placed == section && name == option)
                        .map(|(_, written)| written.clone()),
                    _ => None,
                };
                SettingsError::InvalidValue {
                    path: self.path.clone(),
                    key: key.unwrap_or_else(|| error.path().to_string()),
                    detail: error.into_inner().to_string(),
                }
            })?;
        for ((section, option), written) in self.written {
            let accepted = sections()
                .into_iter()
                .find(|(name, _)| *name == section)
                .map_or(&[][..], |(_, accepted)| accepted);
            let source = Source::File {
                path: self.path.clone(),
                key: written,
            };
            settings
                .origins
                .set(option_named(&option, accepted), source);
        }
        Ok(settings)
    }
}

/// The option a key names: itself, or for the millisecond spellings of earlier versions
/// (`timeout_ms`), the option without its unit.
fn option_named<'a>(key: &'a str, accepted: &[&str]) -> &'a str {
    key.strip_suffix("_ms")
        .filter(|option| accepted.contains(option))
        .unwrap_or(key)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The keys `T`'s derived `Deserialize` accepts, aliases included: the field list serde hands
/// to `deserialize_struct`, caught by a deserializer that holds no data.
fn keys_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(KeysProbe) {
        Err(Keys(keys)) => keys,
        Ok(_) => &[],
    }
}

struct KeysProbe;

#[derive(Debug)]
struct Keys(&'static [&'static str]);

impl fmt::Display for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "keys {:?}", self.0)
    }
}

impl std::error::Error for Keys {}

impl de::Error for Keys {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Keys(&[])
    }
}

impl<'de> Deserializer<'de> for KeysProbe {
    type Error = Keys;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Keys> {
        Err(Keys(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        keys: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Keys> {
        Err(Keys(keys))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sections_are_the_keys_of_the_tree() {
        let names: Vec<&str> = sections().iter().map(|(name, _)| *name).collect();
        assert_eq!(keys_of::<Settings>(), names.as_slice());
    }

    #[test]
    fn no_option_is_in_two_sections() {
        let mut seen = std::collections::BTreeSet::new();
        for (_, keys) in sections() {
            for key in keys {
                assert!(seen.insert(*key), "{key} is in two sections");
            }
        }
    }

    #[test]
    fn millisecond_spellings_name_their_option() {
        let accepted = keys_of::<Detection>();
        assert!(accepted.contains(&"timeout_ms"), "{accepted:?}");
        assert_eq!(option_named("timeout_ms", accepted), "timeout");
        assert_eq!(
            option_named("min_latency_increase_ms", accepted),
            "min_latency_increase"
        );
        assert_eq!(option_named("timeout", accepted), "timeout");
    }
}
