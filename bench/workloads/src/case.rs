//! The catalogue of cases: fault classes with magnitude buckets, healthy classes, and how
//! one case (system, traffic, faults, timing) is drawn from its seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::evidence::EvidenceClass;
use crate::fault::{Effect, Injected};
use crate::generate::generate;
use crate::sample::{log_uniform, mix, pick};
use crate::topology::{DependencyKind, Topology};
use crate::traffic::Load;
use crate::truth::Truth;
use crate::visibility::{Visibility, visibility};

const SECOND: u64 = 1_000_000_000;
/// The virtual clock's start, Unix nanoseconds.
pub const T0: u64 = 1_700_000_000 * SECOND;
/// The usual warm-up before a fault.
pub const LONG_WARM_UP_SECS: u64 = 600;
/// The short warm-up: a minute of history only.
pub const SHORT_WARM_UP_SECS: u64 = 60;
/// How long a case runs on after its last fault ends.
pub const TAIL_SECS: u64 = 30;
/// How long a healthy case runs after its warm-up.
pub const HEALTHY_OBSERVATION_SECS: u64 = 180;

/// A class of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultClass {
    /// Network delay into a service.
    NetworkDelay,
    /// CPU saturation of a service.
    CpuSaturation,
    /// A slow uninstrumented dependency.
    SlowDependency,
    /// One slow operation of a service.
    SlowOperation,
    /// Errors with an error status, propagating as 5xx.
    ErrorsWithStatus,
    /// A defect that returns early without error status, changing the call structure.
    SilentEarlyReturn,
    /// A callee that hangs past its callers' client timeout.
    Timeout,
    /// Two independent concurrent faults in unrelated services.
    TwoFaults,
}

impl FaultClass {
    /// Every class, in report order.
    pub const ALL: [Self; 8] = [
        Self::NetworkDelay,
        Self::CpuSaturation,
        Self::SlowDependency,
        Self::SlowOperation,
        Self::ErrorsWithStatus,
        Self::SilentEarlyReturn,
        Self::Timeout,
        Self::TwoFaults,
    ];

    /// The class's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::NetworkDelay => "network delay",
            Self::CpuSaturation => "CPU saturation",
            Self::SlowDependency => "slow dependency",
            Self::SlowOperation => "slow operation",
            Self::ErrorsWithStatus => "errors with status",
            Self::SilentEarlyReturn => "early return, no status",
            Self::Timeout => "timeout",
            Self::TwoFaults => "two concurrent faults",
        }
    }

    /// The magnitude buckets, smallest first.
    pub fn buckets(self) -> &'static [&'static str] {
        match self {
            Self::NetworkDelay | Self::SlowDependency | Self::SlowOperation => {
                &["+20 ms", "+50 ms", "+0.1-1 s"]
            }
            Self::CpuSaturation => &["+20-50%", "+50-100%", "+100-200%"],
            Self::ErrorsWithStatus | Self::SilentEarlyReturn => &["5-10%", "15-40%", "50-80%"],
            Self::Timeout => &["5-10% hang", "15-40% hang", "50-100% hang"],
            Self::TwoFaults => &["small", "large"],
        }
    }
}

/// A class of healthy case: no fault, so every incident is a false one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthyClass {
    /// Steady traffic.
    Steady,
    /// Traffic doubles after the warm-up.
    LoadDoubling,
    /// Traffic ramps up 2.5 times after the warm-up.
    DiurnalRamp,
    /// One second in which many requests are slow everywhere.
    OutlierBurst,
    /// A 1 ms database call with a very heavy tail.
    NoisyDatabase,
    /// Steady traffic after a warm-up of one minute.
    ShortWarmUp,
}

impl HealthyClass {
    /// Every class, in report order.
    pub const ALL: [Self; 6] = [
        Self::Steady,
        Self::LoadDoubling,
        Self::DiurnalRamp,
        Self::OutlierBurst,
        Self::NoisyDatabase,
        Self::ShortWarmUp,
    ];

    /// The class's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Steady => "steady",
            Self::LoadDoubling => "load doubling",
            Self::DiurnalRamp => "diurnal ramp",
            Self::OutlierBurst => "1 s burst of outliers",
            Self::NoisyDatabase => "noisy 1 ms database",
            Self::ShortWarmUp => "60 s warm-up",
        }
    }
}

/// One line of the catalogue: a fault class and magnitude, or a healthy class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// A fault class and the index of its magnitude bucket.
    Fault(FaultClass, usize),
    /// A healthy class.
    Healthy(HealthyClass),
    /// A case of logs, exceptions or deployments, and its variant.
    Evidence(EvidenceClass, usize),
}

impl Scenario {
    /// Every scenario, in report order.
    pub fn all() -> Vec<Self> {
        let faults = FaultClass::ALL
            .iter()
            .flat_map(|&class| (0..class.buckets().len()).map(move |b| Self::Fault(class, b)));
        let evidence = EvidenceClass::ALL
            .iter()
            .flat_map(|&class| (0..class.buckets().len()).map(move |b| Self::Evidence(class, b)));
        // Evidence cases come last, so that the earlier scenarios keep their seeds.
        faults
            .chain(HealthyClass::ALL.iter().map(|&c| Self::Healthy(c)))
            .chain(evidence)
            .collect()
    }

    /// `class, magnitude` or the healthy class's name.
    pub fn name(self) -> String {
        match self {
            Self::Fault(class, bucket) => format!("{}, {}", class.name(), class.buckets()[bucket]),
            Self::Healthy(class) => class.name().to_owned(),
            Self::Evidence(class, bucket) => {
                format!("{}, {}", class.name(), class.buckets()[bucket])
            }
        }
    }
}

/// An injected fault and what should be named for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// What changes and when.
    pub injected: Injected,
    /// The ground truth.
    pub truth: Truth,
    /// Whether the fault is visible in traces ([`crate::visibility`]).
    pub visibility: Visibility,
}

/// One case, fully determined by its scenario and seed.
#[derive(Clone, Debug)]
pub struct Case {
    /// The seed it was drawn from.
    pub seed: u64,
    /// What kind of case it is.
    pub scenario: Scenario,
    /// The system.
    pub topology: Topology,
    /// Requests per second at the entry services before any load change.
    pub base_rate: f64,
    /// How the request rate changes.
    pub load: Load,
    /// Healthy traffic before the fault (or the observation).
    pub warm_up_secs: u64,
    /// End of the case, Unix nanoseconds (it starts at [`T0`]).
    pub end_ns: u64,
    /// Injected faults (none in healthy cases, two in concurrent ones).
    pub faults: Vec<Fault>,
    /// Healthy disturbances (a burst of outliers).
    pub disturbances: Vec<Injected>,
}

impl Case {
    /// Draws the case of `scenario` with seed `seed`.
    pub fn draw(scenario: Scenario, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(mix(seed));
        loop {
            let topology = generate(&mut rng);
            if let Some(case) = Self::try_draw(scenario, seed, topology, &mut rng) {
                return case;
            }
        }
    }

    fn try_draw(
        scenario: Scenario,
        seed: u64,
        mut topology: Topology,
        rng: &mut StdRng,
    ) -> Option<Self> {
        let base_rate = rng.random_range(8.0..12.0);
        let short = match scenario {
            Scenario::Fault(..) => rng.random_bool(0.25),
            Scenario::Healthy(class) => class == HealthyClass::ShortWarmUp,
            Scenario::Evidence(..) => false,
        };
        let warm_up_secs = if short {
            SHORT_WARM_UP_SECS
        } else {
            LONG_WARM_UP_SECS
        };
        let after_warm_up = T0 + warm_up_secs * SECOND;
        let mut case = Self {
            seed,
            scenario,
            base_rate,
            load: Load::Steady,
            warm_up_secs,
            end_ns: after_warm_up + HEALTHY_OBSERVATION_SECS * SECOND,
            faults: Vec::new(),
            disturbances: Vec::new(),
            topology: Topology {
                services: Vec::new(),
                dependencies: Vec::new(),
                entries: Vec::new(),
            },
        };
        match scenario {
            Scenario::Fault(class, bucket) => {
                let effects = crate::draw::effects(rng, &mut topology, class, bucket)?;
                let mut end = after_warm_up;
                for (index, effect) in effects.into_iter().enumerate() {
                    let start = after_warm_up
                        + if index == 0 {
                            0
                        } else {
                            rng.random_range(0..20) * SECOND
                        };
                    let duration = rng.random_range(60..=120) * SECOND;
                    end = end.max(start + duration);
                    let truth = Truth::of(&effect, &topology);
                    let visibility = visibility(&effect, &topology);
                    case.faults.push(Fault {
                        injected: Injected {
                            effect,
                            start_ns: start,
                            end_ns: start + duration,
                        },
                        truth,
                        visibility,
                    });
                }
                case.end_ns = end + TAIL_SECS * SECOND;
            }
            Scenario::Evidence(class, bucket) => {
                let effect = crate::evidence::effect(rng, &topology, class, bucket, after_warm_up)?;
                let routine = crate::evidence::routine_errors(rng, &topology, &effect);
                case.disturbances.push(Injected {
                    effect: routine,
                    start_ns: T0,
                    end_ns: u64::MAX,
                });
                if class.is_fault() {
                    let duration = rng.random_range(60..=120) * SECOND;
                    let truth = Truth::of(&effect, &topology);
                    let visibility = visibility(&effect, &topology);
                    case.faults.push(Fault {
                        injected: Injected {
                            effect,
                            start_ns: after_warm_up,
                            end_ns: after_warm_up + duration,
                        },
                        truth,
                        visibility,
                    });
                    case.end_ns = after_warm_up + duration + TAIL_SECS * SECOND;
                } else {
                    let end_ns = match effect {
                        // A noise burst lasts 30 to 60 s; a deployment stays.
                        Effect::LogNoise { .. } => {
                            after_warm_up + rng.random_range(30..=60) * SECOND
                        }
                        _ => case.end_ns,
                    };
                    case.disturbances.push(Injected {
                        effect,
                        start_ns: after_warm_up,
                        end_ns,
                    });
                }
            }
            Scenario::Healthy(class) => {
                let event = after_warm_up + rng.random_range(20..100) * SECOND;
                match class {
                    HealthyClass::Steady | HealthyClass::ShortWarmUp => {}
                    HealthyClass::LoadDoubling => {
                        case.load = Load::Doubling {
                            at_ns: event,
                            ramp_ns: rng.random_range(5..30) * SECOND,
                        };
                    }
                    HealthyClass::DiurnalRamp => {
                        case.load = Load::Diurnal {
                            from_ns: after_warm_up,
                            to_ns: case.end_ns,
                            low: 1.0,
                            high: 2.5,
                        };
                    }
                    HealthyClass::OutlierBurst => case.disturbances.push(Injected {
                        effect: Effect::OutlierBurst {
                            probability: rng.random_range(0.3..0.8),
                        },
                        start_ns: event,
                        end_ns: event + SECOND,
                    }),
                    HealthyClass::NoisyDatabase => make_noisy_database(rng, &mut topology),
                }
            }
        }
        case.topology = topology;
        Some(case)
    }

    /// The effects active for a request starting at `t`.
    pub fn effects_at(&self, t: u64) -> Vec<Effect> {
        self.faults
            .iter()
            .map(|f| &f.injected)
            .chain(&self.disturbances)
            .filter(|i| i.active_at(t))
            .map(|i| i.effect.clone())
            .collect()
    }

    /// When the first fault starts; for healthy cases, the end of the warm-up.
    pub fn fault_start_ns(&self) -> u64 {
        self.faults
            .iter()
            .map(|f| f.injected.start_ns)
            .min()
            .unwrap_or(T0 + self.warm_up_secs * SECOND)
    }
}

/// The busiest database (or, without one, the busiest dependency) becomes a 1 ms call with a
/// very heavy tail: most calls take about a millisecond, some take tens.
fn make_noisy_database(rng: &mut StdRng, topology: &mut Topology) {
    let (_, calls) = topology.expected_visits();
    let busiest = (0..topology.dependencies.len())
        .filter(|&d| topology.dependencies[d].kind == DependencyKind::Database)
        .max_by(|&a, &b| calls[a].total_cmp(&calls[b]))
        .or_else(|| (0..calls.len()).max_by(|&a, &b| calls[a].total_cmp(&calls[b])));
    if let Some(index) = busiest {
        let dependency = &mut topology.dependencies[index];
        dependency.latency_median_ms = log_uniform(rng, 0.8, 1.2);
        dependency.latency_sigma = 0.7;
        dependency.tail_probability = *pick(rng, &[0.05, 0.08, 0.12]);
        dependency.tail_alpha = 1.1;
    }
}
