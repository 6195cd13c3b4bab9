//! The Merkle code against the published RFC 6962 test vectors (those of Certificate
//! Transparency and Trillian), and every proof the ledger produces checked by an independent
//! verifier written here from the RFC's recursive definitions (PATH and SUBPROOF), not by the
//! crate's own bit-twiddling verifier.

use sha2::{Digest, Sha256};
use vigil_event::{Event, Timestamp};
use vigil_ledger::merkle::{self, Hash};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader};

/// The eight leaf inputs of the reference suite.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Published roots of the trees of the first 1..=8 leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn h(s: &str) -> Hash {
    unhex(s).try_into().unwrap()
}

// ---- the independent verifier -------------------------------------------------------------

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut d = Sha256::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().into()
}

fn indep_leaf(data: &[u8]) -> Hash {
    sha256(&[&[0], data])
}

fn indep_node(l: &Hash, r: &Hash) -> Hash {
    sha256(&[&[1], l, r])
}

fn largest_power_of_two_below(n: u64) -> u64 {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Root from an inclusion proof, following RFC 6962 §2.1.1 PATH(m, D[n]): the proof is
/// PATH of the half holding m followed by the MTH of the other half.
fn root_from_path(leaf: Hash, m: u64, n: u64, proof: &[Hash]) -> Option<Hash> {
    if n == 1 {
        return proof.is_empty().then_some(leaf);
    }
    let (last, rest) = proof.split_last()?;
    let k = largest_power_of_two_below(n);
    if m < k {
        Some(indep_node(&root_from_path(leaf, m, k, rest)?, last))
    } else {
        Some(indep_node(last, &root_from_path(leaf, m - k, n - k, rest)?))
    }
}

/// Old and new roots from a consistency proof, following RFC 6962 §2.1.2 SUBPROOF(m, D[n], b).
fn roots_from_subproof(
    m: u64,
    n: u64,
    proof: &[Hash],
    b: bool,
    old_root: &Hash,
) -> Option<(Hash, Hash)> {
    if m == n {
        if b {
            return proof.is_empty().then_some((*old_root, *old_root));
        }
        let [only] = proof else { return None };
        return Some((*only, *only));
    }
    let (last, rest) = proof.split_last()?;
    let k = largest_power_of_two_below(n);
    if m <= k {
        let (old, new) = roots_from_subproof(m, k, rest, b, old_root)?;
        Some((old, indep_node(&new, last)))
    } else {
        let (old, new) = roots_from_subproof(m - k, n - k, rest, false, old_root)?;
        Some((indep_node(last, &old), indep_node(last, &new)))
    }
}

fn indep_verify_inclusion(leaf: Hash, m: u64, n: u64, proof: &[Hash], root: &Hash) -> bool {
    m < n && root_from_path(leaf, m, n, proof).as_ref() == Some(root)
}

fn indep_verify_consistency(m: u64, n: u64, proof: &[Hash], old: &Hash, new: &Hash) -> bool {
    if m == n {
        return proof.is_empty() && old == new;
    }
    0 < m
        && m < n
        && roots_from_subproof(m, n, proof, true, old).is_some_and(|(o, w)| &o == old && &w == new)
}

// ---- tests ---------------------------------------------------------------------------------

fn reference_leaf_hashes() -> Vec<Hash> {
    LEAVES
        .iter()
        .map(|l| merkle::leaf_hash(&unhex(l)))
        .collect()
}

#[test]
fn empty_tree_root() {
    assert_eq!(
        hex(&merkle::empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(merkle::root_from_leaf_hashes(&[]), merkle::empty_root());
}

#[test]
fn published_roots_for_one_to_eight_leaves() {
    let leaves = reference_leaf_hashes();
    for n in 1..=8 {
        assert_eq!(
            hex(&merkle::root_from_leaf_hashes(&leaves[..n])),
            ROOTS[n - 1],
            "n={n}"
        );
    }
}

#[test]
fn published_inclusion_proofs() {
    let leaves = reference_leaf_hashes();
    // (leaf index, tree size, proof) from the Trillian/CT reference suite.
    let cases: [(u64, u64, Vec<&str>); 4] = [
        (
            0,
            8,
            vec![
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            vec![
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            vec!["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            vec![
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, expected) in cases {
        let proof = merkle::inclusion_proof(&mut &leaves[..size as usize], index, size).unwrap();
        let got: Vec<String> = proof.iter().map(hex).collect();
        assert_eq!(got, expected, "index {index} size {size}");
        let root = h(ROOTS[size as usize - 1]);
        assert!(indep_verify_inclusion(
            leaves[index as usize],
            index,
            size,
            &proof,
            &root
        ));
        merkle::verify_inclusion(&leaves[index as usize], index, size, &proof, &root).unwrap();
    }
}

#[test]
fn published_consistency_proofs() {
    let leaves = reference_leaf_hashes();
    let cases: [(u64, u64, Vec<&str>); 4] = [
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            vec![
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            vec![
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (old, new, expected) in cases {
        let proof = merkle::consistency_proof(&mut &leaves[..new as usize], old, new).unwrap();
        let got: Vec<String> = proof.iter().map(hex).collect();
        assert_eq!(got, expected, "{old} -> {new}");
        let (old_root, new_root) = (h(ROOTS[old as usize - 1]), h(ROOTS[new as usize - 1]));
        assert!(indep_verify_consistency(
            old, new, &proof, &old_root, &new_root
        ));
        merkle::verify_consistency(old, new, &proof, &old_root, &new_root).unwrap();
    }
}

#[test]
fn independent_verifier_rejects_what_it_should() {
    let leaves = reference_leaf_hashes();
    let root = h(ROOTS[7]);
    let proof = merkle::inclusion_proof(&mut &leaves[..], 5, 8).unwrap();
    assert!(
        !indep_verify_inclusion(leaves[4], 5, 8, &proof, &root),
        "wrong leaf"
    );
    assert!(
        !indep_verify_inclusion(leaves[5], 4, 8, &proof, &root),
        "wrong index"
    );
    assert!(
        !indep_verify_inclusion(leaves[5], 5, 16, &proof, &root),
        "wrong size"
    );
    assert!(
        !indep_verify_inclusion(leaves[5], 5, 4, &proof, &root),
        "wrong size"
    );
    assert!(
        !indep_verify_inclusion(leaves[5], 5, 8, &proof[..2], &root),
        "short proof"
    );
    let mut longer = proof.clone();
    longer.push(root);
    assert!(
        !indep_verify_inclusion(leaves[5], 5, 8, &longer, &root),
        "long proof"
    );
}

#[test]
fn ledger_proofs_verify_independently_across_groups_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig {
        segment_max_bytes: 2048,
        ..LedgerConfig::default()
    };
    let (ledger, _) = Ledger::open(dir.path(), config).unwrap();
    let mut sizes = Vec::new();
    for batch in 0..9u64 {
        let events: Vec<Event> = (0..(97 + batch * 61))
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + i as i64));
                e.insert(
                    "message",
                    format!("batch {batch} event {i} {}", "x".repeat((i % 50) as usize)),
                );
                e
            })
            .collect();
        ledger.append(&events).unwrap();
        sizes.push(ledger.checkpoint().unwrap().unwrap().checkpoint.size);
    }
    ledger.close().unwrap();

    let mut reader = LedgerReader::open(dir.path()).unwrap();
    assert!(
        reader.segments().len() > 2,
        "the test needs several segments"
    );
    let checkpoints = reader.checkpoints().unwrap();
    let latest = checkpoints.last().unwrap().checkpoint.clone();
    let n = latest.size;
    assert_eq!(n, *sizes.last().unwrap());
    for seq in (0..n).step_by(7).chain([0, 255, 256, 511, 512, n - 1]) {
        let p = reader.inclusion_proof(seq).unwrap();
        assert_eq!(p.tree_size, n);
        let leaf = indep_leaf(&p.leaf);
        assert_eq!(leaf, p.leaf_hash);
        assert!(
            indep_verify_inclusion(leaf, seq, n, &p.proof, &latest.root),
            "seq {seq}"
        );
    }
    // Every earlier checkpoint is consistent with the latest one.
    for cp in &checkpoints[..checkpoints.len() - 1] {
        let old = cp.checkpoint.size;
        let proof = reader.consistency_proof(old, n).unwrap();
        assert!(
            indep_verify_consistency(old, n, &proof, &cp.checkpoint.root, &latest.root),
            "{old} -> {n}"
        );
    }
}
