//! [`TraceGraph`]: the call tree of a trace, built from spans as they arrive (in any order,
//! incomplete, sometimes wrong), with the exclusive time of every span.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use aiops_telemetry_core::{Span, SpanId, TraceId};

/// The call tree (or forest) of one or more traces.
///
/// Nodes are numbered `0..len()` in the order their spans first appear in the input; a node
/// number is only meaningful for the graph that returned it.
///
/// Building tolerates what real span streams contain:
///
/// - **Out-of-order spans**: children may come before their parents.
/// - **Missing parents**: a span whose parent is not in the input (not sampled, not arrived,
///   dropped) becomes a root.
/// - **Duplicate span ids** (within a trace): the first span wins, later ones are counted in
///   [`duplicates`](Self::duplicates) and ignored.
/// - **Cycles** in bad data (a span that is its own ancestor): every cycle is cut at its
///   earliest-starting span, which becomes a root; cuts are counted in
///   [`broken_cycles`](Self::broken_cycles).
///
/// Every traversal is iterative with a visited set, so no input makes it loop, recurse deeply
/// or panic.
///
/// ```
/// use aiops_rca::TraceGraph;
/// use aiops_telemetry_core::{Span, SpanId, TraceId};
///
/// let trace = TraceId::random();
/// let (root, child) = (SpanId::random(), SpanId::random());
/// let spans = vec![
///     // The child arrives first and runs 30 ms of the parent's 100 ms.
///     Span::new(trace, child, "payments", "/payment").with_parent(root).with_timing(10, 30),
///     Span::new(trace, root, "shop", "/checkout").with_timing(0, 100),
/// ];
/// let graph = TraceGraph::build(&spans);
/// assert_eq!(graph.roots().len(), 1);
/// let root_node = graph.roots()[0];
/// assert_eq!(graph.span(root_node).operation, "/checkout");
/// assert_eq!(graph.self_time_nanos(root_node), 70);
/// ```
#[derive(Clone, Debug)]
pub struct TraceGraph<'a> {
    spans: Vec<&'a Span>,
    parent: Vec<Option<usize>>,
    /// The children of node `i` are `child_list[child_start[i]..child_start[i + 1]]`,
    /// earliest first: two allocations for any number of nodes.
    child_start: Vec<usize>,
    child_list: Vec<usize>,
    roots: Vec<usize>,
    depth: Vec<usize>,
    self_time: Vec<u64>,
    /// Node by (trace, span) id; `None` for a graph of at most [`SMALL_GRAPH`] spans, whose
    /// look-ups scan the spans instead.
    by_id: Option<HashMap<(TraceId, SpanId), usize, RandomState>>,
    duplicates: usize,
    broken_cycles: usize,
}

/// Graphs of at most this many spans (most traces) find spans by id with a scan, which is
/// cheaper than building a map.
const SMALL_GRAPH: usize = 16;

impl<'a> TraceGraph<'a> {
    /// Builds the graph of `spans`, which may mix several traces. Never panics.
    pub fn build(spans: &'a [Span]) -> Self {
        let mut by_id = (spans.len() > SMALL_GRAPH)
            .then(|| HashMap::with_capacity_and_hasher(spans.len(), RandomState::default()));
        let mut kept: Vec<&'a Span> = Vec::with_capacity(spans.len());
        let mut duplicates = 0;
        for span in spans {
            let id = (span.trace_id, span.span_id);
            if find_in(by_id.as_ref(), &kept, id).is_some() {
                duplicates += 1;
                continue;
            }
            if let Some(by_id) = &mut by_id {
                by_id.insert(id, kept.len());
            }
            kept.push(span);
        }
        let mut parent: Vec<Option<usize>> = kept
            .iter()
            .map(|span| {
                span.parent_span_id
                    .and_then(|id| find_in(by_id.as_ref(), &kept, (span.trace_id, id)))
            })
            .collect();
        let (mut child_start, mut child_list, mut roots) = link(&parent);
        let mut depth = vec![0; kept.len()];
        // Every node hangs below a root unless parent links form a cycle, which only bad data
        // does; only then is the cycle search needed.
        let mut broken_cycles = 0;
        if fill_depths(&child_start, &child_list, &roots, &mut depth) < kept.len() {
            broken_cycles = break_cycles(&kept, &mut parent);
            (child_start, child_list, roots) = link(&parent);
            fill_depths(&child_start, &child_list, &roots, &mut depth);
        }
        let by_start = |a: &usize, b: &usize| {
            (kept[*a].start_unix_nanos, *a).cmp(&(kept[*b].start_unix_nanos, *b))
        };
        roots.sort_by(by_start);
        for node in 0..kept.len() {
            child_list[child_start[node]..child_start[node + 1]].sort_by(by_start);
        }

        let mut graph = Self {
            self_time: Vec::with_capacity(kept.len()),
            depth,
            spans: kept,
            parent,
            child_start,
            child_list,
            roots,
            by_id,
            duplicates,
            broken_cycles,
        };
        let mut intervals = Vec::new();
        graph.self_time = (0..graph.len())
            .map(|node| graph.compute_self_time(node, &mut intervals))
            .collect();
        graph
    }

    /// Number of distinct spans.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the graph has no spans.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The span of `node`. Panics if `node` is not below [`len`](Self::len).
    pub fn span(&self, node: usize) -> &'a Span {
        self.spans[node]
    }

    /// Every kept span with its node number, in input order.
    pub fn nodes(&self) -> impl Iterator<Item = (usize, &'a Span)> + '_ {
        self.spans.iter().copied().enumerate()
    }

    /// The node of the span `span_id` in trace `trace_id`, if present.
    pub fn find(&self, trace_id: TraceId, span_id: SpanId) -> Option<usize> {
        find_in(self.by_id.as_ref(), &self.spans, (trace_id, span_id))
    }

    /// Nodes without a parent in the graph, earliest first.
    pub fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// The parent of `node`, if it has one in the graph.
    pub fn parent(&self, node: usize) -> Option<usize> {
        self.parent.get(node).copied().flatten()
    }

    /// The children of `node`, earliest first.
    pub fn children(&self, node: usize) -> &[usize] {
        match (self.child_start.get(node), self.child_start.get(node + 1)) {
            (Some(&from), Some(&to)) => &self.child_list[from..to],
            _ => &[],
        }
    }

    /// Distance from `node` to its root (roots have depth 0).
    pub fn depth(&self, node: usize) -> usize {
        self.depth.get(node).copied().unwrap_or(0)
    }

    /// `node` and every node below it, parents before children.
    pub fn subtree(&self, node: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut visited = vec![false; self.len()];
        let mut stack = vec![node];
        while let Some(next) = stack.pop() {
            if next >= self.len() || std::mem::replace(&mut visited[next], true) {
                continue;
            }
            out.push(next);
            stack.extend(self.children(next).iter().rev());
        }
        out
    }

    /// Exclusive (self) time of `node` in nanoseconds: its duration minus the time covered by
    /// at least one of its children, each child clipped to the parent's interval. Parallel and
    /// overlapping children are counted once; a child that outlives its parent (a caller that
    /// gave up) only covers the part inside the parent. Never negative.
    pub fn self_time_nanos(&self, node: usize) -> u64 {
        self.self_time.get(node).copied().unwrap_or(0)
    }

    /// Exclusive time of `node` in milliseconds.
    pub fn self_time_ms(&self, node: usize) -> f64 {
        self.self_time_nanos(node) as f64 / 1e6
    }

    /// How many spans were ignored because their id was already taken in their trace.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// How many parent links were cut to break cycles.
    pub fn broken_cycles(&self) -> usize {
        self.broken_cycles
    }

    /// `intervals` is scratch space, reused across nodes.
    fn compute_self_time(&self, node: usize, intervals: &mut Vec<(u64, u64)>) -> u64 {
        let span = self.spans[node];
        let (start, end) = (span.start_unix_nanos, span.end_unix_nanos());
        intervals.clear();
        intervals.extend(
            self.children(node)
                .iter()
                .map(|&child| {
                    let child = self.spans[child];
                    (
                        child.start_unix_nanos.clamp(start, end),
                        child.end_unix_nanos().clamp(start, end),
                    )
                })
                .filter(|(from, to)| to > from),
        );
        intervals.sort_unstable();
        let mut covered = 0u64;
        let mut current: Option<(u64, u64)> = None;
        for &(from, to) in intervals.iter() {
            current = match current {
                Some((open, close)) if from <= close => Some((open, close.max(to))),
                Some((open, close)) => {
                    covered += close - open;
                    Some((from, to))
                }
                None => Some((from, to)),
            };
        }
        if let Some((open, close)) = current {
            covered += close - open;
        }
        (end - start).saturating_sub(covered)
    }
}

/// The node of span `id` among `spans`: from the map when there is one, else by a scan.
fn find_in(
    by_id: Option<&HashMap<(TraceId, SpanId), usize, RandomState>>,
    spans: &[&Span],
    id: (TraceId, SpanId),
) -> Option<usize> {
    match by_id {
        Some(by_id) => by_id.get(&id).copied(),
        None => spans
            .iter()
            .position(|span| (span.trace_id, span.span_id) == id),
    }
}

/// The children of the parent links (offsets and lists, see [`TraceGraph`]) and the roots,
/// each in node order.
fn link(parent: &[Option<usize>]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let n = parent.len();
    let mut start = vec![0; n + 1];
    for &up in parent.iter().flatten() {
        start[up + 1] += 1;
    }
    for node in 0..n {
        start[node + 1] += start[node];
    }
    let mut list = vec![0; start[n]];
    let mut roots = Vec::new();
    // `start[up]` runs through `up`'s slots as they are filled, ending where `up + 1` starts.
    for (node, up) in parent.iter().enumerate() {
        match *up {
            Some(up) => {
                list[start[up]] = node;
                start[up] += 1;
            }
            None => roots.push(node),
        }
    }
    start.copy_within(0..n, 1);
    start[0] = 0;
    (start, list, roots)
}

/// Sets the depth of every node reachable from `roots`; returns how many that is. Nodes on
/// or below a parent-link cycle are not reachable, and the reachable part is a forest, so
/// this ends and visits each node at most once.
fn fill_depths(
    child_start: &[usize],
    child_list: &[usize],
    roots: &[usize],
    depth: &mut [usize],
) -> usize {
    let mut reached = 0;
    let mut stack: Vec<(usize, usize)> = roots.iter().map(|&root| (root, 0)).collect();
    while let Some((node, node_depth)) = stack.pop() {
        depth[node] = node_depth;
        reached += 1;
        let children = &child_list[child_start[node]..child_start[node + 1]];
        stack.extend(children.iter().map(|&child| (child, node_depth + 1)));
    }
    reached
}

/// Cuts every cycle in the parent links, making the earliest-starting span of each cycle a
/// root. Returns how many links were cut.
///
/// Each node has at most one parent, so a node unreachable from the roots lies on a cycle or
/// hangs below one; walking its parent links with a visited set finds the cycle.
fn break_cycles(spans: &[&Span], parent: &mut [Option<usize>]) -> usize {
    let n = spans.len();
    let mut children = vec![Vec::new(); n];
    for (node, up) in parent.iter().enumerate() {
        if let Some(up) = up {
            children[*up].push(node);
        }
    }
    let mut reached = vec![false; n];
    let mut stack: Vec<usize> = (0..n).filter(|&node| parent[node].is_none()).collect();
    mark_reachable(&children, &mut reached, &mut stack);

    let mut cuts = 0;
    for start in 0..n {
        if reached[start] {
            continue;
        }
        // Walk up until a node repeats: that node is on the cycle.
        let mut seen = vec![start];
        let mut on_walk = HashMap::from([(start, 0usize)]);
        let mut node = start;
        let cycle_from = loop {
            let Some(up) = parent[node] else { break None };
            if let Some(&position) = on_walk.get(&up) {
                break Some(position);
            }
            on_walk.insert(up, seen.len());
            seen.push(up);
            node = up;
        };
        let Some(position) = cycle_from else { continue };
        let cut = seen[position..]
            .iter()
            .copied()
            .min_by_key(|&node| (spans[node].start_unix_nanos, node))
            .unwrap_or(start);
        if let Some(up) = parent[cut].take() {
            children[up].retain(|&child| child != cut);
        }
        cuts += 1;
        stack.push(cut);
        mark_reachable(&children, &mut reached, &mut stack);
    }
    cuts
}

fn mark_reachable(children: &[Vec<usize>], reached: &mut [bool], stack: &mut Vec<usize>) {
    while let Some(node) = stack.pop() {
        if std::mem::replace(&mut reached[node], true) {
            continue;
        }
        stack.extend(children[node].iter().copied());
    }
}
