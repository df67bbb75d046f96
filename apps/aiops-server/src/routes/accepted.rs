//! What the routes accept, stated once: the values of query and path parameters whose
//! handlers check them against a list or a grammar, written into the OpenAPI document from the
//! same constants the handlers check with, so that the document is exactly as strict as the
//! handlers (a generated client or a fuzzer sends nothing the document allows that a handler
//! refuses, and the reverse).

use serde_json::{Value, json};
use utoipa::Modify;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use super::aiops::{INCIDENT_STATUSES, WINDOW_PATTERN};
use super::params::NOT_BLANK;
use crate::shop::table::SHOP_ROUTES;
use aiops_chaos::MAX_DURATION_MS;

/// A trace id: 32 lower-case hexadecimal digits, not all zero (W3C trace context).
pub const TRACE_ID_PATTERN: &str = "^(?!0{32}$)[0-9a-f]{32}$";

/// The schema of each strictly checked parameter, as (operationId, parameter, schema).
pub fn strict_parameters() -> Vec<(&'static str, &'static str, Value)> {
    let mut shop_paths: Vec<&str> = SHOP_ROUTES.iter().map(|route| route.path).collect();
    shop_paths.sort_unstable();
    let not_blank = json!({"type": "string", "minLength": 1, "pattern": NOT_BLANK});
    let time = json!({"type": "string", "format": "date-time"});
    let mut table = vec![
        (
            "listIncidents",
            "status",
            json!({"type": "string", "enum": INCIDENT_STATUSES}),
        ),
        (
            "getTopology",
            "window",
            json!({"type": "string", "pattern": WINDOW_PATTERN}),
        ),
        (
            "getTrace",
            "trace_id",
            json!({"type": "string", "pattern": TRACE_ID_PATTERN}),
        ),
        (
            "getEndpointWindow",
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 100}),
        ),
    ];
    for operation in ["listLogs", "listChanges"] {
        table.push((
            operation,
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 1000}),
        ));
    }
    table.push((
        "listLogs",
        "trace_id",
        json!({"type": "string", "pattern": TRACE_ID_PATTERN}),
    ));
    for operation in ["getEndpointHistory", "getEndpointWindow"] {
        table.push((operation, "service", not_blank.clone()));
        table.push((operation, "operation", not_blank.clone()));
        table.push((operation, "from", time.clone()));
        table.push((operation, "to", time.clone()));
    }
    for operation in ["simulateDelay", "simulateErrors", "simulateTimeout"] {
        table.push((
            operation,
            "endpoint",
            json!({"type": "string", "enum": shop_paths}),
        ));
    }
    let duration = json!({"type": "number", "minimum": 0, "maximum": MAX_DURATION_MS});
    table.push(("simulateDelay", "duration", duration.clone()));
    table.push(("simulateTimeout", "duration", duration));
    table.push((
        "simulateErrors",
        "rate",
        json!({"type": "number", "minimum": 0, "maximum": 1}),
    ));
    table
}

/// Writes [`strict_parameters`] into the document.
#[derive(Debug)]
pub struct StrictParameters;

impl Modify for StrictParameters {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let table = strict_parameters();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let id = operation.operation_id.clone().unwrap_or_default();
                for parameter in operation.parameters.iter_mut().flatten() {
                    let Some((_, _, schema)) = table
                        .iter()
                        .find(|(op, name, _)| *op == id && *name == parameter.name)
                    else {
                        continue;
                    };
                    if let Ok(schema) = serde_json::from_value::<Schema>(schema.clone()) {
                        parameter.schema = Some(RefOr::T(schema));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::openapi::document_json;
    use aiops_telemetry_core::TraceId;
    use regex::Regex;

    #[test]
    fn every_strict_parameter_is_in_the_document_with_its_schema() {
        let document: Value = serde_json::from_str(document_json()).expect("valid JSON");
        for (operation_id, name, schema) in strict_parameters() {
            let found = document["paths"]
                .as_object()
                .expect("paths")
                .values()
                .flat_map(|item| item.as_object().expect("item").values())
                .find(|operation| operation["operationId"] == operation_id)
                .unwrap_or_else(|| panic!("{operation_id} is documented"));
            let parameter = found["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .find(|parameter| parameter["name"] == name)
                .unwrap_or_else(|| panic!("{operation_id} documents {name}"));
            let written: Schema = serde_json::from_value(schema).expect("a schema");
            assert_eq!(
                parameter["schema"],
                serde_json::to_value(written).expect("serializes"),
                "{operation_id} {name}"
            );
            assert!(
                parameter["schema"]["type"].is_string(),
                "{operation_id} {name}"
            );
        }
    }

    #[test]
    fn the_trace_id_pattern_accepts_what_the_handler_accepts() {
        // The regex crate has no look-ahead: the all-zero exclusion is checked by hand.
        let shape = Regex::new("^[0-9a-f]{32}$").expect("valid");
        for text in [
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00000000000000000000000000000000",
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            "4bf92f3577b34da6a3ce929d0e0e473",
            "4bf92f3577b34da6a3ce929d0e0e4736\n",
            "",
        ] {
            let documented = shape.is_match(text) && text != "0".repeat(32);
            assert_eq!(TraceId::from_hex(text).is_ok(), documented, "{text:?}");
        }
        assert!(TRACE_ID_PATTERN.starts_with("^(?!0{32}$)"));
    }
}
