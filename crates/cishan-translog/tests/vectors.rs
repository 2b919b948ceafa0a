//! The RFC 6962 reference vectors used by Certificate Transparency's implementations.
//!
//! Leaves, roots and node hashes are copied from transparency-dev/merkle
//! `testonly/constants.go` (`LeafInputs`, `NodeHashes`, `RootHashes`); the inclusion and
//! consistency proofs from transparency-dev/merkle `proof/verify_test.go` (`inclusionProofs`,
//! `consistencyProofs`, whose leaf numbers are 1-based there and 0-based here). The same values
//! appear in certificate-transparency-go's `merkletree` tests and google/trillian's
//! `merkle/log_verifier_test.go`.

use cishan_translog::*;

fn h(text: &str) -> Hash {
    decode_hash(text).expect("64 hex digits")
}

fn leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|t| hex::decode(t).unwrap())
    .collect()
}

/// Roots of the trees of 0..=8 of the leaves above.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Every perfect subtree of the 8-leaf tree, by level then index.
const NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// (leaf index, tree size, proof).
const INCLUSION: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (first size, second size, proof).
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn tree() -> MemoryTree {
    let mut tree = MemoryTree::new();
    for leaf in leaves() {
        tree.append(&leaf);
    }
    tree
}

fn proof(hashes: &[&str]) -> Vec<Hash> {
    hashes.iter().map(|t| h(t)).collect()
}

#[test]
fn the_empty_tree_hashes_the_empty_string() {
    assert_eq!(encode_hash(&empty_root()), ROOTS[0]);
    assert_eq!(encode_hash(&root(&[])), ROOTS[0]);
    assert_eq!(encode_hash(&MemoryTree::new().root(0).unwrap()), ROOTS[0]);
}

#[test]
fn roots_match_the_reference_for_every_size() {
    let hashes: Vec<Hash> = leaves().iter().map(|l| leaf_hash(l)).collect();
    let tree = tree();
    for size in 0..=8 {
        let n = usize::try_from(size).unwrap();
        assert_eq!(
            encode_hash(&root(&hashes[..n])),
            ROOTS[n],
            "reference, size {size}"
        );
        assert_eq!(
            encode_hash(&tree.root(size).unwrap()),
            ROOTS[n],
            "stored subtrees, size {size}"
        );
    }
}

#[test]
fn every_perfect_subtree_matches_the_reference() {
    let tree = tree();
    for (level, hashes) in NODES.iter().enumerate() {
        for (index, expected) in hashes.iter().enumerate() {
            let id = NodeId::new(u32::try_from(level).unwrap(), index as u64);
            assert_eq!(
                tree.subtree_hash(id).map(|x| encode_hash(&x)).as_deref(),
                Some(*expected),
                "{id:?}"
            );
        }
    }
}

#[test]
fn inclusion_proofs_match_and_verify() {
    let tree = tree();
    let leaves = leaves();
    for (index, size, expected) in INCLUSION {
        let expected = proof(expected);
        assert_eq!(
            inclusion_proof(&tree, index, size).unwrap(),
            expected,
            "generated proof of {index} in {size}"
        );
        let leaf = leaf_hash(&leaves[usize::try_from(index).unwrap()]);
        let root = h(ROOTS[usize::try_from(size).unwrap()]);
        verify_inclusion(index, size, &leaf, &expected, &root).unwrap();
        // The probes of transparency-dev's corruptInclusionProof all fail.
        let some_hash = h("abacaba000000000000000000000000000000000000000000060061e00123456");
        assert!(verify_inclusion(index.wrapping_sub(1), size, &leaf, &expected, &root).is_err());
        assert!(verify_inclusion(index + 1, size, &leaf, &expected, &root).is_err());
        assert!(verify_inclusion(index ^ 2, size, &leaf, &expected, &root).is_err());
        assert!(verify_inclusion(index, size * 2, &leaf, &expected, &root).is_err());
        assert!(verify_inclusion(index, size / 2, &leaf, &expected, &root).is_err());
        assert!(verify_inclusion(index, size, &some_hash, &expected, &root).is_err());
        assert!(verify_inclusion(index, size, &leaf, &expected, &empty_root()).is_err());
        let mut longer = expected.clone();
        longer.push(root);
        assert!(verify_inclusion(index, size, &leaf, &longer, &root).is_err());
        let mut preceded = vec![root];
        preceded.extend(&expected);
        assert!(verify_inclusion(index, size, &leaf, &preceded, &root).is_err());
        if !expected.is_empty() {
            let shorter = &expected[..expected.len() - 1];
            assert!(verify_inclusion(index, size, &leaf, shorter, &root).is_err());
        }
    }
}

#[test]
fn impossible_inclusion_probes_fail() {
    let some_hash = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    for (index, size) in [(0, 0), (1, 0), (2, 1)] {
        assert!(verify_inclusion(index, size, &some_hash, &[], &empty_root()).is_err());
    }
    let single = leaf_hash(b"data");
    verify_inclusion(0, 1, &single, &[], &single).unwrap();
    assert!(verify_inclusion(0, 1, &single, &[], &empty_root()).is_err());
}

#[test]
fn consistency_proofs_match_and_verify() {
    let tree = tree();
    for (first, second, expected) in CONSISTENCY {
        let expected = proof(expected);
        assert_eq!(
            consistency_proof(&tree, first, second).unwrap(),
            expected,
            "generated proof from {first} to {second}"
        );
        let root1 = h(ROOTS[usize::try_from(first).unwrap()]);
        let root2 = h(ROOTS[usize::try_from(second).unwrap()]);
        verify_consistency(first, second, &expected, &root1, &root2).unwrap();
        if expected.is_empty() {
            continue;
        }
        // The probes of transparency-dev's corruptConsistencyProof all fail.
        assert!(verify_consistency(first - 1, second, &expected, &root1, &root2).is_err());
        assert!(verify_consistency(first + 1, second, &expected, &root1, &root2).is_err());
        assert!(verify_consistency(first ^ 2, second, &expected, &root1, &root2).is_err());
        assert!(verify_consistency(first, second * 2, &expected, &root1, &root2).is_err());
        assert!(verify_consistency(first, second / 2, &expected, &root1, &root2).is_err());
        assert!(verify_consistency(first, second, &expected, &root2, &root1).is_err());
        assert!(verify_consistency(first, second, &[], &root1, &root2).is_err());
        for extra in [root1, root2, expected[0]] {
            let mut longer = expected.clone();
            longer.push(extra);
            assert!(verify_consistency(first, second, &longer, &root1, &root2).is_err());
            let mut preceded = vec![extra];
            preceded.extend(&expected);
            assert!(verify_consistency(first, second, &preceded, &root1, &root2).is_err());
        }
        let shorter = &expected[..expected.len() - 1];
        assert!(verify_consistency(first, second, shorter, &root1, &root2).is_err());
        for i in 0..expected.len() {
            let mut flipped = expected.clone();
            flipped[i][0] ^= 16;
            assert!(verify_consistency(first, second, &flipped, &root1, &root2).is_err());
        }
    }
}

#[test]
fn trivial_consistency_cases() {
    let (a, b) = (h(ROOTS[1]), h(ROOTS[2]));
    let e = empty_root();
    verify_consistency(0, 0, &[], &a, &a).unwrap();
    verify_consistency(0, 1, &[], &a, &b).unwrap();
    verify_consistency(1, 1, &[], &b, &b).unwrap();
    assert!(verify_consistency(0, 0, &[], &a, &b).is_err());
    assert!(verify_consistency(1, 1, &[], &a, &b).is_err());
    assert!(verify_consistency(1, 0, &[], &a, &b).is_err());
    assert!(verify_consistency(2, 1, &[], &a, &b).is_err());
    assert!(verify_consistency(1, 2, &[], &a, &b).is_err());
    assert!(verify_consistency(0, 0, &[e], &e, &e).is_err());
    assert!(verify_consistency(0, 1, &[e], &e, &e).is_err());
    assert!(verify_consistency(1, 1, &[e], &e, &e).is_err());
}
