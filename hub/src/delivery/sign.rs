//! Signed, expiring URLs for shared files, as object stores presign theirs:
//! the URL itself is the credential, so Delta Sharing clients fetch files
//! without sending their bearer token. A URL names one file of one
//! subscription under one plan (by fingerprint) and expires; the hub checks
//! the signature, the expiry, and that the subscription is still active
//! under the same plan before it serves a byte.
//!
//! Form: `<base64url(payload JSON)>.<base64url(HMAC-SHA256(payload))>`, with
//! a key derived from the hub's secret.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a signed URL grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Subscription id.
    #[serde(rename = "s")]
    pub subscription: i64,
    /// The plan's fingerprint when the URL was made.
    #[serde(rename = "f")]
    pub fingerprint: String,
    /// The file, relative to the sharing directory.
    #[serde(rename = "p")]
    pub path: String,
    /// Expiry, Unix milliseconds.
    #[serde(rename = "e")]
    pub expires_ms: i64,
}

/// Why a token is not honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Malformed,
    BadSignature,
    Expired,
}

pub struct Signer {
    key: Hmac<Sha256>,
}

impl Signer {
    /// A signer whose key is derived from `secret` (so the secret itself is
    /// never an URL-signing key, and rotating one rotates the other).
    pub fn new(secret: &[u8]) -> Signer {
        let mut derive = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
        derive.update(b"tongban delta-sharing file urls v1");
        let key = derive.finalize().into_bytes();
        Signer {
            key: Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key"),
        }
    }

    pub fn sign(&self, grant: &Grant) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(grant).expect("grants serialise"));
        let mut mac = self.key.clone();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// The grant of a token, if it is genuine and not expired at `now_ms`.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Grant, Invalid> {
        let (payload, sig) = token.split_once('.').ok_or(Invalid::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| Invalid::Malformed)?;
        let mut mac = self.key.clone();
        mac.update(payload.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&sig).map_err(|_| Invalid::BadSignature)?;
        let grant: Grant = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(Invalid::Malformed)?;
        if grant.expires_ms <= now_ms {
            return Err(Invalid::Expired);
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            subscription: 3,
            fingerprint: "00ff".into(),
            path: "sub-3/00ff/v2/part-00000.parquet".into(),
            expires_ms: 2_000,
        }
    }

    #[test]
    fn a_signed_grant_verifies_until_it_expires() {
        let s = Signer::new(b"hub secret");
        let token = s.sign(&grant());
        assert_eq!(s.verify(&token, 1_999), Ok(grant()));
        assert_eq!(s.verify(&token, 2_000), Err(Invalid::Expired));
    }

    #[test]
    fn tampering_or_another_key_is_refused() {
        let s = Signer::new(b"hub secret");
        let token = s.sign(&grant());
        let (payload, sig) = token.split_once('.').unwrap();
        let mut other = grant();
        other.subscription = 4;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(
            s.verify(&format!("{forged_payload}.{sig}"), 0),
            Err(Invalid::BadSignature)
        );
        assert_eq!(
            Signer::new(b"other secret").verify(&token, 0),
            Err(Invalid::BadSignature)
        );
        assert_eq!(s.verify(payload, 0), Err(Invalid::Malformed));
        assert_eq!(s.verify("x.y", 0), Err(Invalid::Malformed));
    }
}
