//! The results as markdown: a table of fault classes by magnitude, a table of healthy
//! classes, a summary line, and (verbose) the misses.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::case::{Case, Scenario};
use crate::runner::Outcome;
use crate::score::{CaseScore, FaultScore};

/// Sums over the faults of one row.
#[derive(Default)]
struct Row {
    cases: usize,
    faults: usize,
    detected: usize,
    top1: usize,
    top3: usize,
    top1_endpoint: usize,
    top3_endpoint: usize,
    incidents: usize,
    to_right: Vec<f64>,
    to_any: Vec<f64>,
    both_named: usize,
    false_incidents: usize,
    cases_with_false: usize,
}

impl Row {
    fn add(&mut self, score: &CaseScore) {
        self.cases += 1;
        self.faults += score.faults.len();
        self.incidents += score.incidents_during;
        self.false_incidents += score.false_incidents;
        self.cases_with_false += usize::from(score.false_incidents > 0);
        self.both_named += usize::from(score.both_named == Some(true));
        for fault in &score.faults {
            self.add_fault(fault);
        }
    }

    fn add_fault(&mut self, fault: &FaultScore) {
        self.detected += usize::from(fault.detected);
        self.top1 += usize::from(fault.top1);
        self.top3 += usize::from(fault.top3);
        self.top1_endpoint += usize::from(fault.top1_endpoint);
        self.top3_endpoint += usize::from(fault.top3_endpoint);
        self.to_right.extend(fault.to_right_secs);
        self.to_any.extend(fault.to_any_secs);
    }

    fn share(&self, count: usize) -> String {
        if self.faults == 0 {
            "-".to_owned()
        } else {
            format!("{:.2}", count as f64 / self.faults as f64)
        }
    }

    fn fault_cells(&self) -> String {
        format!(
            "{} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.cases,
            self.share(self.detected),
            self.share(self.top1),
            self.share(self.top3),
            self.share(self.top1_endpoint),
            self.share(self.top3_endpoint),
            if self.faults == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}", self.incidents as f64 / self.faults as f64)
            },
            median_p90(&self.to_right),
            median_p90(&self.to_any),
        )
    }
}

/// `median / p90` of `secs`, or `-`.
fn median_p90(secs: &[f64]) -> String {
    if secs.is_empty() {
        return "-".to_owned();
    }
    let mut sorted = secs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    format!("{:.0} / {:.0}", at(0.5), at(0.9))
}

/// The tables and summary of `scores`.
pub fn tables(scores: &[CaseScore]) -> String {
    let mut rows: BTreeMap<Scenario, Row> = BTreeMap::new();
    for score in scores {
        rows.entry(score.scenario).or_default().add(score);
    }
    let mut out = String::new();
    let mut faults = Row::default();
    let mut healthy = Row::default();
    out.push_str(
        "| fault class | magnitude | cases | detected | top-1 svc | top-3 svc | top-1 endpoint/edge | top-3 endpoint/edge | incidents per fault | to right cause, median / p90 (s) | to any incident, median / p90 (s) |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut two_faults = Row::default();
    for (scenario, row) in &rows {
        if let Scenario::Fault(class, bucket) = scenario {
            let _ = writeln!(
                out,
                "| {} | {} | {}",
                class.name(),
                class.buckets()[*bucket],
                row.fault_cells()
            );
            if *class == crate::case::FaultClass::TwoFaults {
                two_faults.cases += row.cases;
                two_faults.both_named += row.both_named;
            }
        }
    }
    for score in scores {
        if matches!(score.scenario, Scenario::Fault(..)) {
            faults.add(score);
        } else {
            healthy.add(score);
        }
    }
    let _ = writeln!(out, "| **all faults** | | {}", faults.fault_cells());
    if two_faults.cases > 0 {
        let _ = writeln!(
            out,
            "\nTwo concurrent faults: both places are the root cause of an incident in {} of {} cases.",
            two_faults.both_named, two_faults.cases
        );
    }
    out.push_str("\n| healthy class | cases | false incidents | per case | cases with any |\n");
    out.push_str("|---|---:|---:|---:|---:|\n");
    for (scenario, row) in &rows {
        if let Scenario::Healthy(class) = scenario {
            let _ = writeln!(out, "| {} | {} |", class.name(), false_cells(row));
        }
    }
    let _ = writeln!(out, "| **all healthy** | {} |", false_cells(&healthy));
    let _ = writeln!(
        out,
        "\nFalse incidents before the fault in fault cases: {} in {} of {} cases.",
        faults.false_incidents, faults.cases_with_false, faults.cases
    );
    let _ = writeln!(
        out,
        "\n**Summary:** {} faults: detected {}, top-1 service {}, top-3 service {}, top-1 endpoint/edge {}, {} incidents per fault, right cause after {} s (median / p90); {:.2} false incidents per healthy case, {:.2} per fault case before its fault.",
        faults.faults,
        faults.share(faults.detected),
        faults.share(faults.top1),
        faults.share(faults.top3),
        faults.share(faults.top1_endpoint),
        if faults.faults == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}", faults.incidents as f64 / faults.faults as f64)
        },
        median_p90(&faults.to_right),
        healthy.false_incidents as f64 / healthy.cases.max(1) as f64,
        faults.false_incidents as f64 / faults.cases.max(1) as f64,
    );
    out
}

fn false_cells(row: &Row) -> String {
    format!(
        "{} | {} | {:.2} | {}",
        row.cases,
        row.false_incidents,
        row.false_incidents as f64 / row.cases.max(1) as f64,
        row.cases_with_false
    )
}

/// A listing of what went wrong in one case, or `None` when nothing did.
pub fn miss(case: &Case, score: &CaseScore, outcome: &Outcome) -> Option<String> {
    if score.is_clean() {
        return None;
    }
    let mut out = format!(
        "seed {} ({}; {} services, {} dependencies, warm-up {} s)\n",
        case.seed,
        case.scenario.name(),
        case.topology.services.len(),
        case.topology.dependencies.len(),
        case.warm_up_secs
    );
    for fault in &case.faults {
        let _ = writeln!(
            out,
            "  truth: {} -> {} (at +{} s)",
            fault.truth.label,
            fault.truth.node,
            (fault.injected.start_ns - crate::case::T0) / 1_000_000_000
        );
    }
    let _ = writeln!(out, "  named: {:?}", score.ranked);
    for incident in &outcome.incidents {
        let when = (incident.opened_ns - crate::case::T0) / 1_000_000_000;
        let candidates: Vec<String> = incident
            .candidates
            .iter()
            .take(4)
            .map(|(service, endpoint, score)| format!("{service} {endpoint} {score:.2}"))
            .collect();
        let _ = writeln!(
            out,
            "  +{when} s {} {} [{}] {:.2}: {} | candidates: {}",
            incident.service,
            incident.endpoint,
            incident.kind,
            incident.confidence,
            incident.description,
            candidates.join("; ")
        );
    }
    Some(out)
}
