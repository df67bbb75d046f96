//! `GET /healthz` and `GET /readyz`: the engine's own liveness and readiness, each check named.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

/// `GET /healthz`: the process answers HTTP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `alive`.
    #[schema(example = "alive")]
    pub status: &'static str,
}

impl Liveness {
    /// The one answer.
    pub const ALIVE: Self = Self { status: "alive" };
}

/// `GET /readyz`: whether the engine can take and analyse spans now, and why not.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` when every check passes, otherwise `not_ready` (answered with 503).
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Every check, in a fixed order.
    pub checks: Vec<ReadinessCheck>,
}

/// One readiness check.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ReadinessCheck {
    /// `database_file`, `storage_writer`, `span_queue` or `analysis_cycle`.
    #[schema(example = "span_queue")]
    pub name: &'static str,
    /// Whether it passes.
    pub ok: bool,
    /// What was found, in words.
    #[schema(example = "12 of 65536 spans wait for storage")]
    pub detail: String,
}

impl Readiness {
    /// Whether every check passes.
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|check| check.ok)
    }
}

/// What readiness is judged from, read by the handler.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadinessInputs {
    /// `Err(why)` when the database file was deleted or replaced.
    pub database_file: Result<(), String>,
    /// The writer waits for another process to release the database.
    pub writer_blocked: bool,
    /// The writer's latest transaction failed.
    pub writer_failing: bool,
    /// Spans waiting for storage.
    pub queued: usize,
    /// The queue's bound.
    pub queue_capacity: usize,
    /// How long ago the latest analysis cycle ran (or, before the first, the server started);
    /// `None` when the analysis actor did not answer.
    pub since_last_cycle: Option<Duration>,
    /// The analysis interval.
    pub analysis_interval: Duration,
}

/// The share of the span queue above which the engine is not ready: OTLP senders are about to
/// be refused with 429.
const QUEUE_READY_PERCENT: usize = 90;

/// The longest an analysis cycle may be overdue: three intervals, and at least 30 s.
pub fn cycle_deadline(interval: Duration) -> Duration {
    (interval * 3).max(Duration::from_secs(30))
}

impl ReadinessInputs {
    /// The checks, judged.
    pub fn assess(&self) -> Readiness {
        let checks = vec![
            ReadinessCheck {
                name: "database_file",
                ok: self.database_file.is_ok(),
                detail: match &self.database_file {
                    Ok(()) => "the database file is the one opened".to_owned(),
                    Err(why) => why.clone(),
                },
            },
            ReadinessCheck {
                name: "storage_writer",
                ok: !self.writer_blocked && !self.writer_failing,
                detail: if self.writer_blocked {
                    "waiting for another process to release the database; spans queue meanwhile"
                } else if self.writer_failing {
                    "the latest span transaction failed (see the log); spans are being lost"
                } else {
                    "committing spans"
                }
                .to_owned(),
            },
            ReadinessCheck {
                name: "span_queue",
                ok: self.queued * 100 < self.queue_capacity * QUEUE_READY_PERCENT,
                detail: format!(
                    "{} of {} spans wait for storage (not ready from {QUEUE_READY_PERCENT}%)",
                    self.queued, self.queue_capacity
                ),
            },
            self.cycle_check(),
        ];
        let ready = checks.iter().all(|check| check.ok);
        Readiness {
            status: if ready { "ready" } else { "not_ready" },
            checks,
        }
    }

    fn cycle_check(&self) -> ReadinessCheck {
        let deadline = cycle_deadline(self.analysis_interval);
        let (ok, detail) = match self.since_last_cycle {
            None => (false, "the analysis actor did not answer".to_owned()),
            Some(age) => (
                age <= deadline,
                format!(
                    "the latest cycle (or the start) was {:.1} s ago; the limit is {:.0} s",
                    age.as_secs_f64(),
                    deadline.as_secs_f64()
                ),
            ),
        };
        ReadinessCheck {
            name: "analysis_cycle",
            ok,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> ReadinessInputs {
        ReadinessInputs {
            database_file: Ok(()),
            writer_blocked: false,
            writer_failing: false,
            queued: 10,
            queue_capacity: 100,
            since_last_cycle: Some(Duration::from_secs(2)),
            analysis_interval: Duration::from_secs(5),
        }
    }

    fn failing(inputs: ReadinessInputs) -> Vec<&'static str> {
        let readiness = inputs.assess();
        assert_eq!(readiness.status == "ready", readiness.is_ready());
        readiness
            .checks
            .iter()
            .filter(|check| !check.ok)
            .map(|check| check.name)
            .collect()
    }

    #[test]
    fn a_healthy_engine_is_ready_and_names_every_check() {
        let readiness = healthy().assess();
        assert_eq!(readiness.status, "ready");
        let names: Vec<_> = readiness.checks.iter().map(|check| check.name).collect();
        assert_eq!(
            names,
            [
                "database_file",
                "storage_writer",
                "span_queue",
                "analysis_cycle"
            ]
        );
    }

    #[test]
    fn each_fault_fails_its_own_check() {
        let deleted = ReadinessInputs {
            database_file: Err("deleted".into()),
            ..healthy()
        };
        assert_eq!(failing(deleted), ["database_file"]);
        let blocked = ReadinessInputs {
            writer_blocked: true,
            ..healthy()
        };
        assert_eq!(failing(blocked), ["storage_writer"]);
        let failed = ReadinessInputs {
            writer_failing: true,
            ..healthy()
        };
        assert_eq!(failing(failed), ["storage_writer"]);
        let full = ReadinessInputs {
            queued: 90,
            ..healthy()
        };
        assert_eq!(failing(full), ["span_queue"]);
        let stale = ReadinessInputs {
            since_last_cycle: Some(Duration::from_secs(31)),
            ..healthy()
        };
        assert_eq!(failing(stale), ["analysis_cycle"]);
        let silent = ReadinessInputs {
            since_last_cycle: None,
            ..healthy()
        };
        assert_eq!(failing(silent), ["analysis_cycle"]);
    }

    #[test]
    fn a_cycle_may_be_three_intervals_late_and_always_30_s() {
        assert_eq!(
            cycle_deadline(Duration::from_secs(1)),
            Duration::from_secs(30)
        );
        assert_eq!(
            cycle_deadline(Duration::from_secs(60)),
            Duration::from_secs(180)
        );
    }
}
