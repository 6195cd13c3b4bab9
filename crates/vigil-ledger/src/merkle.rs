//! RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification.
//!
//! Pure functions: nothing here knows about files. Proof *generation* reads subtree hashes
//! through [`SubtreeHashes`], so the ledger can serve them from stored tiles and recompute the
//! rest from segment data; proof *verification* needs nothing but the proof.
//!
//! * leaf hash `SHA-256(0x00 ‖ data)`, node hash `SHA-256(0x01 ‖ left ‖ right)`;
//! * `MTH(D[n])` splits at the largest power of two smaller than `n`;
//! * inclusion proofs (RFC 9162 §2.1.3) list siblings from the leaf upwards;
//! * consistency proofs (RFC 9162 §2.1.4) follow `SUBPROOF`.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
pub fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH` of a list of leaf hashes.
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push_leaf(*leaf);
    }
    frontier.root()
}

/// The right edge of a growing tree: the roots of the perfect subtrees that make up `[0, size)`,
/// one per set bit of `size`, largest first. Appending is amortised O(1), the root O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Number of leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Perfect subtree roots, largest (leftmost) first, with their heights.
    pub fn nodes(&self) -> impl Iterator<Item = (u32, &Hash)> {
        let mut heights = Vec::with_capacity(self.nodes.len());
        for bit in (0..64).rev() {
            if self.size & (1 << bit) != 0 {
                heights.push(bit);
            }
        }
        heights.into_iter().zip(self.nodes.iter())
    }

    /// Appends one leaf hash.
    pub fn push_leaf(&mut self, leaf: Hash) {
        self.push_subtree(0, leaf);
    }

    /// Appends the root of a perfect subtree of `2^height` leaves. The current size must be a
    /// multiple of `2^height` (the subtree must be aligned); panics otherwise, as that is a bug.
    pub fn push_subtree(&mut self, height: u32, root: Hash) {
        assert!(
            self.size.trailing_zeros() >= height || self.size == 0,
            "unaligned subtree of height {height} at size {}",
            self.size
        );
        let mut hash = root;
        let mut level = self.size >> height;
        while level & 1 == 1 {
            let left = self.nodes.pop().expect("a set bit has a node");
            hash = node_hash(&left, &hash);
            level >>= 1;
        }
        self.nodes.push(hash);
        self.size += 1 << height;
    }

    /// `MTH` of the leaves covered so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// Where proof generation gets `MTH(D[start:end])` for the ranges RFC 9162's recursions visit.
pub trait SubtreeHashes {
    /// Error of the underlying store.
    type Error;
    /// `MTH` of leaves `[start, end)`, `start < end`.
    fn subtree_hash(&mut self, start: u64, end: u64) -> Result<Hash, Self::Error>;
}

/// Subtree hashes straight from a slice of leaf hashes (tests, small trees).
impl SubtreeHashes for &[Hash] {
    type Error = std::convert::Infallible;
    fn subtree_hash(&mut self, start: u64, end: u64) -> Result<Hash, Self::Error> {
        Ok(root_from_leaf_hashes(&self[start as usize..end as usize]))
    }
}

/// Inclusion proof of leaf `index` in the tree of the first `size` leaves (RFC 9162 §2.1.3.1),
/// siblings ordered from the leaf upwards. `index < size` is the caller's to check.
pub fn inclusion_proof<S: SubtreeHashes>(
    src: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    path(src, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path<S: SubtreeHashes>(
    src: &mut S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(src, m, start, start + k, out)?;
        out.push(src.subtree_hash(start + k, end)?);
    } else {
        path(src, m - k, start + k, end, out)?;
        out.push(src.subtree_hash(start, start + k)?);
    }
    Ok(())
}

/// Consistency proof between tree sizes `old` and `new` (RFC 9162 §2.1.4.1), `0 < old <= new`.
/// Empty when `old == new`.
pub fn consistency_proof<S: SubtreeHashes>(
    src: &mut S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    if old == 0 || old >= new {
        return Ok(proof);
    }
    subproof(src, old, 0, new, true, &mut proof)?;
    Ok(proof)
}

fn subproof<S: SubtreeHashes>(
    src: &mut S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(src.subtree_hash(start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(src, m, start, start + k, whole, out)?;
        out.push(src.subtree_hash(start + k, end)?);
    } else {
        subproof(src, m - k, start + k, end, false, out)?;
        out.push(src.subtree_hash(start, start + k)?);
    }
    Ok(())
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index or sizes are out of range.
    #[error("proof parameters out of range: {0}")]
    Range(&'static str),
    /// The proof has the wrong number of hashes for these parameters.
    #[error("proof has the wrong length")]
    Length,
    /// The proof is well-formed but leads to another root.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Range("leaf index not below tree size"));
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::Length);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::Length);
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks a consistency proof between `(old_size, old_root)` and `(new_size, new_root)`
/// (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::Range("old size exceeds new size"));
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::Length);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old_size == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::Length)
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::Length);
    };
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::Length);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::Length);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    /// MTH by the recursive definition, independent of [`Frontier`].
    fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    #[test]
    fn frontier_matches_recursive_definition() {
        for n in 0..300 {
            let l = leaves(n);
            assert_eq!(root_from_leaf_hashes(&l), mth(&l), "n={n}");
        }
    }

    #[test]
    fn push_subtree_equals_pushing_its_leaves() {
        let l = leaves(1024 + 256 + 7);
        let mut by_leaf = Frontier::new();
        for h in &l {
            by_leaf.push_leaf(*h);
        }
        let mut by_group = Frontier::new();
        for chunk in l[..1280].chunks(256) {
            by_group.push_subtree(8, mth(chunk));
        }
        for h in &l[1280..] {
            by_group.push_leaf(*h);
        }
        assert_eq!(by_leaf, by_group);
    }

    #[test]
    fn proofs_round_trip_for_all_small_trees() {
        for size in 1..=40u64 {
            let l = leaves(size as usize);
            let root = mth(&l);
            for index in 0..size {
                let proof = inclusion_proof(&mut l.as_slice(), index, size).unwrap();
                verify_inclusion(&l[index as usize], index, size, &proof, &root).unwrap();
                let wrong = leaf_hash(b"other");
                assert_eq!(
                    verify_inclusion(&wrong, index, size, &proof, &root),
                    Err(ProofError::RootMismatch)
                );
            }
            for old in 1..=size {
                let proof = consistency_proof(&mut l.as_slice(), old, size).unwrap();
                let old_root = mth(&l[..old as usize]);
                verify_consistency(old, size, &proof, &old_root, &root)
                    .unwrap_or_else(|e| panic!("old={old} size={size}: {e}"));
                if old < size {
                    assert!(verify_consistency(old, size, &proof, &root, &root).is_err());
                }
            }
        }
    }
}
