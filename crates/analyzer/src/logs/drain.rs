//! [`Drain`]: an online template miner for one service's log messages (He et al., "Drain: An
//! Online Log Parsing Approach with Fixed Depth Tree", ICWS 2017).

use foldhash::HashMap;

use super::mask::WILDCARD;

/// A template's number within its service's miner.
pub(crate) type TemplateId = u32;

/// The template every message goes to once a miner holds its cap of templates.
pub const OTHER_TEMPLATE: &str = "_other";

/// How [`Drain`] groups messages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct DrainConfig {
    /// Levels of the tree below the token count: a message's first `depth` tokens route it to a
    /// leaf (tokens holding a wildcard route to the wildcard child).
    pub depth: usize,
    /// Share of positions in which a message must match a template to join it.
    pub similarity: f64,
    /// Children of one tree node at most; further tokens route to the wildcard child.
    pub max_children: usize,
    /// Templates at most; further messages that match none go to [`OTHER_TEMPLATE`].
    pub max_templates: usize,
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self {
            depth: 2,
            similarity: 0.5,
            max_children: 64,
            max_templates: 200,
        }
    }
}

/// One template: its tokens, wildcards where messages differed.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    pub tokens: Vec<String>,
}

impl Template {
    pub(crate) fn text(&self) -> String {
        self.tokens.join(" ")
    }
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<String, Node>,
    /// Templates of the messages routed to this node (leaves only).
    templates: Vec<TemplateId>,
}

/// Drain's fixed-depth parse tree: messages are routed by their token count and their first
/// tokens to a leaf, where they join the most similar template (the share of positions whose
/// tokens are equal, a template's wildcards matching anything) when it reaches the threshold,
/// and start a template of their own otherwise. Joining a template turns the positions where
/// they differ into wildcards.
///
/// Memory is bounded: at most `max_templates` templates of at most
/// [`MAX_TOKENS`](super::mask::MAX_TOKENS) tokens, and at most `max_children` children per
/// node; beyond the template cap, messages join the `_other` template.
#[derive(Debug)]
pub(crate) struct Drain {
    config: DrainConfig,
    root: HashMap<usize, Node>,
    templates: Vec<Template>,
    other: Option<TemplateId>,
}

impl Drain {
    pub(crate) fn new(config: DrainConfig) -> Self {
        Self {
            config,
            root: HashMap::default(),
            templates: Vec::new(),
            other: None,
        }
    }

    pub(crate) fn template(&self, id: TemplateId) -> &Template {
        &self.templates[id as usize]
    }

    /// True when `id` is the catch-all `_other` template.
    pub(crate) fn is_other(&self, id: TemplateId) -> bool {
        self.other == Some(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.templates.len()
    }

    /// The template of the masked `tokens`, created or widened as needed.
    pub(crate) fn add(&mut self, tokens: Vec<String>) -> TemplateId {
        let config = self.config;
        let full = self.templates.len() >= config.max_templates;
        let mut node = self.root.entry(tokens.len()).or_default();
        for token in tokens.iter().take(config.depth) {
            let key = if token.contains(WILDCARD) {
                WILDCARD
            } else {
                token.as_str()
            };
            let key = if node.children.contains_key(key) {
                key
            } else if node.children.len() + 1 >= config.max_children || full {
                WILDCARD
            } else {
                key
            };
            node = node.children.entry(key.to_owned()).or_default();
        }
        let best = node
            .templates
            .iter()
            .map(|&id| (id, similarity(&self.templates[id as usize].tokens, &tokens)))
            .filter(|&(_, score)| score >= config.similarity)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((id, _)) = best {
            let template = &mut self.templates[id as usize];
            for (kept, seen) in template.tokens.iter_mut().zip(&tokens) {
                if kept != seen && kept != WILDCARD {
                    WILDCARD.clone_into(kept);
                }
            }
            return id;
        }
        if full {
            return self.other_template();
        }
        let id = self.templates.len() as TemplateId;
        self.templates.push(Template { tokens });
        node.templates.push(id);
        id
    }

    fn other_template(&mut self) -> TemplateId {
        if let Some(id) = self.other {
            return id;
        }
        let id = self.templates.len() as TemplateId;
        self.templates.push(Template {
            tokens: vec![OTHER_TEMPLATE.to_owned()],
        });
        self.other = Some(id);
        id
    }
}

/// The share of positions in which `template` and `tokens` (of the same length) hold the same
/// token. As in Drain, a template's wildcard matches only a masked token, so that a template
/// widened once does not swallow every message of its length.
fn similarity(template: &[String], tokens: &[String]) -> f64 {
    if tokens.is_empty() {
        return 1.0;
    }
    let equal = template
        .iter()
        .zip(tokens)
        .filter(|(kept, seen)| kept == seen)
        .count();
    equal as f64 / tokens.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::mask::mask_tokens;

    fn mine(drain: &mut Drain, line: &str) -> TemplateId {
        drain.add(mask_tokens(line))
    }

    #[test]
    fn messages_differing_in_values_share_a_template() {
        let mut drain = Drain::new(DrainConfig::default());
        let a = mine(&mut drain, "Connected to db-7 in 12ms");
        let b = mine(&mut drain, "Connected to db-9 in 30ms");
        assert_eq!(a, b);
        assert_eq!(drain.template(a).text(), "Connected to <*> in <*>");
    }

    #[test]
    fn similar_messages_are_merged_and_different_ones_kept_apart() {
        let mut drain = Drain::new(DrainConfig::default());
        let a = mine(&mut drain, "login of user alice from web");
        let b = mine(&mut drain, "login of user bob from mobile");
        let c = mine(&mut drain, "login of service failed badly today");
        assert_eq!(a, b);
        assert_eq!(drain.template(a).text(), "login of user <*> from <*>");
        assert_ne!(a, c);
    }

    #[test]
    fn beyond_the_cap_messages_go_to_other() {
        let mut drain = Drain::new(DrainConfig {
            max_templates: 2,
            ..DrainConfig::default()
        });
        let a = mine(&mut drain, "alpha beta gamma");
        let b = mine(&mut drain, "delta epsilon zeta eta");
        let other = mine(&mut drain, "completely different words here now");
        assert_ne!(a, b);
        assert_eq!(drain.template(other).text(), OTHER_TEMPLATE);
        assert_eq!(
            mine(&mut drain, "alpha beta gamma"),
            a,
            "known ones still match"
        );
        assert_eq!(drain.len(), 3);
    }
}
