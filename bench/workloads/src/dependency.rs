//! Draws one uninstrumented dependency: a database, a cache or an external API, with the
//! attributes its callers' client spans carry and a heavy-tailed latency.

use aiops_telemetry_core::SpanText;
use rand::Rng;
use rand::rngs::StdRng;

use crate::naming::{self, EXTERNAL_APIS};
use crate::sample::{log_uniform, pick};
use crate::topology::{Dependency, DependencyKind, DependencyOp};

/// A dependency of `kind` used first by the service whose base name is `owner`.
pub fn draw(rng: &mut StdRng, kind: DependencyKind, owner: &str, namespace: &str) -> Dependency {
    match kind {
        DependencyKind::Database => database(rng, owner, namespace),
        DependencyKind::Cache => cache(rng, owner),
        DependencyKind::ExternalApi => external_api(rng),
    }
}

fn database(rng: &mut StdRng, owner: &str, namespace: &str) -> Dependency {
    let system = *pick(rng, &["postgresql", "postgresql", "mysql", "mongodb"]);
    let stem = owner.replace('-', "_");
    let tables = naming::tables(owner);
    let verbs: [&str; 3] = if system == "mongodb" {
        ["find", "insert", "update"]
    } else {
        ["SELECT", "INSERT", "UPDATE"]
    };
    let operations = [
        (verbs[0], &tables[0]),
        (verbs[0], &tables[1]),
        (verbs[1], &tables[0]),
        (verbs[2], &tables[1]),
    ]
    .into_iter()
    .map(|(verb, table)| DependencyOp {
        name: format!("{verb} {table}").into(),
        method: verb,
    })
    .collect();
    let short = match system {
        "postgresql" => "pg",
        "mysql" => "mysql",
        _ => "mongo",
    };
    let host = match rng.random_range(0..3) {
        0 => format!("{owner}-db"),
        1 => format!("{short}-{owner}.internal"),
        _ => format!("{short}-{owner}.{namespace}.svc.cluster.local"),
    };
    let key = if rng.random_bool(0.5) {
        "db.name"
    } else {
        "db.namespace"
    };
    Dependency {
        kind: DependencyKind::Database,
        system: Some(system),
        db_name: Some((key, SpanText::from(stem))),
        host: host.into(),
        peer_service: rng
            .random_bool(0.25)
            .then(|| SpanText::from(format!("{owner}-db"))),
        operations,
        latency_median_ms: log_uniform(rng, 0.3, 3.0),
        latency_sigma: rng.random_range(0.3..0.6),
        tail_probability: rng.random_range(0.01..0.05),
        tail_alpha: rng.random_range(1.5..2.5),
        error_rate: 0.0,
    }
}

fn cache(rng: &mut StdRng, owner: &str) -> Dependency {
    let redis = rng.random_bool(0.8);
    let commands: &[&str] = if redis {
        &["GET", "SET", "HGET", "HSET"]
    } else {
        &["get", "set"]
    };
    // Some Redis instrumentations prefix the command with the system.
    let prefixed = redis && rng.random_bool(0.4);
    let operations = commands
        .iter()
        .map(|command| DependencyOp {
            name: if prefixed {
                format!("redis {command}").into()
            } else {
                SpanText::from(*command)
            },
            method: command,
        })
        .collect();
    let host = match (redis, rng.random_bool(0.5)) {
        (true, true) => format!("redis-{owner}"),
        (false, true) => format!("memcached-{owner}"),
        (_, false) => format!("{owner}-cache"),
    };
    Dependency {
        kind: DependencyKind::Cache,
        system: Some(if redis { "redis" } else { "memcached" }),
        db_name: (redis && rng.random_bool(0.3)).then(|| ("db.namespace", SpanText::from("0"))),
        host: host.into(),
        peer_service: rng
            .random_bool(0.2)
            .then(|| SpanText::from(format!("{owner}-cache"))),
        operations,
        latency_median_ms: log_uniform(rng, 0.2, 1.0),
        latency_sigma: rng.random_range(0.3..0.6),
        tail_probability: rng.random_range(0.01..0.04),
        tail_alpha: rng.random_range(1.5..2.5),
        error_rate: 0.0,
    }
}

fn external_api(rng: &mut StdRng) -> Dependency {
    let (host, peer, method) = *pick(rng, &EXTERNAL_APIS);
    Dependency {
        kind: DependencyKind::ExternalApi,
        system: None,
        db_name: None,
        host: host.into(),
        peer_service: rng.random_bool(0.5).then(|| SpanText::from(peer)),
        operations: vec![DependencyOp {
            name: SpanText::from(method),
            method,
        }],
        latency_median_ms: log_uniform(rng, 30.0, 300.0),
        latency_sigma: rng.random_range(0.25..0.5),
        tail_probability: rng.random_range(0.01..0.03),
        tail_alpha: rng.random_range(2.0..3.0),
        error_rate: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn node_names_follow_the_attribute_rule() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..50 {
            let db = draw(&mut rng, DependencyKind::Database, "order", "default");
            match &db.peer_service {
                Some(peer) => assert_eq!(db.node_name(), peer.as_str()),
                None => assert!(
                    db.node_name() == format!("{}/order", db.system.unwrap_or_default()),
                    "{}",
                    db.node_name()
                ),
            }
            let cache = draw(&mut rng, DependencyKind::Cache, "cart", "default");
            if cache.peer_service.is_none() && cache.db_name.is_none() {
                assert_eq!(cache.node_name(), cache.host.as_str());
            }
        }
    }
}
