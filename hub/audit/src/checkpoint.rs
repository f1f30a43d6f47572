//! Signed checkpoints of the audit log, in the C2SP formats a transparency
//! log publishes (`tlog-checkpoint` over `signed-note`), so that anyone
//! holding the hub's verifier key can check them with standard tools:
//!
//! ```text
//! tongban/audit/hub-a              origin: the log (one per replica)
//! 1024                             tree size: records covered
//! 2p7gW0qW6rAq…=                   base64 root of the Merkle tree
//!
//! — tongban/audit/hub-a Xb3k…      signature line: key id ‖ Ed25519 signature
//! ```
//!
//! The key's name is the log's origin; its id is the first four bytes of
//! SHA-256(name ‖ LF ‖ type ‖ public key), as `signed-note` recommends.
//! The verifier key is written `name+keyid+base64(type ‖ key)`.
//!
//! Two signature types ([`SigAlg`]): Ed25519 (type `0x01`, from ring, the
//! one crypto provider of the build), the default; and, for the national
//! algorithms (GB/T 39786), SM2 with SM3 (GB/T 32918, user ID
//! `1234567812345678`, from RustCrypto's `sm2`), which `signed-note`
//! assigns no byte: it is written, as the spec asks of such types, `0xff`
//! followed by a longer identifier, `sm2-sm3@tongban`, and the 65-byte
//! uncompressed SEC1 public key; signatures are r ‖ s, 64 bytes.

use crate::merkle::{Hash, HashAlg};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

/// `signed-note`'s algorithm byte for Ed25519.
const ED25519_ALG: u8 = 0x01;
/// The type of SM2-SM3 signatures: `0xff` (a type the spec assigns no
/// byte) and an identifier unlikely to collide.
const SM2_TYPE: &[u8] = b"\xffsm2-sm3@tongban";
/// The SM2 distinguishing identifier (GB/T 32918's default).
const SM2_USER_ID: &str = "1234567812345678";

/// How checkpoints are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigAlg {
    #[default]
    Ed25519,
    /// SM2 with SM3 (GB/T 32918), the national algorithm.
    Sm2,
}

impl SigAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigAlg::Ed25519 => "ed25519",
            SigAlg::Sm2 => "sm2",
        }
    }

    /// The signature type as `signed-note` writes it before the key.
    fn type_bytes(self) -> &'static [u8] {
        match self {
            SigAlg::Ed25519 => &[ED25519_ALG],
            SigAlg::Sm2 => SM2_TYPE,
        }
    }
}

enum Keys {
    Ed25519(Ed25519KeyPair),
    Sm2(sm2::dsa::SigningKey),
}
/// The signature line's prefix: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// A tree head: how many records, and their Merkle root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The origin of a replica's log.
    pub fn origin_of(replica: Option<&str>) -> String {
        format!("tongban/audit/{}", replica.unwrap_or("hub"))
    }

    /// The note's text: origin, size, base64 root, one a line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    fn parse_body(text: &str) -> Result<Checkpoint, String> {
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or("no origin line")?;
        let size = lines.next().ok_or("no tree size line")?;
        if size.len() > 1 && size.starts_with('0') {
            return Err(format!("tree size '{size}' has a leading zero"));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| format!("tree size '{size}' is not a number"))?;
        let root = lines.next().ok_or("no root line")?;
        let bytes = B64
            .decode(root)
            .map_err(|_| format!("root '{root}' is not base64"))?;
        let root: Hash = bytes
            .try_into()
            .map_err(|_| "the root is not 32 bytes".to_string())?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

fn key_id(name: &str, alg: SigAlg, public: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(alg.type_bytes());
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Signs checkpoints of one log.
pub struct Signer {
    name: String,
    keys: Keys,
    public: Vec<u8>,
    id: [u8; 4],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("name", &self.name).finish()
    }
}

impl Signer {
    /// The signer named `name` (the log's origin) whose Ed25519 key is
    /// made from `seed` (the hub derives it from its secret).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Signer {
        Self::with_alg(name, SigAlg::Ed25519, seed)
    }

    /// The signer of `alg` named `name` whose key is made from `seed`.
    pub fn with_alg(name: &str, alg: SigAlg, seed: &[u8; 32]) -> Signer {
        let (keys, public) = match alg {
            SigAlg::Ed25519 => {
                let pair =
                    Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32 bytes are a seed");
                let public = pair.public_key().as_ref().to_vec();
                (Keys::Ed25519(pair), public)
            }
            SigAlg::Sm2 => {
                // A scalar in [1, n-1]: a seed outside it (odds about
                // 2^-32) is hashed again until one is.
                let mut candidate = *seed;
                let key = loop {
                    if let Ok(k) = sm2::dsa::SigningKey::from_slice(SM2_USER_ID, &candidate) {
                        break k;
                    }
                    candidate = Sha256::digest(candidate).into();
                };
                let public = key.verifying_key().to_sec1_bytes().to_vec();
                (Keys::Sm2(key), public)
            }
        };
        Signer {
            name: name.to_string(),
            id: key_id(name, alg, &public),
            keys,
            public,
        }
    }

    /// The signature type.
    pub fn alg(&self) -> SigAlg {
        match self.keys {
            Keys::Ed25519(_) => SigAlg::Ed25519,
            Keys::Sm2(_) => SigAlg::Sm2,
        }
    }

    /// The signed note of `checkpoint`.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        let mut blob = self.id.to_vec();
        match &self.keys {
            Keys::Ed25519(pair) => blob.extend_from_slice(pair.sign(body.as_bytes()).as_ref()),
            Keys::Sm2(key) => {
                use sm2::dsa::signature::Signer as _;
                let sig: sm2::dsa::Signature = key.sign(body.as_bytes());
                blob.extend_from_slice(&sig.to_bytes());
            }
        }
        format!("{body}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }

    /// The verifier key to publish: `name+keyid+base64(type ‖ key)`.
    pub fn verifier_key(&self) -> String {
        let mut key = self.alg().type_bytes().to_vec();
        key.extend_from_slice(&self.public);
        format!("{}+{}+{}", self.name, hex::encode(self.id), B64.encode(key))
    }
}

/// Checks notes signed by one key.
#[derive(Debug, Clone)]
pub struct Verifier {
    name: String,
    id: [u8; 4],
    alg: SigAlg,
    public: Vec<u8>,
}

impl Verifier {
    /// Reads a verifier key as [`Signer::verifier_key`] writes it.
    pub fn parse(vkey: &str) -> Result<Verifier, String> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("a verifier key is name+keyid+key".into());
        };
        let key = B64
            .decode(key)
            .map_err(|_| "the key is not base64".to_string())?;
        let (alg, public) = if key.len() == 33 && key[0] == ED25519_ALG {
            (SigAlg::Ed25519, key[1..].to_vec())
        } else if let Some(point) = key.strip_prefix(SM2_TYPE) {
            sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_USER_ID, point)
                .map_err(|_| "not an SM2 public key".to_string())?;
            (SigAlg::Sm2, point.to_vec())
        } else {
            return Err("not an Ed25519 or SM2 verifier key".into());
        };
        let mut want = [0u8; 4];
        hex::decode_to_slice(id, &mut want).map_err(|_| "the key id is not 8 hex digits")?;
        if key_id(name, alg, &public) != want {
            return Err("the key id does not match the name and key".into());
        }
        Ok(Verifier {
            name: name.to_string(),
            id: want,
            alg,
            public,
        })
    }

    /// The checkpoint of `note`, if this key signed it.
    pub fn open(&self, note: &str) -> Result<Checkpoint, String> {
        let (body, sigs) = note
            .split_once("\n\n")
            .ok_or("not a signed note (no blank line before the signatures)")?;
        let body = format!("{body}\n");
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
                return Err(format!("not a signature line: {line}"));
            };
            let Some((name, sig)) = rest.split_once(' ') else {
                return Err(format!("not a signature line: {line}"));
            };
            if name != self.name {
                continue;
            }
            let blob = B64
                .decode(sig)
                .map_err(|_| "a signature is not base64".to_string())?;
            if blob.len() < 4 || blob[..4] != self.id {
                continue;
            }
            let verified = match self.alg {
                SigAlg::Ed25519 => UnparsedPublicKey::new(&ED25519, &self.public)
                    .verify(body.as_bytes(), &blob[4..])
                    .is_ok(),
                SigAlg::Sm2 => {
                    use sm2::dsa::signature::Verifier as _;
                    let key = sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_USER_ID, &self.public)
                        .map_err(|_| "not an SM2 public key".to_string())?;
                    sm2::dsa::Signature::from_slice(&blob[4..])
                        .is_ok_and(|sig| key.verify(body.as_bytes(), &sig).is_ok())
                }
            };
            if !verified {
                return Err(format!("the signature of {} does not verify", self.name));
            }
            let checkpoint = Checkpoint::parse_body(&body)?;
            if checkpoint.origin != self.name {
                return Err(format!(
                    "the note is of {}, the key of {}",
                    checkpoint.origin, self.name
                ));
            }
            return Ok(checkpoint);
        }
        Err(format!("no signature by {} on the note", self.name))
    }
}

/// The tree's hash, as checkpoints of a log record it (the algorithm is not
/// in the C2SP body: the verifier must know it; Tongban's docs and the
/// `audit checkpoint` output name it).
pub fn describe(alg: HashAlg) -> &'static str {
    match alg {
        HashAlg::Sha256 => "RFC 9162 tree, SHA-256",
        HashAlg::Sm3 => "RFC 9162 tree, SM3",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: Checkpoint::origin_of(Some("hub-a")),
            size: 1024,
            root: HashAlg::Sha256.leaf(b"x"),
        }
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_key_and_no_other() {
        let signer = Signer::from_seed("tongban/audit/hub-a", &[7; 32]);
        let note = signer.sign(&checkpoint());
        assert!(note.starts_with("tongban/audit/hub-a\n1024\n"), "{note}");
        assert!(note.contains("\n\n\u{2014} tongban/audit/hub-a "), "{note}");
        let verifier = Verifier::parse(&signer.verifier_key()).unwrap();
        assert_eq!(verifier.open(&note).unwrap(), checkpoint());

        // Another key of the same name: its id differs, so no signature is found.
        let other = Signer::from_seed("tongban/audit/hub-a", &[8; 32]);
        let v2 = Verifier::parse(&other.verifier_key()).unwrap();
        assert!(v2.open(&note).unwrap_err().contains("no signature"));
        // An edited size or root: the signature fails.
        let edited = note.replacen("1024", "1023", 1);
        assert!(
            verifier
                .open(&edited)
                .unwrap_err()
                .contains("does not verify")
        );
        // A verifier key whose id was altered is refused.
        let vkey = signer.verifier_key();
        let bad = vkey.replacen('+', "+0", 1);
        assert!(Verifier::parse(&bad).is_err());
    }

    /// SM2 with SM3, the national-algorithm option: the same note format,
    /// another signature type; neither kind of key opens the other's note.
    #[test]
    fn an_sm2_checkpoint_opens_with_its_key_and_no_other() {
        let signer = Signer::with_alg("tongban/audit/hub-a", SigAlg::Sm2, &[7; 32]);
        assert_eq!(signer.alg(), SigAlg::Sm2);
        let note = signer.sign(&checkpoint());
        let vkey = signer.verifier_key();
        let key = B64.decode(vkey.splitn(3, '+').nth(2).unwrap()).unwrap();
        assert_eq!(key[0], 0xff);
        assert!(key.starts_with(SM2_TYPE) && key.len() == SM2_TYPE.len() + 65);
        let verifier = Verifier::parse(&vkey).unwrap();
        assert_eq!(verifier.open(&note).unwrap(), checkpoint());
        // Deterministic (RFC 6979 nonces): the same note twice.
        assert_eq!(signer.sign(&checkpoint()), note);
        let edited = note.replacen("1024", "1025", 1);
        assert!(
            verifier
                .open(&edited)
                .unwrap_err()
                .contains("does not verify")
        );
        // The Ed25519 key of the same seed and name has another id.
        let ed =
            Verifier::parse(&Signer::from_seed("tongban/audit/hub-a", &[7; 32]).verifier_key())
                .unwrap();
        assert!(ed.open(&note).unwrap_err().contains("no signature"));
        let other = Signer::with_alg("tongban/audit/hub-a", SigAlg::Sm2, &[8; 32]);
        assert!(
            Verifier::parse(&other.verifier_key())
                .unwrap()
                .open(&note)
                .is_err()
        );
    }
}
