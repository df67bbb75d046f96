//! The incident page's clues beyond timing: a deployment blamed, the attributes that explain
//! the anomalous requests, new log patterns and exceptions, and the changes near the start.

use maud::{Markup, html};

use crate::views::incident::Incident;

/// The clues of `incident`, nothing when it has none.
pub fn render(incident: &Incident) -> Markup {
    let deployment = incident.root_cause.deployment.as_ref();
    html! {
        @if let Some(deployment) = deployment {
            section.cause-box aria-labelledby="deployment-title" {
                h2 #deployment-title { "Root cause: deployment" }
                p.cause {
                    strong { (deployment.service) } " " (deployment.version)
                    @if let Some(previous) = &deployment.previous_version { " (from " (previous) ")" }
                    " at " time datetime=(deployment.deployed_at) { (deployment.deployed_at) }
                    " · " (deployment.source)
                }
                p { (deployment.description) }
            }
        }
        @if !incident.insights.is_empty() {
            section aria-labelledby="insights-title" {
                h2 #insights-title { "What the anomalous requests share" }
                ul { @for insight in &incident.insights { li { (insight.description) } } }
            }
        }
        @if !incident.new_exceptions.is_empty() || !incident.log_patterns.is_empty() {
            section aria-labelledby="logs-title" {
                h2 #logs-title { "Exceptions and logs" }
                ul {
                    @for exception in &incident.new_exceptions {
                        li { (exception.description) " (" (exception.count) " times since " (exception.first_seen) ")" }
                    }
                    @for pattern in &incident.log_patterns {
                        li {
                            @if pattern.new { "New " } @else { "Risen " }
                            @if pattern.error { "error " }
                            "log pattern in " (pattern.service) " " (pattern.operation) ": "
                            code { (pattern.template) } " (" (pattern.count) " records)"
                            @if !pattern.examples.is_empty() {
                                ul { @for example in &pattern.examples { li { code { (example) } } } }
                            }
                        }
                    }
                }
            }
        }
        @if !incident.changes.is_empty() {
            section aria-labelledby="changes-title" {
                h2 #changes-title { "Changes near the start (" (incident.changes.len()) ")" }
                div.scroll { table {
                    thead { tr {
                        th scope="col" { "Time" } th scope="col" { "Service" } th scope="col" { "Kind" }
                        th scope="col" { "Change" } th scope="col" { "Source" }
                    } }
                    tbody {
                        @for change in &incident.changes {
                            tr {
                                td { time datetime=(change.time) { (change.time) } }
                                th scope="row" { (change.service) }
                                td { (change.kind) }
                                td {
                                    @if let Some(version) = &change.version {
                                        @if let Some(previous) = &change.previous_version { (previous) " → " }
                                        (version)
                                    }
                                    @if let Some(description) = &change.description { " " (description) }
                                }
                                td { (change.source) }
                            }
                        }
                    }
                } }
            }
        }
    }
}
