//! TLS for the HTTP server: the PEM certificate chain and private key named in the config, loaded
//! into a rustls acceptor (ring provider, TLS 1.2 and 1.3, HTTP/1.1 by ALPN). Loaded once at
//! startup, so a bad file is a startup error, not a failed handshake later.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// The acceptor for `config`, or `None` when TLS is off.
pub fn acceptor(config: &TlsConfig) -> anyhow::Result<Option<TlsAcceptor>> {
    if !config.enabled {
        return Ok(None);
    }
    let (Some(certificate), Some(key)) = (&config.certificate, &config.key) else {
        anyhow::bail!("TLS needs both tls.certificate and tls.key");
    };
    let chain = certificates(certificate)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a PEM private key from {}", key.display()))?;
    let mut server = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not make a usable pair")?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read PEM certificates from {}", path.display()))?;
    if chain.is_empty() {
        anyhow::bail!("no certificate in {}", path.display());
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_bad_files_are_startup_errors() {
        assert!(acceptor(&TlsConfig::default()).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let config = TlsConfig {
            enabled: true,
            certificate: Some(empty.clone()),
            key: Some(dir.path().join("missing.pem")),
            insecure_http: false,
        };
        let error = match acceptor(&config) {
            Ok(_) => panic!("an empty certificate file is refused"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains("empty.pem"), "{error}");

        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        let config = TlsConfig {
            certificate: Some(cert),
            key: Some(key),
            ..config
        };
        assert!(acceptor(&config).unwrap().is_some());
    }
}
