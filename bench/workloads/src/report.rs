//! The results as markdown: a table of fault classes by magnitude, a table of healthy
//! classes, a summary line, the targets block (each of the project's targets with its result
//! and `met` or `missed`), and (verbose) the misses.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::case::{Case, FaultClass, Scenario};
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
    visible: usize,
    detected_visible: usize,
    to_right: Vec<f64>,
    to_right_visible: Vec<f64>,
    to_any: Vec<f64>,
    both_named: usize,
    false_incidents: usize,
    cases_with_false: usize,
    folded: usize,
}

impl Row {
    fn add(&mut self, score: &CaseScore) {
        self.cases += 1;
        self.faults += score.faults.len();
        self.incidents += score.incidents_during;
        self.false_incidents += score.false_incidents;
        self.folded += score.folded;
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
        if fault.visible {
            self.visible += 1;
            self.detected_visible += usize::from(fault.detected);
            self.to_right_visible.extend(fault.to_right_secs);
        }
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
            "{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
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
            self.share(self.visible),
            if self.visible == 0 {
                "-".to_owned()
            } else {
                format!("{:.2}", self.detected_visible as f64 / self.visible as f64)
            },
            median_p90(&self.to_right_visible),
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
        "| fault class | magnitude | cases | detected | top-1 svc | top-3 svc | top-1 endpoint/edge | top-3 endpoint/edge | incidents per fault | to right cause, median / p90 (s) | to any incident, median / p90 (s) | visible | detected of visible | to right cause over visible, median / p90 (s) |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
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
        match score.scenario {
            Scenario::Fault(..) => faults.add(score),
            Scenario::Healthy(..) => healthy.add(score),
            Scenario::Evidence(..) => {}
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
        "\nIncidents folded into another when a revised root cause showed both were one problem (counted as one): {} in fault cases, {} in healthy cases.",
        faults.folded, healthy.folded
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
    out.push_str(&targets(scores));
    out.push_str(&crate::report_evidence::tables(scores));
    out
}

/// Detection of visible faults, per fault class.
const DETECTION_TARGET: f64 = 0.95;
/// Top-1 service over detected visible faults.
const TOP1_TARGET: f64 = 0.90;
/// Top-3 service over detected visible faults.
const TOP3_TARGET: f64 = 0.97;
/// Detected single-fault cases with exactly one incident.
const ONE_INCIDENT_TARGET: f64 = 0.90;
/// Concurrent-fault cases in which both places are the root cause of an incident.
const BOTH_NAMED_TARGET: f64 = 0.90;

/// Sums over the faults of one fault class, for the targets.
#[derive(Default)]
struct ClassTargets {
    faults: usize,
    visible: usize,
    /// Visible and detected.
    detected: usize,
    /// Of the detected visible faults.
    top1: usize,
    top3: usize,
    /// Detected visible faults alone in their case, and those with exactly one incident.
    single: usize,
    one_incident: usize,
    /// Incidents during the faults, shared among a case's faults, over detected visible faults.
    incidents: f64,
    /// Seconds to the right cause, over visible faults.
    to_right: Vec<f64>,
}

impl ClassTargets {
    fn add(&mut self, score: &CaseScore) {
        let k = score.faults.len();
        for fault in &score.faults {
            self.faults += 1;
            if !fault.visible {
                continue;
            }
            self.visible += 1;
            self.to_right.extend(fault.to_right_secs);
            if !fault.detected {
                continue;
            }
            self.detected += 1;
            self.top1 += usize::from(fault.top1);
            self.top3 += usize::from(fault.top3);
            self.incidents += score.incidents_during as f64 / k as f64;
            if k == 1 {
                self.single += 1;
                self.one_incident += usize::from(score.incidents_during == 1);
            }
        }
    }
}

/// Counts of targets met, missed, and without a case to judge.
#[derive(Default)]
struct Tally {
    met: usize,
    missed: usize,
    unjudged: usize,
}

impl Tally {
    /// `met` or `missed` for `hits` of `total` against `target`, counted; `None` (counted as
    /// unjudged) when `total` is 0.
    fn verdict(&mut self, hits: usize, total: usize, target: f64) -> Option<&'static str> {
        if total == 0 {
            self.unjudged += 1;
            None
        } else if hits as f64 / total as f64 >= target {
            self.met += 1;
            Some("met")
        } else {
            self.missed += 1;
            Some("missed")
        }
    }

    /// `share (hits/total) met|missed` against `target`, counted; `-` when `total` is 0.
    fn judge(&mut self, hits: usize, total: usize, target: f64) -> String {
        match self.verdict(hits, total, target) {
            Some(verdict) => format!("{} {verdict}", plain(hits, total)),
            None => "-".to_owned(),
        }
    }
}

/// `share (hits/total)` with no verdict, or `-`.
fn plain(hits: usize, total: usize) -> String {
    if total == 0 {
        "-".to_owned()
    } else {
        format!("{:.2} ({hits}/{total})", hits as f64 / total as f64)
    }
}

/// The targets block: each of the project's targets, its result on `scores` and whether it
/// was met.
fn targets(scores: &[CaseScore]) -> String {
    let mut classes: BTreeMap<FaultClass, ClassTargets> = BTreeMap::new();
    let mut all = ClassTargets::default();
    let (mut healthy_cases, mut healthy_false, mut healthy_with_false) = (0, 0, 0);
    let (mut pairs, mut pairs_visible, mut named, mut named_visible) = (0, 0, 0, 0);
    for score in scores {
        match score.scenario {
            Scenario::Fault(class, _) => {
                classes.entry(class).or_default().add(score);
                all.add(score);
                if let Some(both) = score.both_named {
                    let visible = score.faults.iter().all(|f| f.visible);
                    pairs += 1;
                    pairs_visible += usize::from(visible);
                    named += usize::from(both);
                    named_visible += usize::from(both && visible);
                }
            }
            Scenario::Evidence(..) => {}
            Scenario::Healthy(_) => {
                healthy_cases += 1;
                healthy_false += score.false_incidents;
                healthy_with_false += usize::from(score.false_incidents > 0);
            }
        }
    }
    let mut tally = Tally::default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n**Targets.** Detection over the faults visible in traces (at least +{} ms and +{:.0}% on the faulty place's own time, errors at {:.0}% or more, hangs, early returns dropping {:.0}% of an edge's calls and {:.0} deviations of its count in a minute); top-k, one incident and incidents per fault over the visible faults detected; time to the right cause over the visible faults.\n",
        crate::visibility::MIN_ADDED_MS,
        crate::visibility::MIN_GROWTH * 100.0,
        crate::visibility::MIN_ERROR_RATE * 100.0,
        crate::visibility::MIN_DROPPED_SHARE * 100.0,
        crate::visibility::MIN_DROPPED_DEVIATIONS,
    );
    let _ = writeln!(
        out,
        "| fault class | faults | visible | detected >= {DETECTION_TARGET:.2} | top-1 svc >= {TOP1_TARGET:.2} | top-3 svc >= {TOP3_TARGET:.2} | one incident >= {ONE_INCIDENT_TARGET:.2} | incidents per detected fault | to right cause, median / p90 (s) |"
    );
    out.push_str("|---|---:|---:|---|---|---|---|---:|---:|\n");
    let incidents_per_fault = |t: &ClassTargets| {
        if t.detected == 0 {
            "-".to_owned()
        } else {
            format!("{:.2}", t.incidents / t.detected as f64)
        }
    };
    for (class, t) in &classes {
        let one_incident = if *class == FaultClass::TwoFaults {
            "-".to_owned()
        } else {
            tally.judge(t.one_incident, t.single, ONE_INCIDENT_TARGET)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            class.name(),
            t.faults,
            t.visible,
            tally.judge(t.detected, t.visible, DETECTION_TARGET),
            tally.judge(t.top1, t.detected, TOP1_TARGET),
            tally.judge(t.top3, t.detected, TOP3_TARGET),
            one_incident,
            incidents_per_fault(t),
            median_p90(&t.to_right),
        );
    }
    let _ = writeln!(
        out,
        "| **all faults** | {} | {} | {} | {} | {} | {} | {} | {} |",
        all.faults,
        all.visible,
        plain(all.detected, all.visible),
        plain(all.top1, all.detected),
        plain(all.top3, all.detected),
        plain(all.one_incident, all.single),
        incidents_per_fault(&all),
        median_p90(&all.to_right),
    );
    out.push_str("\n| other target | result | target | verdict |\n|---|---|---|---|\n");
    if healthy_cases > 0 {
        // Met when every healthy case is free of false incidents.
        let clean = healthy_cases - healthy_with_false;
        let _ = writeln!(
            out,
            "| false incidents in healthy cases | {healthy_false} ({healthy_with_false} of {healthy_cases} cases with any) | 0 | {} |",
            tally.verdict(clean, healthy_cases, 1.0).unwrap_or("-")
        );
    }
    if pairs > 0 {
        let _ = writeln!(
            out,
            "| two concurrent faults: both places root causes of incidents, cases with both faults visible | {} (all cases: {named} of {pairs}) | >= {BOTH_NAMED_TARGET:.2} | {} |",
            plain(named_visible, pairs_visible),
            tally
                .verdict(named_visible, pairs_visible, BOTH_NAMED_TARGET)
                .unwrap_or("-"),
        );
    }
    let _ = writeln!(
        out,
        "\n**Targets:** {} met, {} missed, {} without a visible case to judge.",
        tally.met, tally.missed, tally.unjudged
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
            "  truth: {} -> {} (at +{} s; {})",
            fault.truth.label,
            fault.truth.node,
            (fault.injected.start_ns - crate::case::T0) / 1_000_000_000,
            fault.visibility
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::HealthyClass;

    fn fault(visible: bool, detected: bool, top1: bool) -> FaultScore {
        FaultScore {
            visible,
            detected,
            top1,
            top3: top1,
            top1_endpoint: top1,
            top3_endpoint: top1,
            to_right_secs: top1.then_some(10.0),
            to_any_secs: detected.then_some(10.0),
        }
    }

    fn case(
        scenario: Scenario,
        faults: Vec<FaultScore>,
        during: usize,
        false_: usize,
    ) -> CaseScore {
        let both_named = (faults.len() == 2).then(|| faults.iter().all(|f| f.top1));
        CaseScore {
            scenario,
            seed: 1,
            faults,
            incidents_during: during,
            false_incidents: false_,
            false_after_warm_up: 0,
            folded: 0,
            both_named,
            ranked: Vec::new(),
            deployments: Default::default(),
        }
    }

    #[test]
    fn the_targets_block_judges_visible_faults_and_counts_verdicts() {
        let delay = Scenario::Fault(FaultClass::NetworkDelay, 0);
        let pair = Scenario::Fault(FaultClass::TwoFaults, 1);
        let scores = [
            // Two visible delays, both detected and named, one with two incidents; one
            // invisible delay, missed, which no target counts.
            case(delay, vec![fault(true, true, true)], 1, 0),
            case(delay, vec![fault(true, true, true)], 2, 0),
            case(delay, vec![fault(false, false, false)], 0, 0),
            // A pair with both faults visible and named; one with an invisible fault.
            case(
                pair,
                vec![fault(true, true, true), fault(true, true, true)],
                2,
                0,
            ),
            case(
                pair,
                vec![fault(true, true, true), fault(false, true, false)],
                1,
                0,
            ),
            case(Scenario::Healthy(HealthyClass::Steady), Vec::new(), 0, 0),
        ];
        let block = targets(&scores);
        let row = |name: &str| {
            block
                .lines()
                .find(|l| l.starts_with(&format!("| {name} |")))
                .unwrap_or_else(|| panic!("{block}"))
                .to_owned()
        };
        assert_eq!(
            row("network delay"),
            "| network delay | 3 | 2 | 1.00 (2/2) met | 1.00 (2/2) met | 1.00 (2/2) met | 0.50 (1/2) missed | 1.50 | 10 / 10 |"
        );
        assert!(row("two concurrent faults").contains("| 4 | 3 | 1.00 (3/3) met |"));
        assert!(row("two concurrent faults").contains("met | - | 0.83 |"));
        assert!(row("false incidents in healthy cases").ends_with("| 0 | met |"));
        assert!(
            row("two concurrent faults: both places root causes of incidents, cases with both faults visible")
                .contains("1.00 (1/1) (all cases: 1 of 2) | >= 0.90 | met |"),
            "{block}"
        );
        assert!(block.contains("**Targets:** 8 met, 1 missed, 0 without a visible case to judge."));
    }
}
