//! `/map`: the service map. Services (and the dependencies they call without spans of their
//! own) are nodes, calls are edges with rate, error rate and latency, laid out in layers on the
//! server ([`Layout`]) and drawn as inline SVG. The root cause of each active incident is lit
//! and the endpoints it affects are marked. Each node links to the list of its endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actix_web::web;
use aiops_analyzer::HealthStatus;
use aiops_engine::IncidentStatus;
use aiops_telemetry_core::TimeWindow;
use maud::{Markup, html};

use super::graph_layout::Layout;
use super::page::{Page, Section};
use super::{endpoint_href, incident_href, status_class, word};
use crate::api_error::ApiError;
use crate::clock::now_unix_nanos;
use crate::state::AppState;
use crate::views::endpoint::EndpointName;
use crate::views::incident::Incident;
use crate::views::topology::{DependencyEdge, Topology};

/// An endpoint listed under its node.
#[derive(Clone, Debug, PartialEq)]
pub struct MapEndpoint {
    /// Its names.
    pub name: EndpointName,
    /// Its health in the latest cycle.
    pub status: HealthStatus,
}

/// What the map shows.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceMap {
    /// The dependency graph of recent traces.
    pub topology: Topology,
    /// How long the topology's window is, in seconds, for call rates.
    pub window_secs: f64,
    /// The active incidents.
    pub incidents: Vec<Incident>,
    /// Every endpoint of the latest cycle.
    pub endpoints: Vec<MapEndpoint>,
}

/// Gathers the map: the topology of the detection window from the engine's trace buffer, the
/// active incidents and the endpoints of the latest cycle from the actor.
pub async fn gather(state: &web::Data<AppState>) -> Result<ServiceMap, ApiError> {
    let settings = &state.settings;
    let naming = &settings.endpoint_naming;
    let length = settings.analysis_window.max(Duration::from_secs(1));
    let over = TimeWindow::ending_at(
        now_unix_nanos(),
        u64::try_from(length.as_nanos()).unwrap_or(u64::MAX),
    );
    let topology = Topology::new(naming, &state.engine.topology(over), &over);
    let incidents = state
        .analysis
        .incidents(Some(IncidentStatus::Active))
        .await?;
    let status = state.analysis.status().await?;
    let endpoints = status
        .last_cycle
        .map(|cycle| {
            cycle
                .report
                .endpoints
                .iter()
                .map(|assessment| MapEndpoint {
                    name: EndpointName::new(naming, &assessment.endpoint),
                    status: assessment.health.status,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ServiceMap {
        topology,
        window_secs: length.as_secs_f64(),
        incidents: Incident::newest_first(naming, &incidents),
        endpoints,
    })
}

/// The map page; it refreshes itself.
pub fn page(map: &ServiceMap) -> Page {
    Page {
        title: "Service map".to_owned(),
        section: Section::Map,
        refresh_secs: Some(10),
        charts: false,
        main: render(map),
    }
}

/// The graph drawn: nodes by name, edges between them. Services when calls cross services;
/// endpoints otherwise (a single service such as the demo shop shows its endpoints' calls).
struct Drawn<'a> {
    by_endpoint: bool,
    nodes: Vec<String>,
    edges: Vec<(usize, usize, &'a DependencyEdge)>,
}

fn drawn(map: &ServiceMap) -> Drawn<'_> {
    let services: BTreeSet<&str> = map
        .endpoints
        .iter()
        .map(|e| e.name.service.as_str())
        .chain(map.topology.services.iter().map(String::as_str))
        .collect();
    let by_endpoint = map.topology.edges.is_empty() && services.len() <= 1;
    let (edges, singles): (&[DependencyEdge], Vec<String>) = if by_endpoint {
        (
            &map.topology.endpoint_edges,
            map.endpoints
                .iter()
                .map(|e| e.name.endpoint.clone())
                .collect(),
        )
    } else {
        (
            &map.topology.edges,
            map.endpoints
                .iter()
                .map(|e| e.name.service.clone())
                .collect(),
        )
    };
    let names: BTreeSet<String> = edges
        .iter()
        .flat_map(|edge| [edge.caller.clone(), edge.callee.clone()])
        .chain(singles)
        .collect();
    let nodes: Vec<String> = names.into_iter().collect();
    let index = |name: &str| nodes.binary_search_by(|node| node.as_str().cmp(name)).ok();
    let edges = edges
        .iter()
        .filter_map(|edge| Some((index(&edge.caller)?, index(&edge.callee)?, edge)))
        .collect();
    Drawn {
        by_endpoint,
        nodes,
        edges,
    }
}

const COLUMN: f64 = 380.0;
const ROW: f64 = 90.0;
const NODE_WIDTH: f64 = 170.0;
const NODE_HEIGHT: f64 = 44.0;
const MARGIN: f64 = 20.0;
/// The width the grid of nodes without calls fills at least, and the gap between its columns.
const GRID_WIDTH: f64 = 1200.0;
const GRID_GAP: f64 = 24.0;

/// The map's main content.
pub fn render(map: &ServiceMap) -> Markup {
    let graph = drawn(map);
    let pairs: Vec<(usize, usize)> = graph.edges.iter().map(|(a, b, _)| (*a, *b)).collect();
    let (centres, width, height) = positions(graph.nodes.len(), &pairs);
    let centre = |node: usize| centres[node];
    // What incidents light: root causes, and the nodes they affect.
    let node_of = |service: &str, endpoint: &str| {
        if graph.by_endpoint {
            endpoint.to_owned()
        } else {
            service.to_owned()
        }
    };
    let roots: BTreeMap<String, &Incident> = map
        .incidents
        .iter()
        .map(|incident| {
            let cause = &incident.root_cause;
            (node_of(&cause.service, &cause.endpoint), incident)
        })
        .collect();
    let service_of: BTreeMap<&str, &str> = map
        .endpoints
        .iter()
        .map(|e| (e.name.endpoint.as_str(), e.name.service.as_str()))
        .collect();
    let affected: BTreeSet<String> = map
        .incidents
        .iter()
        .flat_map(|incident| incident.affected_endpoints.iter())
        .map(|endpoint| {
            let service = service_of.get(endpoint.as_str()).copied().unwrap_or("");
            node_of(service, endpoint)
        })
        .collect();
    let instrumented: BTreeSet<String> = map
        .endpoints
        .iter()
        .map(|e| node_of(&e.name.service, &e.name.endpoint))
        .collect();
    html! {
        h1 { "Service map" }
        p.meta {
            (if graph.by_endpoint { "Endpoints" } else { "Services" }) " and their calls in the last "
            (format!("{:.0}", map.window_secs)) " s, from " (map.topology.traces) " recent traces. "
            @if map.incidents.is_empty() { "No active incidents." }
            @else { "Lit: the root cause of each active incident; marked: what it affects." }
        }
        @if graph.nodes.is_empty() {
            p { "No traces seen yet." }
        } @else {
            div.map-frame {
                svg.map viewBox=(format!("0 0 {width:.0} {height:.0}")) width=(format!("{width:.0}")) role="group" aria-label="Service map" {
                    defs {
                        marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse" {
                            path d="M 0 0 L 10 5 L 0 10 z" {}
                        }
                    }
                    @for (from, to, edge) in &graph.edges {
                        @let (x1, y1) = centre(*from);
                        @let (x2, y2) = centre(*to);
                        @let (sx, ex) = (x1 + NODE_WIDTH / 2.0, x2 - NODE_WIDTH / 2.0);
                        @let on_path = (roots.contains_key(&graph.nodes[*from]) || affected.contains(&graph.nodes[*from]))
                            && (roots.contains_key(&graph.nodes[*to]) || affected.contains(&graph.nodes[*to]));
                        @let label = format!("{:.1}/s · {} · {}", edge.calls as f64 / map.window_secs.max(1.0),
                            edge.error_rate.map_or("–".to_owned(), |rate| format!("{:.0}% err", rate * 100.0)),
                            edge.mean_latency_ms.map_or("–".to_owned(), |ms| format!("{ms:.0} ms")));
                        g.edge.path[on_path].failing[edge.errors > 0] {
                            title { (edge.caller) " → " (edge.callee) ": " (label) }
                            path d=(format!("M {sx:.1} {y1:.1} C {:.1} {y1:.1}, {:.1} {y2:.1}, {ex:.1} {y2:.1}", (sx + ex) / 2.0, (sx + ex) / 2.0)) marker-end="url(#arrow)" {}
                            text x=(format!("{:.1}", (sx + ex) / 2.0)) y=(format!("{:.1}", (y1 + y2) / 2.0 - 6.0)) text-anchor="middle" { (label) }
                        }
                    }
                    @for (node, name) in graph.nodes.iter().enumerate() {
                        @let (x, y) = centre(node);
                        @let root = roots.get(name);
                        a href=(format!("#node-{node}")) data-node=(name) {
                            g.node.root[root.is_some()].affected[affected.contains(name)].dependency[!instrumented.contains(name)] {
                                title { (name) @if let Some(incident) = root { " — root cause of " (incident.id) } }
                                rect x=(format!("{:.1}", x - NODE_WIDTH / 2.0)) y=(format!("{:.1}", y - NODE_HEIGHT / 2.0)) width=(NODE_WIDTH) height=(NODE_HEIGHT) rx="8" {}
                                text x=(format!("{x:.1}")) y=(format!("{:.1}", y + 5.0)) text-anchor="middle" { (clip(name, 22)) }
                            }
                        }
                    }
                }
            }
            p.legend {
                span.key.root { "root cause" } " " span.key.affected { "affected" } " " span.key.dependency { "no spans of its own" }
            }
            h2 { (if graph.by_endpoint { "Endpoints" } else { "Services" }) }
            div.nodes {
                @for (node, name) in graph.nodes.iter().enumerate() {
                    section.node-card #(format!("node-{node}")) tabindex="-1" aria-labelledby=(format!("node-{node}-title")) {
                        h3 #(format!("node-{node}-title")) { (name) }
                        @if let Some(incident) = roots.get(name) {
                            p.lit { "Root cause of " a href=(incident_href(&incident.id)) { (incident.id) } ": " (incident.root_cause.description) }
                        }
                        @let listed: Vec<&MapEndpoint> = map.endpoints.iter().filter(|e| node_of(&e.name.service, &e.name.endpoint) == *name).collect();
                        @if listed.is_empty() {
                            p { "Called, but sends no spans: a dependency such as a database or an external API." }
                        } @else {
                            ul {
                                @for endpoint in listed {
                                    li {
                                        a href=(endpoint_href(&endpoint.name.service, &endpoint.name.operation)) { (endpoint.name.endpoint) }
                                        " " span.status.(status_class(endpoint.status)) { (word(&endpoint.status)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Centres of `nodes` nodes joined by `edges`, and the drawing's width and height: nodes with
/// calls laid out in layers ([`Layout`]), each layer centred on the tallest; nodes without
/// any below them in a grid, so that a fleet of services that call no one stays compact.
fn positions(nodes: usize, edges: &[(usize, usize)]) -> (Vec<(f64, f64)>, f64, f64) {
    let mut linked = vec![false; nodes];
    for &(from, to) in edges {
        linked[from] = true;
        linked[to] = true;
    }
    let joined: Vec<usize> = (0..nodes).filter(|&node| linked[node]).collect();
    let mut slot = vec![usize::MAX; nodes];
    for (index, &node) in joined.iter().enumerate() {
        slot[node] = index;
    }
    let local: Vec<(usize, usize)> = edges
        .iter()
        .map(|&(from, to)| (slot[from], slot[to]))
        .collect();
    let layout = Layout::new(joined.len(), &local);
    let mut per_layer = vec![0usize; layout.layers];
    for place in &layout.places {
        per_layer[place.layer] += 1;
    }
    let mut centres = vec![(0.0, 0.0); nodes];
    for (index, &node) in joined.iter().enumerate() {
        let place = layout.places[index];
        let offset = (layout.rows - per_layer[place.layer]) as f64 * ROW / 2.0;
        centres[node] = (
            MARGIN + place.layer as f64 * COLUMN + NODE_WIDTH / 2.0,
            MARGIN + offset + place.row as f64 * ROW + NODE_HEIGHT / 2.0,
        );
    }
    let layered_width = if joined.is_empty() {
        0.0
    } else {
        (layout.layers as f64 - 1.0) * COLUMN + NODE_WIDTH
    };
    let layered_height = layout.rows as f64 * ROW;
    let alone: Vec<usize> = (0..nodes).filter(|&node| !linked[node]).collect();
    let grid_columns = ((layered_width.max(GRID_WIDTH) + GRID_GAP) / (NODE_WIDTH + GRID_GAP))
        .floor()
        .max(1.0) as usize;
    for (index, &node) in alone.iter().enumerate() {
        let (column, row) = (index % grid_columns, index / grid_columns);
        centres[node] = (
            MARGIN + column as f64 * (NODE_WIDTH + GRID_GAP) + NODE_WIDTH / 2.0,
            MARGIN + layered_height + row as f64 * ROW + NODE_HEIGHT / 2.0,
        );
    }
    let grid_width = alone.len().min(grid_columns) as f64 * (NODE_WIDTH + GRID_GAP);
    let grid_rows = alone.len().div_ceil(grid_columns) as f64;
    let width = MARGIN * 2.0 + layered_width.max(grid_width - GRID_GAP).max(NODE_WIDTH);
    let height =
        MARGIN * 2.0 + (layered_height + grid_rows * ROW - (ROW - NODE_HEIGHT)).max(NODE_HEIGHT);
    (centres, width, height)
}

/// `name` cut to `limit` characters, with an ellipsis.
fn clip(name: &str, limit: usize) -> String {
    if name.chars().count() <= limit {
        name.to_owned()
    } else {
        let mut cut: String = name.chars().take(limit - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_are_drawn_left_of_callees_and_nodes_without_calls_in_a_grid_below() {
        // 0 -> 1, and 2..=11 call no one.
        let (centres, width, height) = positions(12, &[(0, 1)]);
        assert!(centres[0].0 < centres[1].0);
        assert_eq!(centres[0].1, centres[1].1);
        let grid: Vec<(f64, f64)> = centres[2..].to_vec();
        assert!(grid.iter().all(|(_, y)| *y > centres[0].1));
        for (index, a) in grid.iter().enumerate() {
            for b in &grid[index + 1..] {
                assert!(
                    (a.0 - b.0).abs() >= NODE_WIDTH || (a.1 - b.1).abs() >= NODE_HEIGHT,
                    "{a:?} overlaps {b:?}"
                );
            }
        }
        assert!(
            grid.iter()
                .all(|(x, y)| *x + NODE_WIDTH / 2.0 <= width && *y + NODE_HEIGHT / 2.0 <= height)
        );
        assert!(
            height < 5.0 * ROW,
            "ten lone nodes take two rows, not ten: {height}"
        );
    }
}
