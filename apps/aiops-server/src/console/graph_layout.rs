//! A layered drawing of a directed graph, computed on the server so that the service map needs
//! no layout script: callers left, callees right.
//!
//! The method is Sugiyama's, reduced to what a service map needs: edges that close a cycle are
//! set aside (a depth-first search from the sources keeps the others acyclic); each node's
//! layer is the longest path to it from a source, so every remaining edge points right; within
//! each layer nodes are ordered by the barycenter (mean position) of their neighbours in the
//! layer before, then after, sweeping a few times, which removes most crossings of a typical
//! call graph. Positions are whole grid cells; the page scales them.

/// Where one node goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Place {
    /// Its layer, 0 at the left (the callers that nobody calls).
    pub layer: usize,
    /// Its row within the layer, 0 at the top.
    pub row: usize,
}

/// A layered layout of `nodes` nodes joined by `edges` (from, to), indices into the nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// Per node, its place.
    pub places: Vec<Place>,
    /// How many layers.
    pub layers: usize,
    /// The most nodes in one layer.
    pub rows: usize,
}

/// Sweeps of barycenter ordering: each goes down the layers, then back up.
const SWEEPS: usize = 4;

impl Layout {
    /// Lays out a graph of `nodes` nodes; edges naming a node out of range, and self loops,
    /// are ignored.
    pub fn new(nodes: usize, edges: &[(usize, usize)]) -> Self {
        let edges: Vec<(usize, usize)> = edges
            .iter()
            .copied()
            .filter(|&(from, to)| from < nodes && to < nodes && from != to)
            .collect();
        let forward = acyclic(nodes, &edges);
        let layer = longest_path_layers(nodes, &forward);
        let layers = layer.iter().max().map_or(0, |last| last + 1);
        let mut order: Vec<Vec<usize>> = vec![Vec::new(); layers];
        for (node, &at) in layer.iter().enumerate() {
            order[at].push(node);
        }
        let mut row = vec![0usize; nodes];
        let renumber = |order: &[Vec<usize>], row: &mut [usize]| {
            for nodes in order {
                for (at, &node) in nodes.iter().enumerate() {
                    row[node] = at;
                }
            }
        };
        renumber(&order, &mut row);
        let mut above: Vec<Vec<usize>> = vec![Vec::new(); nodes];
        let mut below: Vec<Vec<usize>> = vec![Vec::new(); nodes];
        for &(from, to) in &forward {
            above[to].push(from);
            below[from].push(to);
        }
        for _ in 0..SWEEPS {
            for index in 1..layers {
                sort_by_barycenter(&mut order[index], &above, &row);
                renumber(&order, &mut row);
            }
            for index in (0..layers.saturating_sub(1)).rev() {
                sort_by_barycenter(&mut order[index], &below, &row);
                renumber(&order, &mut row);
            }
        }
        Self {
            places: (0..nodes)
                .map(|node| Place {
                    layer: layer[node],
                    row: row[node],
                })
                .collect(),
            layers,
            rows: order.iter().map(Vec::len).max().unwrap_or(0),
        }
    }

    /// How many edges of `edges` cross one another between adjacent layers, as laid out.
    pub fn crossings(&self, edges: &[(usize, usize)]) -> usize {
        let spans: Vec<(usize, usize, usize, usize)> = edges
            .iter()
            .filter_map(|&(from, to)| {
                let (a, b) = (self.places.get(from)?, self.places.get(to)?);
                (b.layer == a.layer + 1).then_some((a.layer, a.row, b.row, to))
            })
            .collect();
        let mut count = 0;
        for (index, first) in spans.iter().enumerate() {
            for second in &spans[index + 1..] {
                if first.0 == second.0
                    && (first.1 < second.1 && first.2 > second.2
                        || first.1 > second.1 && first.2 < second.2)
                {
                    count += 1;
                }
            }
        }
        count
    }
}

/// The edges that remain once those closing a cycle are set aside: a depth-first search from
/// every node in index order drops each edge into a node still on the search's stack.
fn acyclic(nodes: usize, edges: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    let mut incoming = vec![0usize; nodes];
    for &(from, to) in edges {
        out[from].push(to);
        incoming[to] += 1;
    }
    // 0: not seen, 1: on the stack, 2: done.
    let mut state = vec![0u8; nodes];
    let mut kept = Vec::with_capacity(edges.len());
    // Sources first, so that a cycle reached from a source is cut where it closes.
    let starts = (0..nodes)
        .filter(|&node| incoming[node] == 0)
        .chain(0..nodes);
    for start in starts {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&to) = out[node].get(*next) {
                *next += 1;
                match state[to] {
                    0 => {
                        kept.push((node, to));
                        state[to] = 1;
                        stack.push((to, 0));
                    }
                    2 => kept.push((node, to)),
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    kept
}

/// Each node's layer: 0 for a node without incoming edges, else one more than the deepest of
/// its callers (`edges` must be acyclic).
fn longest_path_layers(nodes: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut incoming = vec![0usize; nodes];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    for &(from, to) in edges {
        incoming[to] += 1;
        out[from].push(to);
    }
    let mut layer = vec![0usize; nodes];
    let mut ready: Vec<usize> = (0..nodes).filter(|&node| incoming[node] == 0).collect();
    ready.reverse();
    while let Some(node) = ready.pop() {
        for &to in &out[node] {
            layer[to] = layer[to].max(layer[node] + 1);
            incoming[to] -= 1;
            if incoming[to] == 0 {
                ready.push(to);
            }
        }
    }
    layer
}

/// Orders `layer` by the mean row of each node's `neighbours`; a node without neighbours keeps
/// its row, and ties keep the current order.
fn sort_by_barycenter(layer: &mut [usize], neighbours: &[Vec<usize>], row: &[usize]) {
    let key = |node: usize| -> f64 {
        let around = &neighbours[node];
        if around.is_empty() {
            row[node] as f64
        } else {
            around.iter().map(|&other| row[other] as f64).sum::<f64>() / around.len() as f64
        }
    };
    let mut keyed: Vec<(f64, usize, usize)> = layer
        .iter()
        .map(|&node| (key(node), row[node], node))
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (slot, (_, _, node)) in layer.iter_mut().zip(keyed) {
        *slot = node;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_sit_left_of_their_callees_by_the_longest_path() {
        // 0 -> 1 -> 2 and 0 -> 2: 2 goes to layer 2, after 1.
        let layout = Layout::new(3, &[(0, 1), (1, 2), (0, 2)]);
        let layers: Vec<usize> = layout.places.iter().map(|place| place.layer).collect();
        assert_eq!(layers, vec![0, 1, 2]);
        assert_eq!((layout.layers, layout.rows), (3, 1));
    }

    #[test]
    fn a_cycle_is_cut_where_it_closes_and_every_node_is_placed() {
        let layout = Layout::new(3, &[(0, 1), (1, 2), (2, 1), (2, 2)]);
        let layers: Vec<usize> = layout.places.iter().map(|place| place.layer).collect();
        assert_eq!(layers, vec![0, 1, 2]);
        let ring = Layout::new(3, &[(0, 1), (1, 2), (2, 0)]);
        assert_eq!(ring.places.len(), 3);
        assert_eq!(ring.layers, 3);
    }

    #[test]
    fn barycenter_ordering_uncrosses_edges_the_input_order_crosses() {
        // Layer 0: a(0), b(1); layer 1: c(2), d(3). a calls d, b calls c: in input order the two
        // edges cross; ordered by barycenter they do not.
        let edges = [(0, 3), (1, 2)];
        let layout = Layout::new(4, &edges);
        assert_eq!(layout.crossings(&edges), 0);
        assert_eq!(layout.places[3].row, layout.places[0].row);
    }

    #[test]
    fn nodes_in_one_layer_get_distinct_rows_and_bad_edges_are_ignored() {
        let edges = [(0, 1), (0, 2), (0, 3), (9, 1), (3, 3)];
        let layout = Layout::new(4, &edges);
        let mut rows: Vec<usize> = layout.places[1..].iter().map(|place| place.row).collect();
        rows.sort_unstable();
        assert_eq!(rows, vec![0, 1, 2]);
        assert_eq!(layout.rows, 3);
        assert_eq!(Layout::new(0, &[]).layers, 0);
    }
}
