//! How long the web console takes to render its busiest pages, and how much they weigh:
//! the overview of 100 services with 20 endpoints each (2,000 rows, each with a sparkline)
//! and five incidents, and the service map of 100 services. Only rendering is measured (the
//! views are built in advance): gathering them is the actor's and the database's work, which
//! other benchmarks measure.
//!
//! `cargo bench -p aiops-server --bench console`

use std::io::Write;

use aiops_server::console::{map, overview, page, sample};
use criterion::{Criterion, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;

/// The size of `html` gzip-compressed, as the server sends it to a browser that accepts gzip.
fn gzipped(html: &str) -> usize {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(html.as_bytes()).expect("in memory");
    encoder.finish().expect("in memory").len()
}

fn render(c: &mut Criterion) {
    let fleet = sample::overview(100, 20, 5);
    let html = page::render(overview::page(&fleet)).into_string();
    println!(
        "overview of {} endpoints: {} bytes of HTML, {} gzipped",
        fleet.endpoints.len(),
        html.len(),
        gzipped(&html)
    );
    c.bench_function("console/overview 100 services x 20 endpoints", |b| {
        b.iter(|| page::render(overview::page(&fleet)).into_string())
    });

    let services = sample::service_map(100);
    let html = page::render(map::page(&services)).into_string();
    println!(
        "map of {} services and {} calls: {} bytes of HTML, {} gzipped",
        services.topology.services.len(),
        services.topology.edges.len(),
        html.len(),
        gzipped(&html)
    );
    c.bench_function("console/map 100 services", |b| {
        b.iter(|| page::render(map::page(&services)).into_string())
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
