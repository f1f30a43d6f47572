//! Identities: API tokens, hashed at rest, resolved in memory on each request.
//!
//! A token is `tb_` plus 43 base64url characters (32 random bytes). The
//! catalog keeps only its SHA-256; the hub loads the hashes at start, so
//! checking a token costs one hash and one map lookup, with no database trip.

use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tongban_catalog::{Role, Store, TokenRecord};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub department: String,
    pub role: Role,
}

/// Token hash → identity, shared by all requests.
#[derive(Debug, Default, Clone)]
pub struct Identities {
    by_hash: Arc<RwLock<HashMap<String, Identity>>>,
}

/// A fresh random token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    format!(
        "tb_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// How a client certificate is stored among the tokens: `cert:` and its
/// fingerprint. A token's hash is plain hex, so the two never collide.
pub fn certificate_key(fingerprint: &str) -> String {
    format!("cert:{fingerprint}")
}

/// The hex SHA-256 under which a token is stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Issues a new token for `department` with `role`: stored hashed, returned
/// once in full. The one place tokens are made (CLI, Delta Sharing
/// profiles, the demo's credentials come through here).
pub async fn issue(
    store: &dyn Store,
    department: &str,
    role: Role,
    label: String,
) -> tongban_catalog::Result<String> {
    let token = new_token();
    store
        .put_token(&TokenRecord {
            token_hash: hash_token(&token),
            department: department.to_string(),
            role,
            label,
        })
        .await?;
    Ok(token)
}

impl Identities {
    /// Stage 1 of the access pipeline: who calls, from an `Authorization`
    /// header's value (`Bearer <token>`; the scheme is case-insensitive,
    /// RFC 9110 §11.1) or, without one, the fingerprint of a verified client
    /// certificate. The one place either is read, for every transport.
    pub fn identify(
        &self,
        authorization: Option<&str>,
        certificate: Option<&str>,
    ) -> Result<Identity, crate::Error> {
        let unauthorized = |why: &'static str| crate::Error::Unauthorized(why);
        let Some(header) = authorization else {
            return match certificate {
                Some(fp) => self.resolve_certificate(fp).ok_or_else(|| {
                    unauthorized("the client certificate is not registered to a department")
                }),
                None => Err(unauthorized(
                    "send an Authorization: Bearer <token> header or a client certificate",
                )),
            };
        };
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <token>'"))?;
        self.resolve(token)
            .ok_or_else(|| unauthorized("unknown or revoked token"))
    }

    /// Loads every token from the store, replacing what was known.
    pub async fn load(store: &dyn Store) -> tongban_catalog::Result<Identities> {
        let ids = Identities::default();
        ids.reload(store).await?;
        Ok(ids)
    }

    pub async fn reload(&self, store: &dyn Store) -> tongban_catalog::Result<()> {
        let map = store
            .list_tokens()
            .await?
            .into_iter()
            .map(|t: TokenRecord| {
                (
                    t.token_hash,
                    Identity {
                        department: t.department,
                        role: t.role,
                    },
                )
            })
            .collect();
        *self.by_hash.write().expect("identities lock") = map;
        Ok(())
    }

    /// The identity behind a bearer token, if any.
    pub fn resolve(&self, token: &str) -> Option<Identity> {
        // The hash's hex on the stack: every request comes through here.
        let mut hex = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(token.as_bytes()), &mut hex).ok()?;
        let hash = std::str::from_utf8(&hex).ok()?;
        self.by_hash
            .read()
            .expect("identities lock")
            .get(hash)
            .cloned()
    }

    /// The identity behind a stored token hash (a console session keeps the
    /// hash, never the token), if the token is still registered.
    pub fn resolve_hash(&self, token_hash: &str) -> Option<Identity> {
        self.by_hash
            .read()
            .expect("identities lock")
            .get(token_hash)
            .cloned()
    }

    /// The identity behind a client certificate's fingerprint, if registered.
    pub fn resolve_certificate(&self, fingerprint: &str) -> Option<Identity> {
        self.by_hash
            .read()
            .expect("identities lock")
            .get(&certificate_key(fingerprint))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("tb_") && a.len() == 46, "{a}");
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), hash_token(&b));
    }

    #[test]
    fn a_caller_is_identified_by_bearer_token_or_certificate() {
        let token = new_token();
        let ids = Identities::default();
        let who = Identity {
            department: "sh-zwfw".into(),
            role: Role::Department,
        };
        {
            let mut map = ids.by_hash.write().unwrap();
            map.insert(hash_token(&token), who.clone());
            map.insert(certificate_key("ab:cd"), who.clone());
        }
        let header = format!("bearer  {token}");
        assert_eq!(ids.identify(Some(&header), None).unwrap(), who);
        assert_eq!(ids.identify(None, Some("ab:cd")).unwrap(), who);
        for (header, cert) in [
            (None, None),
            (Some(token.as_str()), None),
            (Some("Basic abc"), None),
            (Some("Bearer tb_unknown"), Some("ab:cd")),
            (None, Some("ff:ff")),
        ] {
            let e = ids.identify(header, cert).unwrap_err();
            assert_eq!(e.code(), crate::Code::Unauthorized, "{header:?} {cert:?}");
        }
    }

    #[test]
    fn a_token_resolves_by_its_stored_hash() {
        let token = new_token();
        let ids = Identities::default();
        let who = Identity {
            department: "sh-zwfw".into(),
            role: Role::Department,
        };
        ids.by_hash
            .write()
            .unwrap()
            .insert(hash_token(&token), who.clone());
        assert_eq!(ids.resolve(&token), Some(who));
        assert_eq!(ids.resolve(&new_token()), None);
    }
}
