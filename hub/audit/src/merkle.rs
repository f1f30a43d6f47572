//! The audit log as a Merkle tree, as RFC 9162 §2.1 defines it: each
//! record's line (its JSON, without the newline) is a leaf, `leaf =
//! H(0x00 ‖ line)`, `node = H(0x01 ‖ left ‖ right)`, the tree of `n` leaves
//! splits at the largest power of two below `n`. A tree head (size and
//! root) commits to every record up to it: a record edited, removed,
//! reordered or cut off changes the root of every head that covers it, and
//! a consistency proof shows that a later head extends an earlier one (no
//! fork). The hash is SHA-256 or SM3 ([`HashAlg`]).
//!
//! - [`Frontier`]: the roots of the perfect subtrees of the log so far, all
//!   the writer needs to know the current root (one leaf hash and on
//!   average one node hash per record);
//! - [`inclusion_proof`], [`consistency_proof`]: proofs from the leaves,
//!   computed by `tongban audit prove` from the log's lines;
//! - [`verify_inclusion`], [`verify_consistency`]: RFC 9162 §2.1.3.2 and
//!   §2.1.4.2, what any third party runs against a signed checkpoint.

use serde::{Deserialize, Serialize};
use sha2::Digest;

/// A tree hash.
pub type Hash = [u8; 32];

/// The hash of the chain, the tree and key hashes: SHA-256 (the default),
/// or SM3 (GB/T 32905), the national algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    #[default]
    Sha256,
    Sm3,
}

impl HashAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sm3 => "sm3",
        }
    }

    /// The digest of the concatenated parts.
    pub fn digest(self, parts: &[&[u8]]) -> Hash {
        fn run<D: Digest>(parts: &[&[u8]]) -> Hash {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            let mut out = [0u8; 32];
            out.copy_from_slice(&d.finalize());
            out
        }
        match self {
            HashAlg::Sha256 => run::<sha2::Sha256>(parts),
            HashAlg::Sm3 => run::<sm3::Sm3>(parts),
        }
    }

    /// The hash of a leaf: `H(0x00 ‖ data)`.
    pub fn leaf(self, data: &[u8]) -> Hash {
        self.digest(&[&[0x00], data])
    }

    /// The hash of an inner node: `H(0x01 ‖ left ‖ right)`.
    pub fn node(self, left: &Hash, right: &Hash) -> Hash {
        self.digest(&[&[0x01], left, right])
    }

    /// The root of the empty tree: `H()`.
    pub fn empty(self) -> Hash {
        self.digest(&[])
    }
}

impl std::str::FromStr for HashAlg {
    type Err = String;
    fn from_str(s: &str) -> Result<HashAlg, String> {
        match s {
            "sha256" => Ok(HashAlg::Sha256),
            "sm3" => Ok(HashAlg::Sm3),
            other => Err(format!("unknown hash '{other}' (sha256 or sm3)")),
        }
    }
}

/// The log's tree so far, by the roots of its perfect subtrees, largest
/// (leftmost) first: one per set bit of the size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontier {
    pub alg: HashAlg,
    pub size: u64,
    /// Hex, so that the state file reads as text.
    #[serde(with = "hex_hashes")]
    pub nodes: Vec<Hash>,
}

impl Frontier {
    pub fn new(alg: HashAlg) -> Frontier {
        Frontier {
            alg,
            size: 0,
            nodes: Vec::new(),
        }
    }

    /// Appends a leaf by its data (a record's line).
    pub fn push(&mut self, data: &[u8]) {
        let mut h = self.alg.leaf(data);
        let mut size = self.size;
        // Each trailing set bit is a perfect subtree of the same size as
        // the one being carried: merge them.
        while size & 1 == 1 {
            let left = self.nodes.pop().expect("one node per set bit");
            h = self.alg.node(&left, &h);
            size >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// The root of the tree of `size` leaves.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return self.alg.empty();
        };
        nodes.fold(*last, |right, left| self.alg.node(left, &right))
    }
}

/// The largest power of two smaller than `n` (`n` ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The root of the tree over `leaves` (leaf hashes), RFC 9162's MTH.
pub fn root(alg: HashAlg, leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => alg.empty(),
        1 => leaves[0],
        n => {
            let k = split(n);
            alg.node(&root(alg, &leaves[..k]), &root(alg, &leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` in the tree over `leaves` (RFC 9162
/// §2.1.3.1), nearest sibling first.
pub fn inclusion_proof(alg: HashAlg, leaves: &[Hash], index: usize) -> Vec<Hash> {
    fn path(alg: HashAlg, m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
        let n = leaves.len();
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            path(alg, m, &leaves[..k], out);
            out.push(root(alg, &leaves[k..]));
        } else {
            path(alg, m - k, &leaves[k..], out);
            out.push(root(alg, &leaves[..k]));
        }
    }
    assert!(index < leaves.len(), "leaf {index} of {}", leaves.len());
    let mut out = Vec::new();
    path(alg, index, leaves, &mut out);
    out
}

/// The proof that the tree over `leaves` extends its first `first` leaves
/// (RFC 9162 §2.1.4.1).
pub fn consistency_proof(alg: HashAlg, leaves: &[Hash], first: usize) -> Vec<Hash> {
    fn sub(alg: HashAlg, m: usize, leaves: &[Hash], whole: bool, out: &mut Vec<Hash>) {
        let n = leaves.len();
        if m == n {
            if !whole {
                out.push(root(alg, leaves));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            sub(alg, m, &leaves[..k], whole, out);
            out.push(root(alg, &leaves[k..]));
        } else {
            sub(alg, m - k, &leaves[k..], false, out);
            out.push(root(alg, &leaves[..k]));
        }
    }
    assert!(first <= leaves.len(), "first {first} of {}", leaves.len());
    let mut out = Vec::new();
    if first > 0 && first < leaves.len() {
        sub(alg, first, leaves, true, &mut out);
    }
    out
}

/// Whether `proof` shows the leaf hash `leaf` at `index` in the tree of
/// `size` leaves with root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    alg: HashAlg,
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = alg.node(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = alg.node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// Whether `proof` shows that the tree of `second` leaves (root
/// `second_root`) extends the tree of `first` leaves (root `first_root`)
/// (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    alg: HashAlg,
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        // Every tree extends the empty one.
        return proof.is_empty() && *first_root == alg.empty();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = alg.node(c, &fr);
            sr = alg.node(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = alg.node(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *first_root && sr == *second_root && sn == 0
}

mod hex_hashes {
    use super::Hash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(nodes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(nodes.iter().map(hex::encode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        let texts: Vec<String> = Vec::deserialize(d)?;
        texts
            .iter()
            .map(|t| {
                let mut h = [0u8; 32];
                hex::decode_to_slice(t, &mut h).map_err(serde::de::Error::custom)?;
                Ok(h)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(alg: HashAlg, n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| alg.leaf(format!("record {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn the_frontier_has_the_root_of_the_whole_tree_at_every_size() {
        for alg in [HashAlg::Sha256, HashAlg::Sm3] {
            let mut f = Frontier::new(alg);
            assert_eq!(f.root(), alg.empty());
            let all = leaves(alg, 70);
            for (i, _) in all.iter().enumerate() {
                f.push(format!("record {i}").as_bytes());
                assert_eq!(f.root(), root(alg, &all[..=i]), "size {}", i + 1);
                assert_eq!(f.nodes.len() as u32, f.size.count_ones());
            }
        }
    }

    #[test]
    fn inclusion_proofs_verify_and_fail_when_anything_differs() {
        let alg = HashAlg::Sha256;
        for n in 1..=33usize {
            let all = leaves(alg, n);
            let r = root(alg, &all);
            for i in 0..n {
                let p = inclusion_proof(alg, &all, i);
                assert!(
                    verify_inclusion(alg, i as u64, n as u64, &all[i], &p, &r),
                    "{i} of {n}"
                );
                // Another leaf, another index, another size, a bent path: no.
                let other = alg.leaf(b"not in the log");
                assert!(!verify_inclusion(alg, i as u64, n as u64, &other, &p, &r));
                if n > 1 {
                    let j = (i + 1) % n;
                    assert!(!verify_inclusion(alg, j as u64, n as u64, &all[i], &p, &r));
                    let mut bent = p.clone();
                    bent[0][0] ^= 1;
                    assert!(!verify_inclusion(
                        alg, i as u64, n as u64, &all[i], &bent, &r
                    ));
                }
                // Against the root of a longer log: no.
                let longer = leaves(alg, n + 1);
                let r2 = root(alg, &longer);
                assert!(!verify_inclusion(
                    alg,
                    i as u64,
                    n as u64 + 1,
                    &all[i],
                    &p,
                    &r2
                ));
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_expose_forks() {
        let alg = HashAlg::Sha256;
        for n in 1..=33usize {
            let all = leaves(alg, n);
            let second = root(alg, &all);
            for m in 0..=n {
                let first = root(alg, &all[..m]);
                let p = consistency_proof(alg, &all, m);
                assert!(
                    verify_consistency(alg, m as u64, n as u64, &first, &second, &p),
                    "{m} -> {n}"
                );
                if m > 0 && m < n {
                    // A fork: the first tree had another record somewhere.
                    let mut forked = all[..m].to_vec();
                    forked[m / 2] = alg.leaf(b"rewritten");
                    let forked_root = root(alg, &forked);
                    assert!(!verify_consistency(
                        alg,
                        m as u64,
                        n as u64,
                        &forked_root,
                        &second,
                        &p
                    ));
                    let mut bent = p.clone();
                    let last = bent.len() - 1;
                    bent[last][31] ^= 1;
                    assert!(!verify_consistency(
                        alg, m as u64, n as u64, &first, &second, &bent
                    ));
                }
            }
        }
    }

    /// The tree of RFC 9162 (and RFC 6962) is that of Certificate
    /// Transparency: checked against an independent implementation, the
    /// `ct-merkle` crate, for roots and proofs of every size up to 40.
    #[test]
    fn roots_and_proofs_match_ct_merkle() {
        use ct_merkle::mem_backed_tree::MemoryBackedTree;
        let alg = HashAlg::Sha256;
        let mut theirs = MemoryBackedTree::<sha2_11::Sha256, Vec<u8>>::new();
        let mut data = Vec::new();
        for n in 1..=40usize {
            let d = format!("line {n}").into_bytes();
            theirs.push(d.clone());
            data.push(d);
            let ours: Vec<Hash> = data.iter().map(|d| alg.leaf(d)).collect();
            let their_root = theirs.root();
            assert_eq!(
                &root(alg, &ours)[..],
                their_root.as_bytes().as_slice(),
                "root of {n}"
            );
            for i in [0, n / 2, n - 1] {
                let their_proof = theirs.prove_inclusion(i);
                let flat: Vec<u8> = inclusion_proof(alg, &ours, i).concat();
                assert_eq!(flat, their_proof.as_bytes(), "inclusion {i} of {n}");
            }
            for m in 1..n {
                let their_proof = theirs.prove_consistency(n - m);
                let flat: Vec<u8> = consistency_proof(alg, &ours, m).concat();
                assert_eq!(flat, their_proof.as_bytes(), "consistency {m} -> {n}");
            }
        }
    }

    /// GB/T 32905-2016, Appendix A: SM3 of "abc".
    #[test]
    fn sm3_matches_the_standards_test_vector() {
        assert_eq!(
            hex::encode(HashAlg::Sm3.digest(&[b"abc"])),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        let abcd = b"abcd".repeat(16);
        assert_eq!(
            hex::encode(HashAlg::Sm3.digest(&[&abcd])),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }
}
