//! [`TraceGraph`]: the call tree of a trace, built from spans as they arrive (in any order,
//! incomplete, sometimes wrong), with the exclusive time of every span.

use std::collections::HashMap;
use std::ops::Range;

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
    nodes: Vec<Node<'a>>,
    /// Every node's children, node after node; see [`Node::first_child`].
    child_list: Vec<usize>,
    roots: Vec<usize>,
    /// Node by (trace, span) id; `None` for a graph of at most [`SMALL_GRAPH`] spans, whose
    /// look-ups scan the spans instead.
    by_id: Option<HashMap<(TraceId, SpanId), usize, RandomState>>,
    duplicates: usize,
    broken_cycles: usize,
}

/// One span of a [`TraceGraph`] and what the graph knows of it.
#[derive(Clone, Debug)]
struct Node<'a> {
    span: &'a Span,
    parent: Option<usize>,
    /// Where the node's children (earliest first) start in `child_list`; they end where the
    /// next node's start, or with the list.
    first_child: usize,
    depth: usize,
    self_time: u64,
}

impl<'a> Node<'a> {
    fn new(span: &'a Span) -> Self {
        Self {
            span,
            parent: None,
            first_child: 0,
            depth: 0,
            self_time: 0,
        }
    }
}

/// Graphs of at most this many spans (most traces) find spans by id with a scan, which is
/// cheaper than building a map.
const SMALL_GRAPH: usize = 16;

impl<'a> TraceGraph<'a> {
    /// Builds the graph of `spans`, which may mix several traces. Never panics.
    pub fn build(spans: &'a [Span]) -> Self {
        let mut by_id = (spans.len() > SMALL_GRAPH)
            .then(|| HashMap::with_capacity_and_hasher(spans.len(), RandomState::default()));
        let mut nodes: Vec<Node<'a>> = Vec::with_capacity(spans.len());
        let mut duplicates = 0;
        for span in spans {
            let id = (span.trace_id, span.span_id);
            if find_in(by_id.as_ref(), &nodes, id).is_some() {
                duplicates += 1;
                continue;
            }
            if let Some(by_id) = &mut by_id {
                by_id.insert(id, nodes.len());
            }
            nodes.push(Node::new(span));
        }
        for node in 0..nodes.len() {
            let span = nodes[node].span;
            nodes[node].parent = span
                .parent_span_id
                .and_then(|id| find_in(by_id.as_ref(), &nodes, (span.trace_id, id)));
        }
        let (mut child_list, mut roots) = link(&mut nodes);
        // Every node hangs below a root unless parent links form a cycle, which only bad data
        // does; only then is the cycle search needed.
        let mut broken_cycles = 0;
        if fill_depths(&mut nodes, &child_list, &roots) < nodes.len() {
            let spans: Vec<&Span> = nodes.iter().map(|node| node.span).collect();
            let mut parent: Vec<Option<usize>> = nodes.iter().map(|node| node.parent).collect();
            broken_cycles = break_cycles(&spans, &mut parent);
            for (node, up) in nodes.iter_mut().zip(parent) {
                node.parent = up;
            }
            (child_list, roots) = link(&mut nodes);
            fill_depths(&mut nodes, &child_list, &roots);
        }
        let by_start = |a: &usize, b: &usize| {
            (nodes[*a].span.start_unix_nanos, *a).cmp(&(nodes[*b].span.start_unix_nanos, *b))
        };
        roots.sort_by(by_start);
        let children = child_list.len();
        for node in 0..nodes.len() {
            child_list[children_range(&nodes, children, node)].sort_by(by_start);
        }

        let mut graph = Self {
            nodes,
            child_list,
            roots,
            by_id,
            duplicates,
            broken_cycles,
        };
        let mut intervals = Vec::new();
        for node in 0..graph.len() {
            graph.nodes[node].self_time = graph.compute_self_time(node, &mut intervals);
        }
        graph
    }

    /// Number of distinct spans.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the graph has no spans.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The span of `node`. Panics if `node` is not below [`len`](Self::len).
    pub fn span(&self, node: usize) -> &'a Span {
        self.nodes[node].span
    }

    /// Every kept span with its node number, in input order.
    pub fn nodes(&self) -> impl Iterator<Item = (usize, &'a Span)> + '_ {
        self.nodes.iter().map(|node| node.span).enumerate()
    }

    /// The node of the span `span_id` in trace `trace_id`, if present.
    pub fn find(&self, trace_id: TraceId, span_id: SpanId) -> Option<usize> {
        find_in(self.by_id.as_ref(), &self.nodes, (trace_id, span_id))
    }

    /// Nodes without a parent in the graph, earliest first.
    pub fn roots(&self) -> &[usize] {
        &self.roots
    }

    /// The parent of `node`, if it has one in the graph.
    pub fn parent(&self, node: usize) -> Option<usize> {
        self.nodes.get(node).and_then(|node| node.parent)
    }

    /// The children of `node`, earliest first.
    pub fn children(&self, node: usize) -> &[usize] {
        if node < self.len() {
            &self.child_list[children_range(&self.nodes, self.child_list.len(), node)]
        } else {
            &[]
        }
    }

    /// Distance from `node` to its root (roots have depth 0).
    pub fn depth(&self, node: usize) -> usize {
        self.nodes.get(node).map_or(0, |node| node.depth)
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
        self.nodes.get(node).map_or(0, |node| node.self_time)
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
        let span = self.nodes[node].span;
        let (start, end) = (span.start_unix_nanos, span.end_unix_nanos());
        intervals.clear();
        intervals.extend(
            self.children(node)
                .iter()
                .map(|&child| {
                    let child = self.nodes[child].span;
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

/// The node of span `id` among `nodes`: from the map when there is one, else by a scan.
fn find_in(
    by_id: Option<&HashMap<(TraceId, SpanId), usize, RandomState>>,
    nodes: &[Node<'_>],
    id: (TraceId, SpanId),
) -> Option<usize> {
    match by_id {
        Some(by_id) => by_id.get(&id).copied(),
        None => nodes
            .iter()
            .position(|node| (node.span.trace_id, node.span.span_id) == id),
    }
}

/// Where `node`'s children are in the child list, of length `children`.
fn children_range(nodes: &[Node<'_>], children: usize, node: usize) -> Range<usize> {
    let end = nodes
        .get(node + 1)
        .map_or(children, |next| next.first_child);
    nodes[node].first_child..end
}

/// Sets every node's `first_child` from the parent links and returns the child list and the
/// roots, each in node order.
fn link(nodes: &mut [Node<'_>]) -> (Vec<usize>, Vec<usize>) {
    for node in nodes.iter_mut() {
        node.first_child = 0;
    }
    for node in 0..nodes.len() {
        if let Some(up) = nodes[node].parent {
            nodes[up].first_child += 1;
        }
    }
    let mut total = 0;
    for node in nodes.iter_mut() {
        let count = node.first_child;
        node.first_child = total;
        total += count;
    }
    let mut list = vec![0; total];
    let mut roots = Vec::new();
    // `first_child` of a parent runs through its slots as they are filled, ending where the
    // next node's start; shifting them back by one node restores the starts.
    for node in 0..nodes.len() {
        match nodes[node].parent {
            Some(up) => {
                list[nodes[up].first_child] = node;
                nodes[up].first_child += 1;
            }
            None => roots.push(node),
        }
    }
    for node in (1..nodes.len()).rev() {
        nodes[node].first_child = nodes[node - 1].first_child;
    }
    if let Some(first) = nodes.first_mut() {
        first.first_child = 0;
    }
    (list, roots)
}

/// Sets the depth of every node reachable from `roots`; returns how many that is. Nodes on
/// or below a parent-link cycle are not reachable, and the reachable part is a forest, so
/// this ends and visits each node at most once.
fn fill_depths(nodes: &mut [Node<'_>], child_list: &[usize], roots: &[usize]) -> usize {
    let mut reached = 0;
    let mut stack: Vec<(usize, usize)> = roots.iter().map(|&root| (root, 0)).collect();
    while let Some((node, depth)) = stack.pop() {
        nodes[node].depth = depth;
        reached += 1;
        let children = &child_list[children_range(nodes, child_list.len(), node)];
        stack.extend(children.iter().map(|&child| (child, depth + 1)));
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
