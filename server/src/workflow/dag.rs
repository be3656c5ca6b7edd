//! Cycles in a dependency graph given as adjacency lists (node `i` needs the nodes in
//! `edges[i]`), shared by validation and the planner.

/// The cycles a depth-first search meets, one per back edge, each as node indices in "needs"
/// order (`[a, b]` is: a needs b, b needs a). Empty exactly when the graph is a DAG. The same
/// cycle can be met from several back edges.
pub fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    // 0 unvisited, 1 on the stack, 2 done.
    let mut state = vec![0u8; edges.len()];
    let mut found = Vec::new();
    for start in 0..edges.len() {
        if state[start] != 0 {
            continue;
        }
        // Iterative, so that a long chain cannot overflow the stack: (node, next edge).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&to) = edges[node].get(*next) {
                *next += 1;
                match state[to] {
                    0 => {
                        state[to] = 1;
                        stack.push((to, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
                        found.push(stack[from..].iter().map(|(n, _)| *n).collect());
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::cycles;

    #[test]
    fn finds_cycles_and_nothing_in_a_dag() {
        assert!(cycles(&[vec![], vec![0], vec![0, 1]]).is_empty());
        assert_eq!(cycles(&[vec![1], vec![0]]), vec![vec![0, 1]]);
        assert_eq!(cycles(&[vec![0]]), vec![vec![0]]);
        assert_eq!(cycles(&[vec![1], vec![2], vec![0], vec![2]]), vec![vec![0, 1, 2]]);
    }
}
