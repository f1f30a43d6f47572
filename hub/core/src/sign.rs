//! Signed, expiring tokens: a claim the hub made and will honour until it
//! expires, carried by the client and checked without any store. Two uses,
//! one format: Delta Sharing file URLs (the URL is the credential, as object
//! stores presign theirs) and console sessions (a cookie naming a token's
//! hash).
//!
//! Form: `<base64url(claims JSON)>.<base64url(HMAC-SHA256(payload))>`, with a
//! key derived from the hub's secret and the token's purpose, so a token of
//! one purpose is never valid for another, and the secret itself never signs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// Claims that say when they stop being honoured.
pub trait Expiring {
    /// Expiry, Unix milliseconds.
    fn expires_ms(&self) -> i64;
}

/// Why a token is not honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Malformed,
    BadSignature,
    Expired,
}

/// Signs and checks tokens of one purpose.
#[derive(Clone)]
pub struct Signer {
    key: Hmac<Sha256>,
}

impl Signer {
    /// A signer whose key is derived from `secret` and `purpose` (e.g.
    /// `b"tongban console sessions v1"`).
    pub fn new(secret: &[u8], purpose: &[u8]) -> Signer {
        let mut derive = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
        derive.update(purpose);
        let key = derive.finalize().into_bytes();
        Signer {
            key: Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key"),
        }
    }

    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let mut mac = self.key.clone();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// A keyed digest of `data` (base64url): a value only the hub can make,
    /// such as a form's CSRF token bound to its session.
    pub fn mac(&self, data: &str) -> String {
        let mut mac = self.key.clone();
        mac.update(data.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The claims of a token, if it is genuine and not expired at `now_ms`.
    pub fn verify<C: DeserializeOwned + Expiring>(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<C, Invalid> {
        let (payload, sig) = token.split_once('.').ok_or(Invalid::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| Invalid::Malformed)?;
        let mut mac = self.key.clone();
        mac.update(payload.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&sig).map_err(|_| Invalid::BadSignature)?;
        let claims: C = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(Invalid::Malformed)?;
        if claims.expires_ms() <= now_ms {
            return Err(Invalid::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// What a shared file's URL grants (as the delivery crate's grant).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Grant {
        subscription: i64,
        fingerprint: String,
        path: String,
        expires_ms: i64,
    }

    impl Expiring for Grant {
        fn expires_ms(&self) -> i64 {
            self.expires_ms
        }
    }

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
        let s = Signer::new(b"hub secret", b"files");
        let token = s.sign(&grant());
        assert_eq!(s.verify(&token, 1_999), Ok(grant()));
        assert_eq!(s.verify::<Grant>(&token, 2_000), Err(Invalid::Expired));
    }

    #[test]
    fn tampering_or_another_key_is_refused() {
        let s = Signer::new(b"hub secret", b"files");
        let token = s.sign(&grant());
        let (payload, sig) = token.split_once('.').unwrap();
        let mut other = grant();
        other.subscription = 4;
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(
            s.verify::<Grant>(&format!("{forged_payload}.{sig}"), 0),
            Err(Invalid::BadSignature)
        );
        assert_eq!(
            Signer::new(b"other secret", b"files").verify::<Grant>(&token, 0),
            Err(Invalid::BadSignature)
        );
        assert_eq!(s.verify::<Grant>(payload, 0), Err(Invalid::Malformed));
        assert_eq!(s.verify::<Grant>("x.y", 0), Err(Invalid::Malformed));
        assert_eq!(
            Signer::new(b"hub secret", b"sessions").verify::<Grant>(&token, 0),
            Err(Invalid::BadSignature),
            "a token of one purpose is no good for another"
        );
    }
}
