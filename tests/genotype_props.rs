//! Property tests: random edit sequences keep every genotype invariant.

use proptest::prelude::*;
use spidernet::genotype::{Cell, Doomed, Genotype, GenotypeError, InputShape, Op};

/// One random edit; raw numbers are reduced modulo the sizes current when it is applied.
#[derive(Clone, Debug)]
enum Step {
    Split {
        cell: usize,
        edge: usize,
    },
    Kill {
        cell: usize,
        edge: usize,
        op: usize,
    },
    /// Tries to kill every op of one edge, one after another.
    Strip {
        cell: usize,
        edge: usize,
    },
    /// Each pick names an edge and one op, or all ops when `None`, with an open count.
    Deadhead {
        cell: usize,
        picks: Vec<(usize, Option<usize>, u64)>,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let op = 0..Op::ALL.len();
    let pick = (any::<usize>(), prop::option::of(op.clone()), 0u64..5);
    prop_oneof![
        2 => (any::<usize>(), any::<usize>()).prop_map(|(cell, edge)| Step::Split { cell, edge }),
        2 => (any::<usize>(), any::<usize>(), op)
            .prop_map(|(cell, edge, op)| Step::Kill { cell, edge, op }),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(cell, edge)| Step::Strip { cell, edge }),
        2 => (any::<usize>(), prop::collection::vec(pick, 0..6))
            .prop_map(|(cell, picks)| Step::Deadhead { cell, picks }),
    ]
}

fn genotype() -> impl Strategy<Value = Genotype> {
    (0usize..=3, prop::bool::ANY, 1usize..=16).prop_map(|(reductions, large, channels)| {
        let side = if large { 28 } else { 8 };
        let input = InputShape {
            channels: 1,
            height: side,
            width: side,
        };
        Genotype::minimal(reductions, channels, input, 10).expect("settings fit the input")
    })
}

/// Independent reachability: nodes reachable from inputs and nodes reaching the output.
fn reach(cell: &Cell) -> (Vec<bool>, Vec<bool>) {
    let n = cell.n_nodes;
    let mut forward = vec![false; n];
    forward[..cell.n_inputs].fill(true);
    let mut backward = vec![false; n];
    backward[n - 1] = true;
    // Edges go from lower to higher nodes, so one sweep in each direction suffices.
    for node in 0..n {
        if forward[node] {
            for edge in cell.edges.iter().filter(|e| e.from == node) {
                forward[edge.to] = true;
            }
        }
    }
    for node in (0..n).rev() {
        if backward[node] {
            for edge in cell.edges.iter().filter(|e| e.to == node) {
                backward[edge.from] = true;
            }
        }
    }
    (forward, backward)
}

/// Whether removing `op` from edge `id` (and the edge, if that empties it) leaves no path; computed
/// without the library's own path logic.
fn cuts_last_path(cell: &Cell, id: u32, op: Op) -> bool {
    let mut thinned = cell.clone();
    for edge in &mut thinned.edges {
        if edge.id == id {
            edge.ops.retain(|&live| live != op);
        }
    }
    thinned.edges.retain(|edge| !edge.ops.is_empty());
    !reach(&thinned).0[thinned.n_nodes - 1]
}

fn assert_sound(genotype: &Genotype) {
    genotype.check().expect("genotype invariants hold");
    for cell in &genotype.cells {
        let n = cell.n_nodes;
        assert_eq!(cell.n_inputs, cell.index + 1);
        assert!(n > cell.n_inputs);
        for edge in &cell.edges {
            assert!(
                edge.from < edge.to && edge.to < n,
                "edge {edge:?} in cell {}",
                cell.index
            );
            assert!(edge.to >= cell.n_inputs);
            assert!(!edge.ops.is_empty());
            assert!(edge.ops.windows(2).all(|w| w[0] < w[1]));
        }
        // Dense numbering: every intermediate node is used on both sides.
        for node in cell.n_inputs..n - 1 {
            assert!(cell.edges.iter().any(|e| e.to == node), "node {node} has no in-edge");
            assert!(cell.edges.iter().any(|e| e.from == node), "node {node} has no out-edge");
        }
        let (forward, backward) = reach(cell);
        assert!(forward[n - 1], "cell {} lost its path", cell.index);
        assert!(cell.has_input_output_path());
        for node in cell.n_inputs..n - 1 {
            assert!(forward[node] && backward[node], "node {node} is an orphan");
        }
        let mut ids: Vec<u32> = cell.edges.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), cell.edges.len(), "edge ids unique");
    }
}

/// Checks that `after` is `before` minus `removed_nodes` (old numbering) renumbered densely:
/// every surviving edge keeps its endpoints up to that renumbering.
fn assert_renumbered(before: &Cell, after: &Cell, removed_nodes: &[usize]) -> Result<(), TestCaseError> {
    let survivors: Vec<usize> = (0..before.n_nodes).filter(|v| !removed_nodes.contains(v)).collect();
    prop_assert_eq!(survivors.len(), after.n_nodes);
    for edge in &after.edges {
        let old = before.edge(edge.id).expect("no edge is created by a kill");
        prop_assert_eq!((survivors[edge.from], survivors[edge.to]), (old.from, old.to));
        prop_assert!(edge.ops.iter().all(|&op| old.has_op(op)));
    }
    Ok(())
}

fn pick_cell(genotype: &mut Genotype, raw: usize) -> &mut Cell {
    let count = genotype.cells.len();
    &mut genotype.cells[raw % count]
}

/// Kills `op` on edge `id` and checks the result against what the cell looked like before.
fn try_kill(cell: &mut Cell, id: u32, op: Op) -> Result<(), TestCaseError> {
    let before = cell.clone();
    let live = before.edge(id).is_some_and(|e| e.has_op(op));
    let cuts = live && cuts_last_path(&before, id, op);
    prop_assert_eq!(before.would_disconnect(id, op), cuts);
    let forbidden = !live || cuts;
    match cell.kill_op(id, op) {
        Err(err) => {
            prop_assert!(forbidden, "kill of live, non-disconnecting op failed: {}", err);
            let right_reason = match err {
                GenotypeError::UnknownEdge { edge, .. } => edge == id && before.edge(id).is_none(),
                GenotypeError::OpNotLive { edge, .. } => edge == id && !live,
                GenotypeError::WouldDisconnect { edge, .. } => edge == id && cuts,
                _ => false,
            };
            prop_assert!(
                right_reason,
                "kill of {} on edge {} failed for the wrong reason",
                op,
                id
            );
            prop_assert_eq!(&*cell, &before);
        }
        Ok(removal) => {
            prop_assert!(!forbidden, "forbidden kill succeeded");
            prop_assert!(!cell.edge(id).is_some_and(|e| e.has_op(op)));
            prop_assert!(cell.live_op_count() < before.live_op_count());
            prop_assert_eq!(cell.n_nodes, before.n_nodes - removal.removed_nodes.len());
            prop_assert_eq!(cell.edges.len(), before.edges.len() - removal.removed_edges.len());
            for gone in &removal.removed_edges {
                prop_assert!(cell.edge(*gone).is_none());
            }
            prop_assert!(cell.check().is_ok(), "{:?}", cell.check());
            assert_renumbered(&before, cell, &removal.removed_nodes)?;
        }
    }
    Ok(())
}

fn apply(genotype: &mut Genotype, step: &Step) -> Result<(), TestCaseError> {
    match *step {
        Step::Split { cell, edge } => {
            let cell = pick_cell(genotype, cell);
            let before = cell.clone();
            let id = cell.edges[edge % cell.edges.len()].id;
            let split = cell.split(id).expect("existing edge splits");
            prop_assert_eq!(cell.n_nodes, before.n_nodes + 1);
            prop_assert_eq!(cell.edges.len(), before.edges.len() + 2);
            prop_assert_eq!(cell.live_op_count(), before.live_op_count() + 14);
            prop_assert_eq!(cell.edge(split.shortcut).map(|e| e.to), Some(split.new_node + 1));
            prop_assert_eq!(cell.edge(split.edge_a).map(|e| e.to), Some(split.new_node));
            prop_assert_eq!(cell.edge(split.edge_b).map(|e| e.from), Some(split.new_node));
        }
        Step::Kill { cell, edge, op } => {
            let cell = pick_cell(genotype, cell);
            let id = cell.edges[edge % cell.edges.len()].id;
            try_kill(cell, id, Op::ALL[op])?;
        }
        Step::Strip { cell, edge } => {
            let cell = pick_cell(genotype, cell);
            let id = cell.edges[edge % cell.edges.len()].id;
            for op in Op::ALL {
                try_kill(cell, id, op)?;
            }
        }
        Step::Deadhead { cell, ref picks } => {
            let cell = pick_cell(genotype, cell);
            let before = cell.clone();
            let doomed: Vec<Doomed> = picks
                .iter()
                .flat_map(|&(edge, op, open_count)| {
                    let edge_id = before.edges[edge % before.edges.len()].id;
                    let ops = match op {
                        Some(op) => vec![Op::ALL[op]],
                        None => Op::ALL.to_vec(),
                    };
                    ops.into_iter().map(move |op| Doomed {
                        edge_id,
                        op,
                        open_count,
                    })
                })
                .collect();
            let outcome = cell.deadhead(&doomed);
            for &(id, op) in &outcome.killed {
                prop_assert!(before.edge(id).is_some_and(|e| e.has_op(op)));
                prop_assert!(!cell.edge(id).is_some_and(|e| e.has_op(op)));
            }
            // Kills happen least-open first; a duplicate entry counts with its smallest open count.
            let open_of = |&(id, op): &(u32, Op)| {
                doomed
                    .iter()
                    .filter(|d| d.edge_id == id && d.op == op)
                    .map(|d| d.open_count)
                    .min()
            };
            let kill_opens: Vec<Option<u64>> = outcome.killed.iter().map(open_of).collect();
            prop_assert!(kill_opens.iter().all(Option::is_some));
            prop_assert!(
                kill_opens.windows(2).all(|w| w[0] <= w[1]),
                "kill order {:?}",
                kill_opens
            );
            // Later kills only remove paths, so a spared op is still the one holding the cell together.
            for &(id, op) in &outcome.spared {
                prop_assert!(cell.edge(id).is_some_and(|e| e.has_op(op)));
                prop_assert!(cell.would_disconnect(id, op));
                prop_assert!(cuts_last_path(cell, id, op));
            }
            prop_assert_eq!(cell.n_nodes, before.n_nodes - outcome.removed_nodes.len());
            assert_renumbered(&before, cell, &outcome.removed_nodes)?;
            prop_assert!(outcome.removed_nodes.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(
                outcome
                    .removed_nodes
                    .iter()
                    .all(|&v| v >= before.n_inputs && v < before.output())
            );
            for gone in &outcome.removed_edges {
                prop_assert!(cell.edge(*gone).is_none());
            }
            // Ops vanish either by being killed or along with an edge deleted as an orphan.
            let killed_on = |id: u32| outcome.killed.iter().filter(|k| k.0 == id).count();
            let lost_with_edges: usize = outcome
                .removed_edges
                .iter()
                .filter_map(|&id| before.edge(id).map(|e| e.ops.len() - killed_on(id)))
                .sum();
            prop_assert_eq!(
                cell.live_op_count(),
                before.live_op_count() - outcome.killed.len() - lost_with_edges
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_edits_keep_invariants(mut genotype in genotype(), steps in prop::collection::vec(step(), 0..40)) {
        assert_sound(&genotype);
        for step in &steps {
            apply(&mut genotype, step)?;
            assert_sound(&genotype);
        }
        let back = Genotype::from_json(&genotype.to_json()).expect("saved genotype parses");
        prop_assert_eq!(back, genotype);
    }

    #[test]
    fn split_adds_one_node_two_edges_fourteen_ops(
        index in 0usize..4,
        pre_splits in prop::collection::vec(any::<usize>(), 0..6),
        pick in any::<usize>(),
    ) {
        let mut cell = Cell::minimal(index);
        for raw in pre_splits {
            let id = cell.edges[raw % cell.edges.len()].id;
            cell.split(id).expect("existing edge splits");
        }
        let before = cell.clone();
        let target = before.edges[pick % before.edges.len()].clone();
        let split = cell.split(target.id).expect("existing edge splits");
        prop_assert_eq!(cell.n_nodes, before.n_nodes + 1);
        prop_assert_eq!(cell.edges.len(), before.edges.len() + 2);
        prop_assert_eq!(cell.live_op_count(), before.live_op_count() + 14);
        prop_assert_eq!(split.new_node, target.to);
        let shortcut = cell.edges[2].clone();
        prop_assert_eq!(&shortcut.ops, &target.ops);
        prop_assert_eq!(&shortcut.lineage, &target.lineage);
        let mut lineage = target.lineage.clone();
        lineage.push(target.id);
        prop_assert_eq!(&cell.edges[0].lineage, &lineage);
        prop_assert_eq!(&cell.edges[1].lineage, &lineage);
        cell.check().expect("split keeps the cell valid");
    }
}
