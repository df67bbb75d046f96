//! The options reference of `docs/CONFIGURATION.md`, generated from the settings tree and the
//! command line built from it, and the checks that keep `--help` and the document true to the
//! tree: every option once, with its file key, flag, variable, default and meaning.

use clap::Args;
use serde_json::{Map, Value};

use super::{OFF_SWITCHES, ServeArgs};
use crate::config::Settings;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/CONFIGURATION.md");
const BEGIN: &str = "<!-- options: generated from the settings tree by \
                     `AIOPS_UPDATE_DOCS=1 cargo test -p aiops-server options_reference` -->";
const END: &str = "<!-- end of options -->";

/// One option as the reference shows it.
struct Row {
    heading: String,
    key: String,
    flag: String,
    variable: String,
    default: String,
    /// The help text without its `[default: ...]`.
    meaning: String,
    /// The default as the help text states it.
    stated_default: Option<String>,
}

/// Every option of the tree, in the order of `--help`.
fn rows() -> Vec<Row> {
    let Value::Object(defaults) = serde_json::to_value(Settings::default()).expect("serializes")
    else {
        panic!("the settings serialize to an object");
    };
    let command = ServeArgs::augment_args(clap::Command::new("aiops"));
    let mut rows = Vec::new();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        let Some((section, default)) = find(&defaults, id) else {
            continue;
        };
        let long = arg.get_long().expect("every option has a long flag");
        let value_name = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map(|name| format!(" {name}"))
            .unwrap_or_default();
        let mut flag = format!("`--{long}{value_name}`");
        for switch in OFF_SWITCHES.iter().filter(|switch| switch.option == id) {
            flag.push_str(&format!(", `--{}`", switch.flag));
        }
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        let (meaning, stated_default) = split_default(&help);
        rows.push(Row {
            heading: arg.get_help_heading().unwrap_or("Options").to_owned(),
            key: format!("{section}.{id}"),
            flag,
            variable: arg
                .get_env()
                .map(|variable| variable.to_string_lossy().into_owned())
                .unwrap_or_default(),
            default: crate::config::render_value(default),
            meaning,
            stated_default,
        });
    }
    rows
}

/// The section holding option `id`, and its default.
fn find<'a>(defaults: &'a Map<String, Value>, id: &str) -> Option<(&'a str, &'a Value)> {
    defaults
        .iter()
        .find_map(|(section, options)| options.get(id).map(|default| (section.as_str(), default)))
}

/// Splits `text [default: X]` into the text and `X`.
fn split_default(help: &str) -> (String, Option<String>) {
    let help = help.trim().trim_end_matches('.');
    match help.rsplit_once(" [default: ") {
        Some((meaning, default)) => (
            meaning.to_owned(),
            default.strip_suffix(']').map(str::to_owned),
        ),
        None => (help.to_owned(), None),
    }
}

/// The reference: a table per section, as `docs/CONFIGURATION.md` holds it between its markers.
fn reference() -> String {
    let cell = |text: &str| text.replace('|', "\\|").replace('*', "\\*");
    let mut out = String::new();
    let mut heading = String::new();
    for row in rows() {
        if row.heading != heading {
            heading = row.heading.clone();
            let section = row.key.split('.').next().unwrap_or_default();
            out.push_str(&format!(
                "\n### {heading} (`{section}`)\n\n\
                 | file key | flag | environment | default | meaning |\n|---|---|---|---|---|\n"
            ));
        }
        out.push_str(&format!(
            "| `{}` | {} | `{}` | `{}` | {} |\n",
            row.key,
            cell(&row.flag),
            row.variable,
            row.default,
            cell(&row.meaning)
        ));
    }
    out.push('\n');
    out
}

#[test]
fn options_reference_in_the_configuration_doc_matches_the_tree() {
    let doc = std::fs::read_to_string(DOC).expect("docs/CONFIGURATION.md");
    let (before, rest) = doc
        .split_once(BEGIN)
        .expect("docs/CONFIGURATION.md has the options marker");
    let (current, after) = rest.split_once(END).expect("and the end marker");
    let expected = reference();
    if current == expected {
        return;
    }
    if std::env::var_os("AIOPS_UPDATE_DOCS").is_some() {
        std::fs::write(DOC, format!("{before}{BEGIN}{expected}{END}{after}")).expect("written");
        return;
    }
    panic!(
        "the options reference in docs/CONFIGURATION.md differs from the settings tree; \
         rewrite it with `AIOPS_UPDATE_DOCS=1 cargo test -p aiops-server options_reference`.\n\
         expected:\n{expected}"
    );
}

#[test]
fn every_option_is_in_the_reference_once() {
    let keys: Vec<String> = rows().into_iter().map(|row| row.key).collect();
    let Value::Object(defaults) = serde_json::to_value(Settings::default()).expect("serializes")
    else {
        panic!("an object");
    };
    let options: usize = defaults
        .values()
        .map(|section| section.as_object().map_or(0, Map::len))
        .sum();
    let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
    assert_eq!(keys.len(), options, "{keys:?}");
    assert_eq!(unique.len(), keys.len(), "{keys:?}");
}

#[test]
fn every_flag_states_its_true_default() {
    for row in rows() {
        assert_eq!(
            row.stated_default.as_deref(),
            Some(row.default.as_str()),
            "{}: the help states another default than the tree's",
            row.key
        );
    }
}

#[test]
fn the_stated_defaults_given_as_flags_change_nothing() {
    let mut args = vec!["aiops".to_owned()];
    for row in rows() {
        if row.default != "none" {
            let flag = row
                .flag
                .trim_matches('`')
                .split([' ', '`'])
                .next()
                .unwrap_or_default();
            args.push(flag.to_owned());
            args.push(row.default.clone());
        }
    }
    let cli = <super::Cli as clap::Parser>::try_parse_from(&args).expect("the defaults parse");
    let mut settings = cli.serve.resolve().expect("the defaults are valid");
    settings.origins = Default::default();
    assert_eq!(settings, Settings::default());
}
