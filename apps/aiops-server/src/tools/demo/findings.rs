//! Reading the server's JSON answers (incidents, metrics, analysis reports) and judging the
//! incidents against what a scenario should produce.

use std::collections::BTreeMap;

use serde_json::Value;

use super::client::Reply;

pub(super) fn describe_analysis(reply: &Reply) -> String {
    if !reply.ok() {
        return format!("failed: {}", reply.error());
    }
    let anomalies = reply
        .body
        .get("anomalies")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let changes: Vec<String> = reply
        .body
        .get("changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|change| format!("{} {}", text(change, &["change"]), text(change, &["id"])))
        .collect();
    let anomalies = match anomalies {
        1 => "1 anomaly".to_owned(),
        n => format!("{n} anomalies"),
    };
    if changes.is_empty() {
        anomalies
    } else {
        format!("{anomalies}, {}", changes.join(", "))
    }
}

/// The incident a scenario should produce.
#[derive(Clone, Copy, Debug)]
pub(super) struct Expectation {
    /// Path of the root cause's endpoint, e.g. `/payment`.
    pub(super) root_cause: &'static str,
    /// Whether `/checkout` must be among the affected endpoints.
    pub(super) checkout_affected: bool,
}

/// The active incidents of a scenario, judged against its expectation.
#[derive(Clone, Debug)]
pub(super) struct Check {
    incident: Option<Value>,
    others: Vec<Value>,
    failures: Vec<String>,
}

impl Check {
    pub(super) fn new(incidents: &Value, expected: &Expectation) -> Self {
        let active = active_incidents(incidents);
        let (mut matching, others): (Vec<Value>, Vec<Value>) = active
            .into_iter()
            .partition(|incident| root_endpoint(incident) == Some(expected.root_cause));
        let mut failures = Vec::new();
        let incident = if matching.is_empty() {
            failures.push(format!(
                "no active incident with root cause {}",
                expected.root_cause
            ));
            None
        } else {
            if matching.len() > 1 {
                failures.push(format!(
                    "{} incidents with root cause {}, expected one",
                    matching.len(),
                    expected.root_cause
                ));
            }
            Some(matching.remove(0))
        };
        if !others.is_empty() {
            failures.push(format!(
                "{} other active incident(s), expected only this one",
                others.len()
            ));
        }
        if let Some(incident) = &incident
            && expected.checkout_affected
            && !affected(incident).iter().any(|e| e == "/checkout")
        {
            failures.push("/checkout is not among the affected endpoints".to_owned());
        }
        let mut others = others;
        others.extend(matching);
        Check {
            incident,
            others,
            failures,
        }
    }

    pub(super) fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// Whether any active incident was there at all.
    pub(super) fn found_any(&self) -> bool {
        self.incident.is_some() || !self.others.is_empty()
    }

    /// Prints the verdict, with each incident's page on the web console at `console` (the
    /// server's base URL).
    pub(super) fn print(&self, expected: &Expectation, console: &str) {
        match &self.incident {
            Some(incident) => print_incident(incident, console),
            None => println!("  incident:    none found"),
        }
        for other in &self.others {
            println!(
                "  also active: {} {} (root cause {}): {}",
                text(other, &["id"]),
                text(other, &["title"]),
                root_endpoint(other).unwrap_or("unknown"),
                incident_url(console, text(other, &["id"]))
            );
        }
        let mut wanted = format!("root cause {}", expected.root_cause);
        if expected.checkout_affected {
            wanted.push_str(", /checkout affected");
        }
        println!("  expected:    {wanted}");
        if self.passed() {
            println!("  result:      PASS");
        } else {
            println!("  result:      FAIL: {}", self.failures.join("; "));
        }
    }
}

/// The page of incident `id` on the web console served at `console`.
pub(super) fn incident_url(console: &str, id: &str) -> String {
    format!("{}/incidents/{id}", console.trim_end_matches('/'))
}

fn print_incident(incident: &Value, console: &str) {
    println!(
        "  incident:    {} [{}] {}",
        text(incident, &["id"]),
        text(incident, &["severity"]),
        text(incident, &["title"])
    );
    let confidence = incident
        .pointer("/root_cause/confidence")
        .and_then(Value::as_f64)
        .map_or_else(|| "unknown".to_owned(), |c| format!("{:.0}%", c * 100.0));
    println!(
        "  root cause:  {} ({}): {}; confidence {confidence}",
        text(incident, &["root_cause", "endpoint"]),
        text(incident, &["root_cause", "service"]),
        text(incident, &["root_cause", "description"]),
    );
    println!("  affected:    {}", affected(incident).join(", "));
    let root_cause = incident.get("root_cause").cloned().unwrap_or(Value::Null);
    println!("  root_cause:  {root_cause}");
    println!(
        "  console:     {}",
        incident_url(console, text(incident, &["id"]))
    );
}

pub(super) fn verdict_word(passed: bool) -> &'static str {
    if passed { "PASS" } else { "FAIL" }
}

/// The active incidents in a `GET /aiops/incidents` answer (`{"active_incidents": [...]}`,
/// or a bare array).
fn active_incidents(body: &Value) -> Vec<Value> {
    let list = body
        .get("active_incidents")
        .or_else(|| body.get("incidents"))
        .unwrap_or(body);
    list.as_array()
        .map(|incidents| {
            incidents
                .iter()
                .filter(|incident| {
                    incident
                        .get("status")
                        .and_then(Value::as_str)
                        .is_none_or(|status| status == "active")
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn active_ids(body: &Value) -> Vec<String> {
    active_incidents(body)
        .iter()
        .filter_map(|incident| incident.get("id")?.as_str().map(str::to_owned))
        .collect()
}

/// The root cause's endpoint path, e.g. `/payment`.
fn root_endpoint(incident: &Value) -> Option<&str> {
    incident.pointer("/root_cause/endpoint")?.as_str()
}

/// Affected endpoints as paths, whether the server lists them as strings or as
/// `{"service", "operation"}` objects.
fn affected(incident: &Value) -> Vec<String> {
    incident
        .get("affected_endpoints")
        .and_then(Value::as_array)
        .map(|endpoints| {
            endpoints
                .iter()
                .filter_map(|endpoint| match endpoint {
                    Value::String(path) => Some(path.clone()),
                    other => other.get("operation")?.as_str().map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a metrics key (`/payment`, or `shop /payment`) names the endpoint `path`.
fn same_endpoint(key: &str, path: &str) -> bool {
    key == path || key.rsplit(' ').next() == Some(path)
}

/// A string field at `path` inside `value`, or `?`.
fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
        .unwrap_or("?")
}

/// One endpoint's line of `GET /aiops/metrics`, for a report: window figures against the
/// baseline, and health.
pub(super) fn endpoint_summary(metrics: &Value, endpoint: &str) -> Option<String> {
    let (_, entry) = metrics
        .get("metrics")?
        .as_object()?
        .iter()
        .find(|(key, _)| same_endpoint(key, endpoint))?;
    let number = |field: &str| entry.get(field).and_then(Value::as_f64);
    let ms =
        |field: &str| number(field).map_or_else(|| "none".to_owned(), |v| format!("{v:.0} ms"));
    let pct = |field: &str| {
        number(field).map_or_else(|| "none".to_owned(), |v| format!("{:.0}%", v * 100.0))
    };
    Some(format!(
        "{endpoint} mean {} (baseline {}), errors {} (baseline {}), {}",
        ms("avg_latency_ms"),
        ms("baseline_latency_ms"),
        pct("error_rate"),
        pct("baseline_error_rate"),
        text(entry, &["health", "status"]),
    ))
}

/// Baseline latency of each of `endpoints` that has one, from `GET /aiops/metrics`.
pub(super) fn baselines(
    metrics: &Value,
    endpoints: &[&'static str],
) -> BTreeMap<&'static str, f64> {
    let Some(map) = metrics.get("metrics").and_then(Value::as_object) else {
        return BTreeMap::new();
    };
    endpoints
        .iter()
        .filter_map(|&endpoint| {
            map.iter()
                .find(|(key, _)| same_endpoint(key, endpoint))
                .and_then(|(_, entry)| entry.get("baseline_latency_ms")?.as_f64())
                .map(|ms| (endpoint, ms))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PAYMENT_VIA_CHECKOUT: Expectation = Expectation {
        root_cause: "/payment",
        checkout_affected: true,
    };
    const INVENTORY: Expectation = Expectation {
        root_cause: "/inventory",
        checkout_affected: false,
    };

    fn incident(id: &str, root: &str, affected: Value) -> Value {
        json!({
            "id": id,
            "severity": "high",
            "title": format!("Latency spike detected in {root}"),
            "status": "active",
            "root_cause": {"service": "shop", "endpoint": root, "confidence": 0.9,
                           "description": "Latency spike: 1043ms (baseline: 41ms, 25.4x slower)"},
            "affected_endpoints": affected,
        })
    }

    #[test]
    fn one_incident_with_expected_root_cause_and_checkout_affected_passes() {
        let body = json!({"active_incidents": [
            incident("INC-1-1", "/payment", json!(["/payment", "/checkout"]))
        ]});
        assert!(Check::new(&body, &PAYMENT_VIA_CHECKOUT).passed());
    }

    #[test]
    fn affected_endpoints_may_be_endpoint_keys() {
        let keys = json!([{"service": "shop", "operation": "/payment"},
                          {"service": "shop", "operation": "/checkout"}]);
        let body = json!({"active_incidents": [incident("INC-1-1", "/payment", keys)]});
        assert!(Check::new(&body, &PAYMENT_VIA_CHECKOUT).passed());
    }

    #[test]
    fn wrong_root_cause_fails() {
        let body = json!({"active_incidents": [
            incident("INC-1-1", "/checkout", json!(["/checkout"]))
        ]});
        let check = Check::new(&body, &PAYMENT_VIA_CHECKOUT);
        assert!(!check.passed());
        assert!(check.failures[0].contains("no active incident with root cause /payment"));
    }

    #[test]
    fn missing_checkout_fails_only_where_checkout_is_affected() {
        let body = json!({"active_incidents": [
            incident("INC-1-1", "/inventory", json!(["/inventory"]))
        ]});
        assert!(Check::new(&body, &INVENTORY).passed());
        let body = json!({"active_incidents": [
            incident("INC-1-1", "/payment", json!(["/payment"]))
        ]});
        let check = Check::new(&body, &PAYMENT_VIA_CHECKOUT);
        assert_eq!(
            check.failures,
            ["/checkout is not among the affected endpoints"]
        );
    }

    #[test]
    fn extra_active_incidents_fail() {
        let body = json!({"active_incidents": [
            incident("INC-1-1", "/payment", json!(["/payment", "/checkout"])),
            incident("INC-1-2", "/checkout", json!(["/checkout"])),
        ]});
        let check = Check::new(&body, &PAYMENT_VIA_CHECKOUT);
        assert!(!check.passed());
        assert_eq!(check.others.len(), 1);
    }

    #[test]
    fn resolved_incidents_are_ignored() {
        let mut resolved = incident("INC-1-1", "/checkout", json!(["/checkout"]));
        resolved["status"] = json!("resolved");
        let body = json!([
            resolved,
            incident("INC-1-2", "/payment", json!(["/payment", "/checkout"]))
        ]);
        assert!(Check::new(&body, &PAYMENT_VIA_CHECKOUT).passed());
        assert_eq!(active_ids(&body), ["INC-1-2"]);
    }

    #[test]
    fn endpoint_summary_compares_window_with_baseline() {
        let metrics = json!({"metrics": {"/payment": {
            "avg_latency_ms": 512.4, "baseline_latency_ms": 41.0,
            "error_rate": 0.0, "baseline_error_rate": null,
            "health": {"status": "critical", "health_score": 20.0},
        }}});
        assert_eq!(
            endpoint_summary(&metrics, "/payment").as_deref(),
            Some("/payment mean 512 ms (baseline 41 ms), errors 0% (baseline none), critical")
        );
        assert_eq!(endpoint_summary(&metrics, "/inventory"), None);
    }

    #[test]
    fn baselines_are_read_from_metrics_keyed_by_path_or_endpoint_key() {
        let metrics = json!({"metrics": {
            "/payment": {"baseline_latency_ms": 41.0},
            "shop /inventory": {"baseline_latency_ms": 10.0},
            "/checkout": {"baseline_latency_ms": null},
        }});
        let found = baselines(&metrics, &["/checkout", "/inventory", "/payment"]);
        assert_eq!(found.get("/payment"), Some(&41.0));
        assert_eq!(found.get("/inventory"), Some(&10.0));
        assert_eq!(found.get("/checkout"), None);
    }
}
