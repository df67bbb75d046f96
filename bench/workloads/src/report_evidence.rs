//! The table of logs, exceptions and deployments, and its targets.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::case::Scenario;
use crate::evidence::EvidenceClass;
use crate::score::CaseScore;

/// Top-1 service over the code faults that log (defects with no status, caught exceptions).
const LOGGED_TOP1_TARGET: f64 = 0.90;
/// Bad-deployment cases whose deployment is named, within two analysis intervals.
const DEPLOYMENT_TARGET: f64 = 0.95;
/// The analysis interval the suite runs with, in seconds (the engine's default).
const INTERVAL_SECS: f64 = 5.0;

#[derive(Default)]
struct Row {
    cases: usize,
    faults: usize,
    detected: usize,
    top1: usize,
    top3: usize,
    named: usize,
    named_soon: usize,
    bad_deployments: usize,
    false_blames: usize,
    false_incidents: usize,
    false_after_warm_up: usize,
}

impl Row {
    fn add(&mut self, score: &CaseScore) {
        self.cases += 1;
        self.false_incidents += score.false_incidents;
        self.false_after_warm_up += score.false_after_warm_up;
        self.false_blames += score.deployments.false_blames;
        for fault in &score.faults {
            self.faults += 1;
            self.detected += usize::from(fault.detected);
            self.top1 += usize::from(fault.top1);
            self.top3 += usize::from(fault.top3);
        }
        if let Some(named) = score.deployments.named {
            self.bad_deployments += 1;
            self.named += usize::from(named);
            self.named_soon += usize::from(
                score
                    .deployments
                    .after_opening_secs
                    .is_some_and(|secs| secs <= 2.0 * INTERVAL_SECS),
            );
        }
    }
}

fn share(hits: usize, total: usize) -> String {
    if total == 0 {
        "-".to_owned()
    } else {
        format!("{:.2}", hits as f64 / total as f64)
    }
}

fn judged(hits: usize, total: usize, target: f64) -> String {
    if total == 0 {
        return "-".to_owned();
    }
    let verdict = if hits as f64 / total as f64 >= target {
        "met"
    } else {
        "missed"
    };
    format!(
        "{:.2} ({hits}/{total}) {verdict}",
        hits as f64 / total as f64
    )
}

/// The table of the evidence cases in `scores`, and the targets; empty without such cases.
pub fn tables(scores: &[CaseScore]) -> String {
    let mut rows: BTreeMap<(EvidenceClass, usize), Row> = BTreeMap::new();
    let mut logged = Row::default();
    let mut deployments = Row::default();
    let (mut blames_elsewhere, mut cases_elsewhere) = (0, 0);
    for score in scores {
        let Scenario::Evidence(class, bucket) = score.scenario else {
            blames_elsewhere += score.deployments.false_blames;
            cases_elsewhere += 1;
            continue;
        };
        rows.entry((class, bucket)).or_default().add(score);
        match class {
            EvidenceClass::LoggedDefect | EvidenceClass::CaughtException => logged.add(score),
            EvidenceClass::BadDeployment => deployments.add(score),
            _ => {}
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n| logs, exceptions, deployments | variant | cases | detected | top-1 svc | top-3 svc | deployment named | named within 2 intervals of its incident's opening | false deployment blames | false incidents |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for ((class, bucket), row) in &rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            class.name(),
            class.buckets()[*bucket],
            row.cases,
            share(row.detected, row.faults),
            share(row.top1, row.faults),
            share(row.top3, row.faults),
            share(row.named, row.bad_deployments),
            share(row.named_soon, row.bad_deployments),
            row.false_blames,
            row.false_incidents,
        );
    }
    let quiet = |class: EvidenceClass| {
        rows.iter().filter(|((c, _), _)| *c == class).fold(
            (0, 0, 0),
            |(incidents, after, cases), (_, row)| {
                (
                    incidents + row.false_incidents,
                    after + row.false_after_warm_up,
                    cases + row.cases,
                )
            },
        )
    };
    let (noise_incidents, noise_during, noise_cases) = quiet(EvidenceClass::LogNoise);
    let (healthy_deploy_incidents, _, healthy_deploy_cases) =
        quiet(EvidenceClass::HealthyDeployment);
    let healthy_deploy_blames: usize = rows
        .iter()
        .filter(|((c, _), _)| *c == EvidenceClass::HealthyDeployment)
        .map(|(_, row)| row.false_blames)
        .sum();
    let other_blames = blames_elsewhere
        + rows
            .iter()
            .filter(|((c, _), _)| {
                !matches!(
                    c,
                    EvidenceClass::BadDeployment | EvidenceClass::HealthyDeployment
                )
            })
            .map(|(_, row)| row.false_blames)
            .sum::<usize>();
    out.push_str("\n| logs, exceptions, deployments: target | result | target |\n|---|---|---|\n");
    let _ = writeln!(
        out,
        "| top-1 service, code faults that log (no status, caught exceptions) | {} | >= {LOGGED_TOP1_TARGET:.2} |",
        judged(logged.top1, logged.faults, LOGGED_TOP1_TARGET)
    );
    let _ = writeln!(
        out,
        "| bad deployments named as root cause | {} | >= {DEPLOYMENT_TARGET:.2} |",
        judged(
            deployments.named,
            deployments.bad_deployments,
            DEPLOYMENT_TARGET
        )
    );
    let _ = writeln!(
        out,
        "| ... within two analysis intervals of their incident's opening | {} | >= {DEPLOYMENT_TARGET:.2} |",
        judged(
            deployments.named_soon,
            deployments.bad_deployments,
            DEPLOYMENT_TARGET
        )
    );
    let _ = writeln!(
        out,
        "| bad deployments: another deployment blamed | {} | 0 |",
        deployments.false_blames
    );
    let _ = writeln!(
        out,
        "| healthy deployments: deployments blamed, incidents | {healthy_deploy_blames}, {healthy_deploy_incidents} in {healthy_deploy_cases} cases | 0 |"
    );
    let _ = writeln!(
        out,
        "| deployments blamed in every other case ({} cases) | {other_blames} | 0 |",
        cases_elsewhere + logged.cases + noise_cases
    );
    let _ = writeln!(
        out,
        "| log-noise bursts: false incidents once the burst began | {noise_during} in {noise_cases} cases ({noise_incidents} with those of the warm-up before it) | 0 |"
    );
    out
}
