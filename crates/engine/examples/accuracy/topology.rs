//! Random microservice topologies: services in levels, operations calling operations of
//! deeper services, optional calls, lognormal self-times, background errors.

use rand::Rng;
use rand::rngs::StdRng;

/// Largest fan-out of one operation.
const MAX_FAN_OUT: usize = 4;
/// Deepest level below the entry service.
const MAX_LEVEL: usize = 5;
/// Topologies whose expected trace is larger than this are drawn again.
const MAX_EXPECTED_SPANS: f64 = 60.0;
/// On a healthy day no endpoint fails more often than this (its own failures plus those of
/// its callees that propagate).
const MAX_BACKGROUND_ERROR_RATE: f64 = 0.01;

#[derive(Clone, Debug)]
pub struct Topology {
    /// Service 0 is the entry service; its operations receive the traffic.
    pub services: Vec<Service>,
}

#[derive(Clone, Debug)]
pub struct Service {
    pub name: String,
    pub level: usize,
    /// How long this service's HTTP client waits for a callee before giving up (504).
    pub client_timeout_ms: f64,
    pub operations: Vec<Operation>,
}

#[derive(Clone, Debug)]
pub struct Operation {
    pub name: String,
    /// Median and log-space spread of the operation's own work.
    pub self_median_ms: f64,
    pub self_sigma: f64,
    /// Share of the own work done before the calls (the rest comes after).
    pub pre_share: f64,
    /// Calls are made concurrently rather than one after another.
    pub parallel: bool,
    /// Background probability of failing on its own.
    pub error_rate: f64,
    pub calls: Vec<Call>,
}

#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub service: usize,
    pub operation: usize,
    /// Probability the call is made at all (1 for unconditional calls).
    pub probability: f64,
    /// Whether a failure of the callee fails the caller (otherwise the caller falls back).
    pub propagates: bool,
}

impl Topology {
    /// A random topology of 5 to 40 services.
    pub fn random(rng: &mut StdRng) -> Self {
        loop {
            let topology = Self::draw(rng);
            if topology.expected_spans() <= MAX_EXPECTED_SPANS {
                return topology.with_background_errors(rng);
            }
        }
    }

    fn draw(rng: &mut StdRng) -> Self {
        let count = rng.random_range(5..=40);
        let mut levels: Vec<usize> = (1..count)
            .map(|_| rng.random_range(1..=MAX_LEVEL.min(count - 1)))
            .collect();
        levels.sort_unstable();
        levels.insert(0, 0);
        let mut services: Vec<Service> = levels
            .iter()
            .enumerate()
            .map(|(index, &level)| Service {
                name: format!("svc-{index:02}"),
                level,
                client_timeout_ms: rng.random_range(1_500.0..4_000.0),
                operations: (0..rng.random_range(1..=3))
                    .map(|op| random_operation(rng, op))
                    .collect(),
            })
            .collect();

        // Every operation of every non-entry service gets a caller at a shallower level.
        for service in 1..services.len() {
            for operation in 0..services[service].operations.len() {
                let level = services[service].level;
                let callers = open_operations(&services, |l| l < level);
                let (caller_service, caller_op) = callers[rng.random_range(0..callers.len())];
                let call = random_call(rng, service, operation);
                services[caller_service].operations[caller_op]
                    .calls
                    .push(call);
            }
        }
        // Some operations call further, up to the fan-out limit.
        for service in 0..services.len() {
            let level = services[service].level;
            let deeper = open_targets(&services, level);
            if deeper.is_empty() {
                continue;
            }
            for operation in 0..services[service].operations.len() {
                if !rng.random_bool(0.5) {
                    continue;
                }
                for _ in 0..rng.random_range(1..=2) {
                    if services[service].operations[operation].calls.len() >= MAX_FAN_OUT {
                        break;
                    }
                    let (target, target_op) = deeper[rng.random_range(0..deeper.len())];
                    let call = random_call(rng, target, target_op);
                    services[service].operations[operation].calls.push(call);
                }
            }
        }
        Self { services }
    }

    /// Expected number of spans in a trace entering at a random entry operation.
    pub fn expected_spans(&self) -> f64 {
        let memo = self.subtree_sizes();
        memo[0].iter().sum::<f64>() / memo[0].len() as f64
    }

    /// Gives every operation a background error rate such that no endpoint, counting failures
    /// propagated from its callees, fails more than about `MAX_BACKGROUND_ERROR_RATE` of the
    /// time: an operation's own rate is a random share of that budget divided by the expected
    /// number of spans in the largest trace.
    fn with_background_errors(mut self, rng: &mut StdRng) -> Self {
        let largest = self.subtree_sizes()[0].iter().copied().fold(1.0, f64::max);
        for service in &mut self.services {
            for operation in &mut service.operations {
                operation.error_rate = rng.random_range(0.0..MAX_BACKGROUND_ERROR_RATE) / largest;
            }
        }
        self
    }

    /// Expected spans in a request to each operation, itself included.
    fn subtree_sizes(&self) -> Vec<Vec<f64>> {
        let mut memo = vec![Vec::new(); self.services.len()];
        for service in (0..self.services.len()).rev() {
            memo[service] = self.services[service]
                .operations
                .iter()
                .map(|op| {
                    1.0 + op
                        .calls
                        .iter()
                        .map(|c| c.probability * memo[c.service][c.operation])
                        .sum::<f64>()
                })
                .collect();
        }
        memo
    }

    /// The services that call `service`.
    pub fn callers_of(&self, service: usize) -> Vec<usize> {
        (0..self.services.len())
            .filter(|&s| {
                self.services[s]
                    .operations
                    .iter()
                    .any(|op| op.calls.iter().any(|c| c.service == service))
            })
            .collect()
    }
}

fn random_operation(rng: &mut StdRng, index: usize) -> Operation {
    Operation {
        name: format!("/op{index}"),
        self_median_ms: (rng.random_range(1f64.ln()..50f64.ln())).exp(),
        self_sigma: rng.random_range(0.1..0.5),
        pre_share: rng.random_range(0.1..0.9),
        parallel: rng.random_bool(0.3),
        error_rate: 0.0,
        calls: Vec::new(),
    }
}

fn random_call(rng: &mut StdRng, service: usize, operation: usize) -> Call {
    let probability = if rng.random_bool(0.3) {
        rng.random_range(0.2..0.9)
    } else {
        1.0
    };
    Call {
        service,
        operation,
        probability,
        propagates: rng.random_bool(0.9),
    }
}

/// Operations of services at a level accepted by `level_ok` with room for another call;
/// if every one is full, all of them.
fn open_operations(services: &[Service], level_ok: impl Fn(usize) -> bool) -> Vec<(usize, usize)> {
    let all: Vec<(usize, usize)> = services
        .iter()
        .enumerate()
        .filter(|(_, s)| level_ok(s.level))
        .flat_map(|(i, s)| (0..s.operations.len()).map(move |op| (i, op)))
        .collect();
    let open: Vec<(usize, usize)> = all
        .iter()
        .copied()
        .filter(|&(s, op)| services[s].operations[op].calls.len() < MAX_FAN_OUT)
        .collect();
    if open.is_empty() { all } else { open }
}

/// Operations of services deeper than `level`.
fn open_targets(services: &[Service], level: usize) -> Vec<(usize, usize)> {
    services
        .iter()
        .enumerate()
        .filter(|(_, s)| s.level > level)
        .flat_map(|(i, s)| (0..s.operations.len()).map(move |op| (i, op)))
        .collect()
}
