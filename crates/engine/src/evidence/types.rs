//! What an incident carries besides its root cause: the changes near its start, a deployment
//! blamed for it, the attributes that explain it, new log patterns and new exceptions.

use aiops_telemetry_core::{Change, ChangeSource};
use serde::{Deserialize, Serialize};

/// The evidence beside an incident's root cause, refreshed while the incident is active.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentEvidence {
    /// Changes (deployments, configuration, feature flags) of the incident's services from a
    /// lookback before its start until now, oldest first.
    pub changes: Vec<Change>,
    /// When set, the root cause is this deployment: the incident's `root_cause` still names
    /// the endpoint where the failure shows and its first failing span.
    pub deployment: Option<DeploymentCause>,
    /// The span attributes most over-represented among the anomalous requests, strongest first.
    pub insights: Vec<Insight>,
    /// New or risen log templates of the incident's services.
    pub log_patterns: Vec<LogPatternEvidence>,
    /// Exception types the incident's endpoints never raised while their baselines were learned.
    pub new_exceptions: Vec<NewException>,
}

/// A deployment named as an incident's root cause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentCause {
    /// The service deployed.
    pub service: String,
    /// The version it ran before, when known.
    pub previous_version: Option<String>,
    /// The version deployed.
    pub version: String,
    /// When the new version appeared (or was reported), in Unix nanoseconds.
    pub time_unix_nanos: u64,
    /// Whether someone reported it or the telemetry showed it.
    pub source: ChangeSource,
    /// The new version's requests of the service since then, and how many went wrong.
    pub new_version: VersionShare,
    /// The other versions' requests over the same time (none when it was deployed at once).
    pub old_versions: VersionShare,
    /// One sentence, e.g. `Deployment of pricing 1.4.2 (from 1.4.1): 38% of its requests
    /// failed against 0% of 1.4.1's`.
    pub description: String,
}

/// Requests of some versions of a service, and how many went wrong (failed, or slow for a
/// slowness incident).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionShare {
    /// Requests seen.
    pub requests: u64,
    /// Of which went wrong.
    pub bad: u64,
}

impl VersionShare {
    /// The share that went wrong, 0 without requests.
    pub fn share(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.bad as f64 / self.requests as f64
        }
    }
}

/// An attribute value over-represented among an incident's anomalous requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    /// The attribute, e.g. `service.version`, `k8s.pod.name`, `http.response.status_code`.
    pub key: String,
    /// Its value, e.g. `1.4.2`.
    pub value: String,
    /// Share of the anomalous requests (failing, or slow) that carry it, in `[0, 1]`.
    pub anomalous_share: f64,
    /// Share of all requests of the same endpoints over the same time that carry it.
    pub overall_share: f64,
    /// Anomalous requests counted.
    pub anomalous_requests: u64,
    /// All requests counted.
    pub requests: u64,
    /// One sentence, e.g. `93% of failing requests carry service.version=1.4.2 against 11% of
    /// all traffic`.
    pub description: String,
}

/// A log template that is new, or whose rate rose, in one of an incident's services.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogPatternEvidence {
    /// The service that logged it.
    pub service: String,
    /// The operation most of its records were logged in (`logs` when none was known).
    pub operation: String,
    /// The template, variable parts as `<*>`.
    pub template: String,
    /// Up to three records of it, most recent first.
    pub examples: Vec<String>,
    /// Records in the last window it was reported in.
    pub count: u64,
    /// True when it was never seen while the service's logs were learned.
    pub new: bool,
    /// True when it was logged at ERROR or above.
    pub error: bool,
}

/// An exception type an endpoint raised that it never raised in its baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewException {
    /// The service.
    pub service: String,
    /// The endpoint (operation).
    pub operation: String,
    /// The exception's type, e.g. `java.lang.NullPointerException`.
    pub exception_type: String,
    /// When the endpoint first raised it, in Unix nanoseconds.
    pub first_seen_unix_nanos: u64,
    /// Times seen since.
    pub count: u64,
    /// The sentence, e.g. `new exception java.lang.NullPointerException in pricing GET /price`.
    pub description: String,
}

/// Where a change belongs in an incident's list: reported ones and observed ones alike, by
/// time.
pub(crate) fn by_time(a: &Change, b: &Change) -> std::cmp::Ordering {
    a.time_unix_nanos
        .cmp(&b.time_unix_nanos)
        .then_with(|| a.service.cmp(&b.service))
}

/// The versions one service was seen running, as the engine saves them across a restart (so
/// a new version seen after it is still a deployment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceVersions {
    /// The service.
    pub service: String,
    /// Its versions, oldest first.
    pub versions: Vec<ObservedVersion>,
}

/// One version of a service and when spans showed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedVersion {
    /// The version (`service.version`).
    pub version: String,
    /// When a span of it first started, in Unix nanoseconds.
    pub first_seen_unix_nanos: u64,
    /// When a span of it last started, in Unix nanoseconds.
    pub last_seen_unix_nanos: u64,
}
