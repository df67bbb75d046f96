//! The evidence beside an incident's root cause: changes, a deployment blamed, attribute
//! insights, log patterns and new exceptions.

use serde::Serialize;
use utoipa::ToSchema;

use super::format::{iso, rounded};

/// A change of a service: a deployment, a configuration change or a feature flag.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Change {
    /// The service that changed.
    pub service: String,
    /// `deployment`, `config` or `feature_flag`.
    #[schema(example = "deployment")]
    pub kind: String,
    /// ISO 8601, to the second.
    pub time: String,
    /// The version after the change, for deployments.
    pub version: Option<String>,
    /// The version before it, when known.
    pub previous_version: Option<String>,
    /// What changed, in words.
    pub description: Option<String>,
    /// `reported` (through the API) or `observed` (a new `service.version` in the spans).
    #[schema(example = "observed")]
    pub source: String,
}

impl Change {
    /// The view of `change`.
    pub fn new(change: &aiops_telemetry_core::Change) -> Self {
        Self {
            service: change.service.to_string(),
            kind: change.kind.as_str().to_owned(),
            time: iso(change.time_unix_nanos),
            version: change.version.as_ref().map(|v| v.to_string()),
            previous_version: change.previous_version.as_ref().map(|v| v.to_string()),
            description: change.description.clone(),
            source: source_name(change.source).to_owned(),
        }
    }
}

fn source_name(source: aiops_telemetry_core::ChangeSource) -> &'static str {
    match source {
        aiops_telemetry_core::ChangeSource::Reported => "reported",
        aiops_telemetry_core::ChangeSource::Observed => "observed",
    }
}

/// A deployment named as the root cause.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Deployment {
    /// Always `deployment`.
    #[schema(example = "deployment")]
    pub kind: String,
    /// The service deployed.
    pub service: String,
    /// The version deployed.
    pub version: String,
    /// The version before, when known.
    pub previous_version: Option<String>,
    /// ISO 8601, when the version appeared or was reported.
    pub deployed_at: String,
    /// `reported` or `observed`.
    pub source: String,
    /// The new version's requests since, and how many went wrong.
    pub new_version_requests: u64,
    /// Of which went wrong.
    pub new_version_bad: u64,
    /// The other versions' requests over the same time (0 when it took all traffic at once).
    pub old_version_requests: u64,
    /// Of which went wrong.
    pub old_version_bad: u64,
    /// E.g. `Deployment of pricing 1.4.2 (from 1.4.1): 40% of its 120 requests failed
    /// against 0% of the other versions' 1080`.
    pub description: String,
}

impl Deployment {
    /// The view of `cause`.
    pub fn new(cause: &aiops_engine::DeploymentCause) -> Self {
        Self {
            kind: "deployment".to_owned(),
            service: cause.service.clone(),
            version: cause.version.clone(),
            previous_version: cause.previous_version.clone(),
            deployed_at: iso(cause.time_unix_nanos),
            source: source_name(cause.source).to_owned(),
            new_version_requests: cause.new_version.requests,
            new_version_bad: cause.new_version.bad,
            old_version_requests: cause.old_versions.requests,
            old_version_bad: cause.old_versions.bad,
            description: cause.description.clone(),
        }
    }
}

/// An attribute value over-represented among the anomalous requests.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Insight {
    /// The attribute, e.g. `service.version`.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Share of the anomalous requests carrying it, 0 to 1.
    pub anomalous_share: Option<f64>,
    /// Share of all requests of the same endpoints carrying it, 0 to 1.
    pub overall_share: Option<f64>,
    /// E.g. `93% of failing requests carry service.version=1.4.2 against 11% of all traffic`.
    pub description: String,
}

impl Insight {
    /// The view of `insight`.
    pub fn new(insight: &aiops_engine::Insight) -> Self {
        Self {
            key: insight.key.clone(),
            value: insight.value.clone(),
            anomalous_share: rounded(insight.anomalous_share),
            overall_share: rounded(insight.overall_share),
            description: insight.description.clone(),
        }
    }
}

/// A new or risen log template.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct LogPattern {
    /// The service that logged it.
    pub service: String,
    /// The operation its records were logged in (`logs` when unknown).
    pub operation: String,
    /// The template, variable parts as `<*>`.
    pub template: String,
    /// Up to three records of it.
    pub examples: Vec<String>,
    /// Records in the window it was last reported in.
    pub count: u64,
    /// Never seen while the service's logs were learned.
    pub new: bool,
    /// Logged at ERROR or above.
    pub error: bool,
}

impl LogPattern {
    /// The view of `pattern`.
    pub fn new(pattern: &aiops_engine::LogPatternEvidence) -> Self {
        Self {
            service: pattern.service.clone(),
            operation: pattern.operation.clone(),
            template: pattern.template.clone(),
            examples: pattern.examples.clone(),
            count: pattern.count,
            new: pattern.new,
            error: pattern.error,
        }
    }
}

/// An exception type an endpoint never raised in its baseline.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct NewException {
    /// The service.
    pub service: String,
    /// The endpoint.
    pub endpoint: String,
    /// E.g. `java.lang.NullPointerException`.
    pub exception_type: String,
    /// ISO 8601, when first raised.
    pub first_seen: String,
    /// Times seen.
    pub count: u64,
    /// E.g. `new exception java.lang.NullPointerException in pricing GET /price`.
    pub description: String,
}

impl NewException {
    /// The view of `exception`.
    pub fn new(exception: &aiops_engine::NewException) -> Self {
        Self {
            service: exception.service.clone(),
            endpoint: exception.operation.clone(),
            exception_type: exception.exception_type.clone(),
            first_seen: iso(exception.first_seen_unix_nanos),
            count: exception.count,
            description: exception.description.clone(),
        }
    }
}
