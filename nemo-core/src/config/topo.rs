//! The order in which a configured model's modules are built and run: producers before
//! consumers, found from the connections alone (Kahn's algorithm, ties broken by name), so the
//! order of modules in the YAML does not matter; a cycle is reported with its members.

use std::collections::BTreeSet;

/// Orders nodes `0..names.len()` so that for every edge `(producer, consumer)` the producer
/// comes first. Among nodes ready at the same time the smaller name goes first, so the result
/// depends only on the names and edges. On a cycle, returns one cycle's names in edge order with
/// the first repeated at the end (`a -> b -> a`).
pub(crate) fn topo_order(
    names: &[String],
    edges: &[(usize, usize)],
) -> Result<Vec<usize>, Vec<String>> {
    let n = names.len();
    let mut indegree = vec![0usize; n];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut producers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(from, to) in edges {
        if from >= n || to >= n {
            continue;
        }
        if let (Some(c), Some(p)) = (consumers.get_mut(from), producers.get_mut(to)) {
            if c.contains(&to) {
                continue;
            }
            c.push(to);
            p.push(from);
        }
        if let Some(d) = indegree.get_mut(to) {
            *d += 1;
        }
    }
    let name = |i: usize| names.get(i).map_or("", String::as_str);
    let mut ready: BTreeSet<(&str, usize)> = (0..n)
        .filter(|&i| indegree.get(i) == Some(&0))
        .map(|i| (name(i), i))
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some((_, i)) = ready.pop_first() {
        order.push(i);
        for &c in consumers.get(i).map_or(&[][..], Vec::as_slice) {
            if let Some(d) = indegree.get_mut(c) {
                *d -= 1;
                if *d == 0 {
                    ready.insert((name(c), c));
                }
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every node left has a producer that is also left: walk producers back until one repeats.
    let left: Vec<bool> = (0..n).map(|i| !order.contains(&i)).collect();
    let is_left = |i: usize| left.get(i) == Some(&true);
    let Some(start) = (0..n).filter(|&i| is_left(i)).min_by_key(|&i| name(i)) else {
        return Ok(order);
    };
    let mut walk = vec![start];
    let mut cur = start;
    loop {
        let prev = producers
            .get(cur)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&p| is_left(p))
            .min_by_key(|&p| name(p));
        let Some(prev) = prev else {
            break;
        };
        if let Some(pos) = walk.iter().position(|&w| w == prev) {
            // walk[pos..] is the cycle, backwards along the edges.
            let mut cycle: Vec<String> = walk
                .get(pos..)
                .unwrap_or(&[])
                .iter()
                .rev()
                .map(|&i| name(i).to_string())
                .collect();
            // Start at the smallest name, so the report does not depend on where the walk began.
            if let Some(min) = (0..cycle.len()).min_by_key(|&k| cycle.get(k).cloned()) {
                cycle.rotate_left(min);
            }
            if let Some(first) = cycle.first().cloned() {
                cycle.push(first);
            }
            return Err(cycle);
        }
        walk.push(prev);
        cur = prev;
    }
    Err(vec![name(start).to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn orders_producers_first_ties_by_name() {
        let n = names(&["loss", "decoder", "encoder", "pre", "aug"]);
        // pre -> aug -> encoder -> decoder -> loss, plus pre -> encoder, encoder -> loss
        let edges = [(3, 4), (4, 2), (3, 2), (2, 1), (1, 0), (2, 0)];
        let order = topo_order(&n, &edges).map_err(|c| c.join(","));
        assert_eq!(order, Ok(vec![3, 4, 2, 1, 0]));
        let free = topo_order(&names(&["b", "c", "a"]), &[]);
        assert_eq!(free, Ok(vec![2, 0, 1]));
    }

    #[test]
    fn reports_a_cycle_in_edge_order() {
        let n = names(&["a", "b", "c", "d"]);
        let cycle = topo_order(&n, &[(3, 0), (0, 1), (1, 2), (2, 0)]).err();
        assert_eq!(cycle, Some(names(&["a", "b", "c", "a"])));
        let self_loop = topo_order(&names(&["x"]), &[(0, 0)]).err();
        assert_eq!(self_loop, Some(names(&["x", "x"])));
    }
}
