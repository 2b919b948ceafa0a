//! Properties of the log for random trees: every generated proof verifies, and changing any byte
//! of a leaf, a proof or a root makes verification fail.

use cishan_translog::*;
use proptest::prelude::*;

/// A tree of `size` leaves whose bytes are the little-endian leaf numbers.
fn tree_of(size: u64) -> (MemoryTree, Vec<Hash>) {
    let mut tree = MemoryTree::new();
    let mut hashes = Vec::new();
    for i in 0..size {
        let bytes = i.to_le_bytes();
        hashes.push(leaf_hash(&bytes));
        tree.append(&bytes);
    }
    (tree, hashes)
}

fn flip(hash: &Hash, byte: usize, bit: u8) -> Hash {
    let mut out = *hash;
    out[byte % 32] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn stored_roots_equal_the_reference(size in 0_u64..300) {
        let (tree, hashes) = tree_of(size);
        for n in [0, size / 3, size / 2, size] {
            let reference = root(&hashes[..usize::try_from(n).unwrap()]);
            prop_assert_eq!(tree.root(n).unwrap(), reference);
        }
    }

    #[test]
    fn inclusion_proofs_verify_and_any_change_fails(
        size in 1_u64..300,
        pick in any::<u64>(),
        byte in 0_usize..32,
        bit in 0_u8..8,
        which in any::<usize>(),
    ) {
        let (tree, hashes) = tree_of(size);
        let index = pick % size;
        let root = tree.root(size).unwrap();
        let proof = inclusion_proof(&tree, index, size).unwrap();
        prop_assert!(proof.len() <= 64);
        let leaf = hashes[usize::try_from(index).unwrap()];
        prop_assert!(verify_inclusion(index, size, &leaf, &proof, &root).is_ok());

        // A different leaf: one byte of the leaf's data changed.
        let mut data = index.to_le_bytes();
        data[byte % 8] ^= 1 << bit;
        prop_assert!(verify_inclusion(index, size, &leaf_hash(&data), &proof, &root).is_err());
        // A changed root.
        prop_assert!(verify_inclusion(index, size, &leaf, &proof, &flip(&root, byte, bit)).is_err());
        // A changed proof hash.
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let i = which % bad.len();
            bad[i] = flip(&bad[i], byte, bit);
            prop_assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
        }
        // The proof of another leaf.
        if size > 1 {
            let other = (index + 1 + (pick >> 32) % (size - 1)) % size;
            prop_assert!(verify_inclusion(other, size, &leaf, &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_any_change_fails(
        second in 1_u64..300,
        pick in any::<u64>(),
        byte in 0_usize..32,
        bit in 0_u8..8,
        which in any::<usize>(),
    ) {
        let (tree, _) = tree_of(second);
        let first = pick % (second + 1);
        let root1 = tree.root(first).unwrap();
        let root2 = tree.root(second).unwrap();
        let proof = consistency_proof(&tree, first, second).unwrap();
        prop_assert!(verify_consistency(first, second, &proof, &root1, &root2).is_ok());

        if first == 0 {
            // An empty tree is a prefix of every tree: there is nothing to change.
            return Ok(());
        }
        prop_assert!(
            verify_consistency(first, second, &proof, &root1, &flip(&root2, byte, bit)).is_err()
        );
        if first < second {
            prop_assert!(
                verify_consistency(first, second, &proof, &flip(&root1, byte, bit), &root2).is_err()
            );
            prop_assert!(!proof.is_empty());
            let mut bad = proof.clone();
            let i = which % bad.len();
            bad[i] = flip(&bad[i], byte, bit);
            prop_assert!(verify_consistency(first, second, &bad, &root1, &root2).is_err());
        }
    }

    #[test]
    fn the_nodes_a_proof_reads_are_enough(size in 1_u64..300, pick in any::<u64>()) {
        // A store fetches exactly `*_nodes` and builds the proof from those alone.
        let (tree, _) = tree_of(size);
        let index = pick % size;
        let fetch = |ids: Vec<NodeId>| -> std::collections::BTreeMap<NodeId, Hash> {
            ids.into_iter().map(|id| (id, tree.subtree_hash(id).unwrap())).collect()
        };
        let nodes = fetch(inclusion_nodes(index, size).unwrap());
        prop_assert!(nodes.len() <= 2 * 64);
        prop_assert_eq!(
            inclusion_proof(&nodes, index, size).unwrap(),
            inclusion_proof(&tree, index, size).unwrap()
        );
        let first = pick % (size + 1);
        let nodes = fetch(consistency_nodes(first, size).unwrap());
        prop_assert_eq!(
            consistency_proof(&nodes, first, size).unwrap(),
            consistency_proof(&tree, first, size).unwrap()
        );
        let nodes = fetch(root_nodes(size).unwrap());
        prop_assert_eq!(root_from(&nodes, size).unwrap(), tree.root(size).unwrap());
    }
}

#[test]
fn a_tree_at_the_size_limit_is_refused_beyond_it() {
    let tree = MemoryTree::new();
    assert!(matches!(
        inclusion_proof(&tree, 0, MAX_TREE_SIZE + 1),
        Err(ProofError::TooLarge(_))
    ));
    assert!(matches!(
        inclusion_proof(&tree, 0, 2),
        Err(ProofError::MissingSubtree(_))
    ));
}
