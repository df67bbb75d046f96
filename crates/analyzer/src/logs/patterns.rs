//! [`LogPatterns`]: log templates per service, counted per window against what each service
//! learned to expect, and the `log_pattern` anomalies they raise.

use std::collections::VecDeque;

use foldhash::HashMap;

use aiops_telemetry_core::{EndpointKey, LogRecord, TimeWindow};

use super::drain::{Drain, DrainConfig, OTHER_TEMPLATE, TemplateId};
use super::mask::mask_tokens;
use crate::anomaly::{Anomaly, AnomalyKind, Severity};

const SECOND: u64 = 1_000_000_000;

/// Services whose messages go to a service of their own beyond [`LogPatternConfig::max_services`].
pub const OTHER_SERVICE: &str = "_other";

/// The operation a pattern's anomaly names when none of its records was logged in a known span.
pub const LOG_OPERATION: &str = "logs";

/// Examples kept per template.
const EXAMPLES: usize = 3;
/// Characters of an example kept.
const EXAMPLE_CHARS: usize = 300;
/// Operations remembered per template (where its records were logged).
const OPERATIONS: usize = 8;

/// How log templates are mined and judged.
#[derive(Clone, Debug, PartialEq)]
pub struct LogPatternConfig {
    /// Share of a message's tokens that must match a template to join it (Drain's threshold).
    pub similarity: f64,
    /// Leading tokens that route a message in the parse tree.
    pub depth: usize,
    /// Templates per service at most; further messages count as the service's `_other`.
    pub max_templates_per_service: usize,
    /// Services at most; further services count as one service `_other`.
    pub max_services: usize,
    /// How long a service's logs are learned before a template can be new, in seconds.
    pub learning_secs: u64,
    /// How long a template that first appeared after learning counts as new, in seconds.
    pub novelty_secs: u64,
    /// Records of a template in the window before it is an anomaly.
    pub min_count: u64,
    /// How many times its learned rate a known template must reach in the window.
    pub rate_ratio: f64,
    /// Half-life of a template's learned rate, in seconds.
    pub half_life_secs: u64,
}

impl Default for LogPatternConfig {
    fn default() -> Self {
        Self {
            similarity: 0.5,
            depth: 2,
            max_templates_per_service: 200,
            max_services: 500,
            learning_secs: 60,
            novelty_secs: 600,
            min_count: 3,
            rate_ratio: 4.0,
            half_life_secs: 1_800,
        }
    }
}

/// Which template a record was mined into: its service's (as the miner names it, which may be
/// [`OTHER_SERVICE`]) and the template's number there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateRef {
    service: String,
    id: TemplateId,
}

/// A `log_pattern` anomaly with what it is about: the template and a few records of it.
#[derive(Clone, Debug, PartialEq)]
pub struct LogPatternFinding {
    /// The anomaly (`kind` is [`AnomalyKind::LogPattern`]), on the service and the operation
    /// most of the template's records were logged in ([`LOG_OPERATION`] when none was known).
    pub anomaly: Anomaly,
    /// The template's text, variable parts as `<*>`.
    pub template: String,
    /// Up to three records of it, most recent first.
    pub examples: Vec<String>,
    /// True when it was never seen while the service's logs were learned; false for a known
    /// template whose rate rose.
    pub new: bool,
    /// True when one of its records was at ERROR severity or above.
    pub error: bool,
}

/// Log templates of every service, counted per second and judged each cycle.
///
/// Each service has its own Drain miner ([`mask_tokens`], then a fixed-depth parse tree).
/// Per template it keeps counts per second over the last window, a learned rate (a moving
/// average with a half-life, frozen while the template is anomalous), when it was first seen,
/// three examples and where it was logged. [`assess`](Self::assess) reports a template that
/// appeared after its service's learning period (new for `novelty_secs`), or whose count in
/// the window is `rate_ratio` times its learned rate and significantly so (three standard
/// deviations of a Poisson count), with at least `min_count` records.
///
/// Memory is bounded: `max_services` services (then `_other`), `max_templates_per_service`
/// templates each (then `_other`), one counter per second of the window per template.
#[derive(Debug)]
pub struct LogPatterns {
    config: LogPatternConfig,
    pub(super) services: HashMap<String, ServiceLogs>,
    last_assessed: Option<u64>,
}

#[derive(Debug)]
pub(super) struct ServiceLogs {
    first_seen: u64,
    drain: Drain,
    pub(super) stats: Vec<TemplateStats>,
}

#[derive(Debug, Default)]
pub(super) struct TemplateStats {
    first_seen: u64,
    /// (second, records), oldest first.
    pub(super) seconds: VecDeque<(u64, u64)>,
    fresh: u64,
    rate_per_sec: Option<f64>,
    flagged: bool,
    error: bool,
    examples: VecDeque<String>,
    operations: Vec<(String, u64)>,
}

impl LogPatterns {
    /// Nothing learned yet.
    pub fn new(config: LogPatternConfig) -> Self {
        Self {
            config,
            services: HashMap::default(),
            last_assessed: None,
        }
    }

    /// Services with templates.
    pub fn services(&self) -> usize {
        self.services.len()
    }

    /// Templates of every service.
    pub fn templates(&self) -> usize {
        self.services.values().map(|s| s.drain.len()).sum()
    }

    /// Mines `record`, logged in a span of `operation` when known; returns the template it
    /// joined.
    pub fn observe(&mut self, record: &LogRecord, operation: Option<&str>) -> TemplateRef {
        let config = &self.config;
        let name = if self.services.contains_key(record.service.as_str())
            || self.services.len() < config.max_services
        {
            record.service.as_str()
        } else {
            OTHER_SERVICE
        };
        let service = self
            .services
            .entry(name.to_owned())
            .or_insert_with(|| ServiceLogs {
                first_seen: record.time_unix_nanos,
                drain: Drain::new(DrainConfig {
                    depth: config.depth,
                    similarity: config.similarity,
                    max_templates: config.max_templates_per_service,
                    ..DrainConfig::default()
                }),
                stats: Vec::new(),
            });
        service.first_seen = service.first_seen.min(record.time_unix_nanos);
        let id = service.drain.add(mask_tokens(&record.body));
        if service.stats.len() <= id as usize {
            service
                .stats
                .resize_with(id as usize + 1, TemplateStats::default);
            service.stats[id as usize].first_seen = record.time_unix_nanos;
        }
        let stats = &mut service.stats[id as usize];
        stats.first_seen = stats.first_seen.min(record.time_unix_nanos);
        stats.count(record, operation, self.config.novelty_secs.max(60));
        TemplateRef {
            service: name.to_owned(),
            id,
        }
    }

    /// True when `template` is routine for its service: a known template (not the catch-all
    /// `_other`), neither new nor risen at the last [`assess`](Self::assess), whose rate has
    /// been learned. An ERROR record of a routine template is something the service says in
    /// healthy requests too (a benign "cache miss, falling back"), not news of a fault.
    pub fn is_routine(&self, template: &TemplateRef) -> bool {
        if template.service == OTHER_SERVICE {
            return false;
        }
        let Some(service) = self.services.get(&template.service) else {
            return false;
        };
        let Some(stats) = service.stats.get(template.id as usize) else {
            return false;
        };
        let now = self.last_assessed.unwrap_or(0);
        stats.rate_per_sec.is_some()
            && !stats.flagged
            && !stats.is_new(service.first_seen, now, &self.config)
            && !service.drain.is_other(template.id)
    }

    /// The anomalies of the window of `window_nanos` ending at `now_unix_nanos`; learns the
    /// rates of templates that are not anomalous from what arrived since the last call.
    pub fn assess(&mut self, now_unix_nanos: u64, window_nanos: u64) -> Vec<LogPatternFinding> {
        let config = &self.config;
        let elapsed_secs = self
            .last_assessed
            .map_or(0.0, |last| now_unix_nanos.saturating_sub(last) as f64 / 1e9);
        self.last_assessed = Some(now_unix_nanos);
        let window_start = now_unix_nanos.saturating_sub(window_nanos);
        let window_secs = (window_nanos as f64 / 1e9).max(1.0);
        let learning = config.learning_secs * SECOND;
        let mut found = Vec::new();
        for (name, service) in &mut self.services {
            for (id, stats) in service.stats.iter_mut().enumerate() {
                stats.forget_before(window_start / SECOND);
                let count: u64 = stats
                    .seconds
                    .iter()
                    .filter(|(second, _)| *second >= window_start / SECOND)
                    .map(|(_, n)| n)
                    .sum();
                let template = service.drain.template(id as TemplateId).text();
                let other = template == OTHER_TEMPLATE;
                let age = now_unix_nanos.saturating_sub(stats.first_seen);
                let new = !other && stats.is_new(service.first_seen, now_unix_nanos, config);
                let expected = stats.rate_per_sec.unwrap_or(0.0) * window_secs;
                let risen = age >= learning
                    && stats.rate_per_sec.is_some()
                    && count as f64 >= config.rate_ratio * expected.max(0.5)
                    && count as f64 - expected >= 3.0 * (expected + 1.0).sqrt();
                let flagged = count >= config.min_count && (new || risen);
                if !flagged && elapsed_secs > 0.0 && !new {
                    stats.learn(elapsed_secs, config.half_life_secs as f64);
                }
                stats.fresh = 0;
                stats.flagged = flagged;
                if flagged {
                    found.push(stats.finding(
                        name,
                        template,
                        new,
                        count,
                        expected,
                        TimeWindow::new(window_start, now_unix_nanos),
                        window_secs,
                    ));
                }
            }
        }
        found.sort_by(|a, b| a.anomaly.endpoint.cmp(&b.anomaly.endpoint));
        found
    }
}

impl TemplateStats {
    /// True when the template first appeared after its service's logs were learned (the
    /// service's first records came at `service_first_seen`) and is still new at `now`.
    fn is_new(&self, service_first_seen: u64, now: u64, config: &LogPatternConfig) -> bool {
        self.first_seen >= service_first_seen.saturating_add(config.learning_secs * SECOND)
            && now.saturating_sub(self.first_seen) <= config.novelty_secs * SECOND
    }

    fn count(&mut self, record: &LogRecord, operation: Option<&str>, keep_secs: u64) {
        let second = record.time_unix_nanos / SECOND;
        match self.seconds.iter_mut().rev().find(|(s, _)| *s == second) {
            Some((_, n)) => *n += 1,
            None => {
                let at = self.seconds.partition_point(|(s, _)| *s < second);
                self.seconds.insert(at, (second, 1));
                // A record far in the future cannot hold older seconds hostage.
                while self.seconds.len() as u64 > keep_secs {
                    self.seconds.pop_front();
                }
            }
        }
        self.fresh += 1;
        self.error |= record.severity.is_error();
        let example: String = record.body.chars().take(EXAMPLE_CHARS).collect();
        if !self.examples.contains(&example) {
            self.examples.push_front(example);
            self.examples.truncate(EXAMPLES);
        }
        if let Some(operation) = operation {
            let known = self.operations.iter().position(|(op, _)| op == operation);
            match known {
                Some(at) => self.operations[at].1 += 1,
                None if self.operations.len() < OPERATIONS => {
                    self.operations.push((operation.to_owned(), 1));
                }
                None => {}
            }
        }
    }

    fn forget_before(&mut self, second: u64) {
        while self.seconds.front().is_some_and(|(s, _)| *s < second) {
            self.seconds.pop_front();
        }
    }

    fn learn(&mut self, elapsed_secs: f64, half_life_secs: f64) {
        let rate = self.fresh as f64 / elapsed_secs;
        self.rate_per_sec = Some(match self.rate_per_sec {
            None => rate,
            Some(old) => {
                let alpha = 1.0 - 0.5f64.powf(elapsed_secs / half_life_secs.max(1.0));
                old + alpha * (rate - old)
            }
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
        &self,
        service: &str,
        template: String,
        new: bool,
        count: u64,
        expected: f64,
        window: TimeWindow,
        window_secs: f64,
    ) -> LogPatternFinding {
        let operation = self
            .operations
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            .map_or(LOG_OPERATION, |(op, _)| op.as_str());
        let level = if self.error { "error " } else { "" };
        let description = if new {
            format!(
                "New {level}log pattern in {service}: \"{template}\" ({count} records in {window_secs:.0}s)"
            )
        } else {
            format!(
                "Log pattern rate: \"{template}\" in {service}, {count} records in {window_secs:.0}s (usually {expected:.1})"
            )
        };
        LogPatternFinding {
            anomaly: Anomaly {
                kind: AnomalyKind::LogPattern,
                endpoint: EndpointKey::new(service, operation),
                observed: count as f64,
                baseline: expected,
                ratio: count as f64 / expected.max(0.1),
                sample_count: count,
                window,
                severity: if self.error {
                    Severity::High
                } else {
                    Severity::Medium
                },
                description,
            },
            template,
            examples: self.examples.iter().cloned().collect(),
            new,
            error: self.error,
        }
    }
}
