//! The Merkle tree of RFC 6962 §2.1 (restated in RFC 9162 §2.1): hashing, proof generation over
//! stored perfect subtrees, and proof verification.
//!
//! A *perfect subtree* is addressed by [`NodeId`]: `level` L and `index` i cover the leaves
//! `[i·2^L, (i+1)·2^L)`; level 0 holds the leaf hashes. Every subtree the RFC's recursion visits
//! is either a perfect subtree or a "ragged" right edge that folds a chain of perfect subtrees,
//! so a log that stores the hash of every completed perfect subtree can produce any root or
//! proof with O(log n) lookups: the `*_nodes` functions say which ones, a [`SubtreeHashes`]
//! supplies them, and the generators assemble the answer.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, a node hash or a root.
pub type Hash = [u8; 32];

/// The largest tree these functions accept. Keeps every shift and sum below `u64::MAX` and far
/// exceeds anything a charity log will hold.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// `SHA-256(0x00 ‖ bytes)`: the hash of a leaf (RFC 6962 §2.1).
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(bytes);
    hasher.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node (RFC 6962 §2.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// `SHA-256("")`: the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (`n ≥ 2`): the RFC's split point `k`.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2, "only trees of two or more leaves are split");
    1_u64 << (63 - (n - 1).leading_zeros())
}

/// The Merkle Tree Hash (RFC 6962 §2.1) of `leaves`, given as leaf hashes. The direct recursive
/// definition: it reads every leaf, so it serves as the reference the stored tree is checked
/// against, not as the way to answer requests.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = usize::try_from(split_point(n as u64)).expect("k < n fits usize");
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The address of a perfect subtree: `level` L and `index` i cover leaves `[i·2^L, (i+1)·2^L)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

impl NodeId {
    pub fn new(level: u32, index: u64) -> NodeId {
        NodeId { level, index }
    }
}

/// Somewhere to read the hashes of perfect subtrees from: an in-memory tree, or the nodes a
/// store fetched for one request.
pub trait SubtreeHashes {
    /// The hash of the perfect subtree `id`, or `None` when it is not (yet) known.
    fn subtree_hash(&self, id: NodeId) -> Option<Hash>;
}

impl SubtreeHashes for BTreeMap<NodeId, Hash> {
    fn subtree_hash(&self, id: NodeId) -> Option<Hash> {
        self.get(&id).copied()
    }
}

/// Why a root or proof cannot be produced, or why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf {index} is not in a tree of {size} leaves")]
    LeafOutOfRange { index: u64, size: u64 },
    #[error("a tree of {first} leaves cannot be a later version of one of {second}")]
    SizesOutOfOrder { first: u64, second: u64 },
    #[error("tree size {0} exceeds the supported maximum")]
    TooLarge(u64),
    #[error("the hash of subtree (level {}, index {}) is not stored", .0.level, .0.index)]
    MissingSubtree(NodeId),
    #[error("the proof has the wrong number of hashes")]
    WrongProofLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

/// A contiguous run of leaves `[start, end)` that the RFC's recursion visits.
#[derive(Debug, Clone, Copy)]
struct Range {
    start: u64,
    end: u64,
}

/// The perfect subtrees whose hashes fold (right to left, with [`node_hash`]) into the Merkle
/// Tree Hash of `range`. `range.start` is always a multiple of the first subtree's width,
/// because the recursion only ever starts a range at a multiple of a larger power of two.
fn range_nodes(range: Range) -> Vec<NodeId> {
    let mut nodes = Vec::new();
    let (mut start, end) = (range.start, range.end);
    while start < end {
        let len = end - start;
        let width = if len.is_power_of_two() {
            len
        } else {
            split_point(len)
        };
        debug_assert_eq!(start % width, 0, "recursion ranges start aligned");
        let level = width.trailing_zeros();
        nodes.push(NodeId::new(level, start >> level));
        start += width;
    }
    nodes
}

/// Folds the hashes of [`range_nodes`] into the range's Merkle Tree Hash.
fn range_hash(source: &impl SubtreeHashes, range: Range) -> Result<Hash, ProofError> {
    let nodes = range_nodes(range);
    let mut acc: Option<Hash> = None;
    for id in nodes.iter().rev() {
        let hash = source
            .subtree_hash(*id)
            .ok_or(ProofError::MissingSubtree(*id))?;
        acc = Some(match acc {
            None => hash,
            Some(right) => node_hash(&hash, &right),
        });
    }
    Ok(acc.unwrap_or_else(empty_root))
}

/// The ranges whose hashes form the inclusion proof of leaf `index` in a tree of `size`
/// leaves, deepest first (RFC 9162 §2.1.3.1, PATH(m, D[n])).
fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<Range>, ProofError> {
    check_size(size)?;
    if index >= size {
        return Err(ProofError::LeafOutOfRange { index, size });
    }
    let mut ranges = Vec::new();
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            ranges.push(Range {
                start: lo + k,
                end: hi,
            });
            hi = lo + k;
        } else {
            ranges.push(Range {
                start: lo,
                end: lo + k,
            });
            lo += k;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// The ranges whose hashes form the consistency proof from `first` to `second` leaves, in proof
/// order (RFC 9162 §2.1.4.1, PROOF(m, D[n]) = SUBPROOF(m, D[n], true)).
fn consistency_ranges(first: u64, second: u64) -> Result<Vec<Range>, ProofError> {
    check_size(second)?;
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == 0 || first == second {
        return Ok(Vec::new());
    }
    // Descend as SUBPROOF does; `suffix` collects what each level appends after the recursion.
    let mut suffix = Vec::new();
    let (mut lo, mut hi, mut m, mut whole) = (0, second, first, true);
    while m != hi - lo {
        let k = split_point(hi - lo);
        if m <= k {
            suffix.push(Range {
                start: lo + k,
                end: hi,
            });
            hi = lo + k;
        } else {
            suffix.push(Range {
                start: lo,
                end: lo + k,
            });
            lo += k;
            m -= k;
            whole = false;
        }
    }
    let mut ranges = Vec::with_capacity(suffix.len() + 1);
    if !whole {
        ranges.push(Range { start: lo, end: hi });
    }
    ranges.extend(suffix.into_iter().rev());
    Ok(ranges)
}

fn check_size(size: u64) -> Result<(), ProofError> {
    if size > MAX_TREE_SIZE {
        Err(ProofError::TooLarge(size))
    } else {
        Ok(())
    }
}

fn nodes_of(ranges: &[Range]) -> Vec<NodeId> {
    let mut nodes: Vec<NodeId> = ranges.iter().flat_map(|r| range_nodes(*r)).collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// The perfect subtrees [`root_from`] reads for a tree of `size` leaves (at most 63).
pub fn root_nodes(size: u64) -> Result<Vec<NodeId>, ProofError> {
    check_size(size)?;
    Ok(range_nodes(Range {
        start: 0,
        end: size,
    }))
}

/// The root of the first `size` leaves, from stored perfect subtrees.
pub fn root_from(source: &impl SubtreeHashes, size: u64) -> Result<Hash, ProofError> {
    check_size(size)?;
    range_hash(
        source,
        Range {
            start: 0,
            end: size,
        },
    )
}

/// The perfect subtrees [`inclusion_proof`] reads.
pub fn inclusion_nodes(index: u64, size: u64) -> Result<Vec<NodeId>, ProofError> {
    Ok(nodes_of(&inclusion_ranges(index, size)?))
}

/// The inclusion proof (audit path) of leaf `index` in the tree of the first `size` leaves,
/// deepest hash first (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(
    source: &impl SubtreeHashes,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    inclusion_ranges(index, size)?
        .into_iter()
        .map(|r| range_hash(source, r))
        .collect()
}

/// The perfect subtrees [`consistency_proof`] reads.
pub fn consistency_nodes(first: u64, second: u64) -> Result<Vec<NodeId>, ProofError> {
    Ok(nodes_of(&consistency_ranges(first, second)?))
}

/// The consistency proof that the tree of `first` leaves is a prefix of the tree of `second`
/// leaves (RFC 9162 §2.1.4.1). Empty when `first` is 0 or equals `second`.
pub fn consistency_proof(
    source: &impl SubtreeHashes,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, ProofError> {
    consistency_ranges(first, second)?
        .into_iter()
        .map(|r| range_hash(source, r))
        .collect()
}

/// The left siblings that appending leaf `index` completes, bottom up: one per trailing one bit
/// of `index`. A store reads these before [`completed_subtrees`].
pub fn append_siblings(index: u64) -> Vec<NodeId> {
    (0..index.trailing_ones())
        .map(|level| NodeId::new(level, (index >> level) - 1))
        .collect()
}

/// Every perfect subtree that exists once leaf `index` (with hash `leaf`) is appended and did
/// not before: the leaf itself at level 0, then each parent it completes. `siblings` are the
/// hashes of [`append_siblings`]`(index)`, in that order.
pub fn completed_subtrees(index: u64, leaf: Hash, siblings: &[Hash]) -> Vec<(NodeId, Hash)> {
    assert_eq!(
        siblings.len(),
        append_siblings(index).len(),
        "one sibling per completed level"
    );
    let mut out = Vec::with_capacity(siblings.len() + 1);
    let mut hash = leaf;
    out.push((NodeId::new(0, index), hash));
    for (level, sibling) in (1_u32..).zip(siblings) {
        hash = node_hash(sibling, &hash);
        out.push((NodeId::new(level, index >> level), hash));
    }
    out
}

/// Checks an inclusion proof: that `leaf` at `index` and `proof` give `root` for a tree of
/// `size` leaves. The algorithm of RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if &root_from_inclusion(index, size, leaf, proof)? == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The root that an inclusion proof leads to (RFC 9162 §2.1.3.2, steps 1–5 without the final
/// comparison).
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    check_size(size)?;
    if index >= size {
        return Err(ProofError::LeafOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::WrongProofLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongProofLength);
    }
    Ok(r)
}

/// Checks a consistency proof: that the tree of `first` leaves with root `first_root` is a
/// prefix of the tree of `second` leaves with root `second_root`. The algorithm of RFC 9162
/// §2.1.4.2, plus the trivial cases: an empty first tree is a prefix of every tree, and a tree
/// is consistent with itself when the roots are equal; both need an empty proof.
pub fn verify_consistency(
    first: u64,
    second: u64,
    proof: &[Hash],
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), ProofError> {
    check_size(second)?;
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == 0 || first == second {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength);
        }
        if first == second && first_root != second_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    // Step 1.
    if proof.is_empty() {
        return Err(ProofError::WrongProofLength);
    }
    // Step 2: a power-of-two first tree is itself a node of the second; its root starts the path.
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(first_root);
    }
    path.extend(proof);
    // Steps 3–4.
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 5.
    let (mut f_r, mut s_r) = (*path[0], *path[0]);
    // Step 6.
    for c in &path[1..] {
        if s_n == 0 {
            return Err(ProofError::WrongProofLength);
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 7.
    if s_n != 0 {
        return Err(ProofError::WrongProofLength);
    }
    if &f_r != first_root || &s_r != second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A log held in memory, storing every perfect subtree exactly as the database does. Used by
/// tests, by offline tools, and as the model the stored log is checked against.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    /// `levels[L][i]` is the hash of [`NodeId`] `(L, i)`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// How many leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf's bytes and returns its index.
    pub fn append(&mut self, leaf: &[u8]) -> u64 {
        self.append_hash(leaf_hash(leaf))
    }

    /// Appends an already hashed leaf and returns its index.
    pub fn append_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.size();
        let siblings: Vec<Hash> = append_siblings(index)
            .into_iter()
            .map(|id| {
                self.subtree_hash(id)
                    .expect("every completed subtree is kept")
            })
            .collect();
        for (id, hash) in completed_subtrees(index, leaf, &siblings) {
            let level = usize::try_from(id.level).expect("levels fit usize");
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            debug_assert_eq!(self.levels[level].len() as u64, id.index);
            self.levels[level].push(hash);
        }
        index
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        if size > self.size() {
            return Err(ProofError::SizesOutOfOrder {
                first: size,
                second: self.size(),
            });
        }
        root_from(self, size)
    }
}

impl SubtreeHashes for MemoryTree {
    fn subtree_hash(&self, id: NodeId) -> Option<Hash> {
        let level = self.levels.get(usize::try_from(id.level).ok()?)?;
        level.get(usize::try_from(id.index).ok()?).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points_are_the_largest_smaller_power_of_two() {
        let cases = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ];
        for (n, k) in cases {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn ranges_decompose_into_aligned_perfect_subtrees() {
        let nodes = range_nodes(Range { start: 0, end: 7 });
        assert_eq!(
            nodes,
            [NodeId::new(2, 0), NodeId::new(1, 2), NodeId::new(0, 6)]
        );
        assert_eq!(
            range_nodes(Range { start: 8, end: 16 }),
            [NodeId::new(3, 1)]
        );
        assert!(range_nodes(Range { start: 3, end: 3 }).is_empty());
    }

    #[test]
    fn appends_complete_one_subtree_per_trailing_one() {
        assert!(append_siblings(0).is_empty());
        assert_eq!(append_siblings(1), [NodeId::new(0, 0)]);
        assert_eq!(
            append_siblings(7),
            [NodeId::new(0, 6), NodeId::new(1, 2), NodeId::new(2, 0)]
        );
        assert!(append_siblings(8).is_empty());
    }
}
