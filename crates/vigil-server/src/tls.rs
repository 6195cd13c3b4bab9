//! TLS server configuration: a configured certificate, or a self-signed one generated once into
//! `DATA_DIR/tls/` (key mode 0600) and reused after.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// PEM files given by the operator.
    Files {
        /// Certificate chain (PEM).
        cert: PathBuf,
        /// Private key (PEM).
        key: PathBuf,
    },
    /// Generate (once) a self-signed certificate for localhost under this data directory.
    SelfSigned(PathBuf),
}

/// Paths of the generated self-signed certificate and key.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let layout = vigil_config::DataDir::new(data_dir);
    (layout.tls_cert(), layout.tls_key())
}

/// Builds the rustls server configuration (ring provider, TLS 1.2 and 1.3).
pub fn server_config(source: &CertSource) -> Result<Arc<ServerConfig>, String> {
    let (cert_path, key_path) = match source {
        CertSource::Files { cert, key } => (cert.clone(), key.clone()),
        CertSource::SelfSigned(data_dir) => {
            let (cert, key) = self_signed_paths(data_dir);
            if !cert.exists() || !key.exists() {
                generate(&cert, &key)?;
            }
            (cert, key)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| format!("{}: {e}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    // Syslog senders never read: TLS 1.3 session tickets would sit unread in their socket, and
    // closing a socket with unread data sends a TCP reset, which can discard messages still
    // queued on our side. Resumption is not worth that.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

fn generate(cert: &Path, key: &Path) -> Result<(), String> {
    let dir = cert.parent().expect("cert path has a parent");
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(host) = fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_owned());
        }
    }
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("generating a certificate: {e}"))?;
    let mut key_file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key)
        .map_err(|e| format!("{}: {e}", key.display()))?;
    key_file
        .write_all(generated.signing_key.serialize_pem().as_bytes())
        .map_err(|e| format!("{}: {e}", key.display()))?;
    fs::write(cert, generated.cert.pem()).map_err(|e| format!("{}: {e}", cert.display()))?;
    Ok(())
}

/// The configuration for HTTPS (the API and the web UI): as [`server_config`], offering
/// HTTP/1.1 by ALPN.
pub fn http_server_config(source: &CertSource) -> Result<Arc<ServerConfig>, String> {
    let mut config = (*server_config(source)?).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
