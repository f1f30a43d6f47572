//! TLS for the API (rustls, ring provider) and client certificates (mTLS): a
//! client certificate signed by the configured CA identifies its department
//! by the SHA-256 fingerprint of the certificate, registered with
//! `tongban cert add`. Tokens keep working over TLS; a request with neither
//! is refused.

use crate::{Error, Result};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `[tls]` in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM.
    pub cert_file: PathBuf,
    /// The server's private key, PEM.
    pub key_file: PathBuf,
    /// CA certificates (PEM) that sign client certificates. Set: clients may
    /// identify with a certificate (mTLS); unset: tokens only.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// The fingerprint of the client certificate a connection presented, if any;
/// the server puts it in every request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub Option<String>);

/// The hex SHA-256 of a certificate (DER), as `tongban cert add` records it.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The fingerprint of the first certificate in a PEM file.
pub fn fingerprint_of_file(path: &Path) -> Result<String> {
    let cert = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::tls(path, e))?
        .next()
        .ok_or_else(|| Error::tls(path, "no certificate in the file"))?
        .map_err(|e| Error::tls(path, e))?;
    Ok(fingerprint(cert.as_ref()))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::tls(path, e))?;
    if certs.is_empty() {
        return Err(Error::tls(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The rustls server configuration.
pub fn server_config(c: &TlsConfig) -> Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::from_pem_file(&c.key_file).map_err(|e| Error::tls(&c.key_file, e))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls(Path::new("[tls]"), e))?;
    let builder = match &c.client_ca_file {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certs(ca)? {
                roots.add(cert).map_err(|e| Error::tls(ca, e))?;
            }
            // Certificates are optional: a caller may use a token instead.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| Error::tls(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs(&c.cert_file)?, key)
        .map_err(|e| Error::tls(&c.cert_file, e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
