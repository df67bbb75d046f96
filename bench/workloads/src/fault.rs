//! Faults (and healthy disturbances): what they change in the traces, and when.

use rand::Rng;
use rand::rngs::StdRng;

use crate::sample::{lognormal, pareto};
use crate::topology::OpRef;

/// What an injected condition changes.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Calls into `service` take longer on the wire: its callers' CLIENT spans grow, its own
    /// SERVER spans do not.
    NetworkDelay {
        /// The callee.
        service: usize,
        /// Added round-trip time.
        extra_ms: f64,
    },
    /// Every operation of `service` does its own work slower, with more variance.
    CpuSaturation {
        /// The saturated service.
        service: usize,
        /// Mean relative growth of the own time (0.5 is +50%).
        factor: f64,
    },
    /// Every operation on an uninstrumented dependency takes longer.
    SlowDependency {
        /// The dependency.
        dependency: usize,
        /// Added latency.
        extra_ms: f64,
    },
    /// One operation of one service does more own work.
    SlowOperation {
        /// The operation.
        op: OpRef,
        /// Added own time.
        extra_ms: f64,
    },
    /// A share of a service's requests fail (500 or gRPC INTERNAL) and the failure
    /// propagates to callers.
    Errors {
        /// The failing service.
        service: usize,
        /// Only this operation, or all of them.
        operation: Option<usize>,
        /// Share of requests that fail.
        rate: f64,
    },
    /// A defect: a share of one operation's requests return early, without calling their
    /// downstream dependencies, and without an error status.
    EarlyReturn {
        /// The defective operation.
        op: OpRef,
        /// Share of requests affected.
        rate: f64,
        /// The entry service turns the empty answer into a 500 (the only error anywhere).
        edge_error: bool,
    },
    /// A share of a service's requests hang longer than its callers wait.
    Hang {
        /// The hanging service.
        service: usize,
        /// Share of requests that hang.
        probability: f64,
        /// How long a hang lasts.
        hang_ms: f64,
    },
    /// Healthy: a burst of outliers (a pause on the nodes): every service's own work of a
    /// share of requests takes a few hundred milliseconds longer.
    OutlierBurst {
        /// Share of requests affected.
        probability: f64,
    },
    /// A defect no span status shows: a share of one operation's requests go wrong, the
    /// service logs an ERROR record (with a stack trace) in the span and answers 200 with a
    /// bad result, and its caller fails on it.
    LoggedDefect {
        /// The defective operation.
        op: OpRef,
        /// Share of requests affected.
        rate: f64,
    },
    /// A share of one operation's requests throw an exception that is caught: the span
    /// records an exception event (no error status), the service logs it, the answer goes out.
    CaughtException {
        /// The operation.
        op: OpRef,
        /// Share of requests affected.
        rate: f64,
    },
    /// `service` runs a new version ([`new_version`]) on a share of its requests, growing from
    /// none to `share` over `ramp_ns` after `start_ns`; `fail_rate` of those requests fail with
    /// an error status. Outside the effect's time every request runs the old version.
    Deployment {
        /// The deployed service.
        service: usize,
        /// Final share of requests on the new version.
        share: f64,
        /// How long the roll-out takes (0: at once).
        ramp_ns: u64,
        /// When it starts.
        start_ns: u64,
        /// Share of the new version's requests that fail (0: a healthy deployment).
        fail_rate: f64,
    },
    /// Healthy: `service` logs a benign ERROR line (a cache miss it falls back from) in
    /// `share` of the requests it handles, from the start; its spans' status shows nothing.
    /// Drawn in the cases of logs, exceptions and deployments, below the faulty place when it
    /// calls another service: the deepest ERROR there is not news.
    RoutineErrors {
        /// The service.
        service: usize,
        /// Share of its requests with the line.
        share: f64,
    },
    /// Healthy: a burst of log lines of templates never seen before (warnings, and errors tied
    /// to no request) from `service`, `per_second` lines a second.
    LogNoise {
        /// The noisy service.
        service: usize,
        /// Lines a second.
        per_second: u64,
    },
}

/// The version a deployment brings to service `service` (which otherwise runs the version
/// its topology gives it).
pub fn new_version(service: usize) -> String {
    format!("9.{service}.0")
}

/// What a request's span says beyond its status, for the logs written about it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Note {
    /// Nothing.
    #[default]
    None,
    /// A defect its span does not show went off ([`Effect::LoggedDefect`]).
    Defect,
    /// An exception was thrown and caught ([`Effect::CaughtException`]).
    Caught,
}

/// The exception type a caught exception has.
pub const CAUGHT_EXCEPTION: &str = "java.lang.NullPointerException";

/// An effect and when it applies (to requests starting in `[start_ns, end_ns)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Injected {
    /// What changes.
    pub effect: Effect,
    /// First instant, Unix nanoseconds.
    pub start_ns: u64,
    /// End (exclusive), Unix nanoseconds.
    pub end_ns: u64,
}

impl Injected {
    /// True when a request starting at `t` is affected.
    pub fn active_at(&self, t: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&t)
    }
}

/// The effects that apply to one request, with the questions the trace builder asks them.
#[derive(Clone, Copy, Debug)]
pub struct Conditions<'a>(pub &'a [Effect]);

impl Conditions<'_> {
    /// The own time of `op` given its healthy draw `self_ms`.
    pub fn self_time(&self, rng: &mut StdRng, op: OpRef, mut self_ms: f64) -> f64 {
        for effect in self.0 {
            match *effect {
                Effect::CpuSaturation { service, factor } if service == op.service => {
                    // Queueing for a core: the growth varies a lot from request to request.
                    self_ms *= 1.0 + factor * lognormal(rng, 1.0, 0.5);
                }
                Effect::SlowOperation { op: slow, extra_ms } if slow == op => {
                    self_ms += extra_ms * rng.random_range(0.8..1.2);
                }
                Effect::OutlierBurst { probability } if rng.random_bool(probability) => {
                    self_ms += 100.0 * pareto(rng, 1.5).min(10.0);
                }
                _ => {}
            }
        }
        self_ms
    }

    /// Extra round-trip time of a call into `service`.
    pub fn network_extra_ms(&self, rng: &mut StdRng, service: usize) -> f64 {
        self.0
            .iter()
            .map(|effect| match *effect {
                Effect::NetworkDelay {
                    service: s,
                    extra_ms,
                } if s == service => extra_ms * rng.random_range(0.7..1.3),
                _ => 0.0,
            })
            .sum()
    }

    /// Extra latency of an operation on `dependency`.
    pub fn dependency_extra_ms(&self, rng: &mut StdRng, dependency: usize) -> f64 {
        self.0
            .iter()
            .map(|effect| match *effect {
                Effect::SlowDependency {
                    dependency: d,
                    extra_ms,
                } if d == dependency => extra_ms * rng.random_range(0.7..1.3),
                _ => 0.0,
            })
            .sum()
    }

    /// Whether a request to `op` fails on its own, given its background error rate.
    pub fn fails(&self, rng: &mut StdRng, op: OpRef, background: f64) -> bool {
        let mut failed = rng.random_bool(background.clamp(0.0, 1.0));
        for effect in self.0 {
            if let Effect::Errors {
                service,
                operation,
                rate,
            } = *effect
                && service == op.service
                && operation.is_none_or(|o| o == op.operation)
            {
                failed |= rng.random_bool(rate);
            }
        }
        failed
    }

    /// `Some(edge_error)` when this request to `op` returns early.
    pub fn returns_early(&self, rng: &mut StdRng, op: OpRef) -> Option<bool> {
        self.0.iter().find_map(|effect| match *effect {
            Effect::EarlyReturn {
                op: defective,
                rate,
                edge_error,
            } if defective == op && rng.random_bool(rate) => Some(edge_error),
            _ => None,
        })
    }

    /// Whether `service` runs its new version for the request of trace `trace` starting at
    /// `t` (decided by the trace id, so every span of the service in it agrees).
    pub fn deployed(&self, trace: aiops_telemetry_core::TraceId, service: usize, t: u64) -> bool {
        self.0.iter().any(|effect| match *effect {
            Effect::Deployment {
                service: s,
                share,
                ramp_ns,
                start_ns,
                ..
            } if s == service => {
                let done = if ramp_ns == 0 {
                    1.0
                } else {
                    (t.saturating_sub(start_ns) as f64 / ramp_ns as f64).min(1.0)
                };
                let bytes = trace.as_bytes();
                let mut low = [0u8; 8];
                low.copy_from_slice(&bytes[..8]);
                let draw = u64::from_le_bytes(low);
                crate::sample::unit(crate::sample::mix(draw ^ service as u64)) < share * done
            }
            _ => false,
        })
    }

    /// Whether the new version of `service` fails this request (only asked of requests it
    /// serves).
    pub fn deployment_fails(&self, rng: &mut StdRng, service: usize) -> bool {
        self.0.iter().any(|effect| match *effect {
            Effect::Deployment {
                service: s,
                fail_rate,
                ..
            } if s == service && fail_rate > 0.0 => rng.random_bool(fail_rate),
            _ => false,
        })
    }

    /// What goes wrong in this request to `op` that its span's status does not show.
    pub fn note(&self, rng: &mut StdRng, op: OpRef) -> Note {
        for effect in self.0 {
            match *effect {
                Effect::LoggedDefect { op: at, rate } if at == op && rng.random_bool(rate) => {
                    return Note::Defect;
                }
                Effect::CaughtException { op: at, rate } if at == op && rng.random_bool(rate) => {
                    return Note::Caught;
                }
                _ => {}
            }
        }
        Note::None
    }

    /// How long this request to `service` hangs, if it does.
    pub fn hang_ms(&self, rng: &mut StdRng, service: usize) -> Option<f64> {
        self.0.iter().find_map(|effect| match *effect {
            Effect::Hang {
                service: s,
                probability,
                hang_ms,
            } if s == service && rng.random_bool(probability) => {
                Some(hang_ms * rng.random_range(0.9..1.1))
            }
            _ => None,
        })
    }
}
