//! The serving certificate (a CA made with rcgen, a server certificate for 127.0.0.1, ::1
//! and localhost signed by it), rustls with ring at both ends, and the files a client reads.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::util::base64;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes the CA and the serving certificate; returns the server's configuration and the
/// CA's PEM.
pub fn make() -> Result<(Arc<ServerConfig>, String), String> {
    let e = |what: &str, err: &dyn std::fmt::Display| format!("{what}: {err}");
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|x| e("CA", &x))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "kubernetes-test-ca");
    let ca_key = KeyPair::generate().map_err(|x| e("CA key", &x))?;
    let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(|x| e("CA", &x))?;
    // kube-apiserver's serving certificate names its addresses and DNS names.
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "kubernetes".to_string()])
            .map_err(|x| e("server certificate", &x))?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    for ip in ["127.0.0.1", "::1"] {
        let ip = ip.parse().map_err(|x| e("IP", &x))?;
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    let key = KeyPair::generate().map_err(|x| e("server key", &x))?;
    let cert = params
        .signed_by(&key, &ca)
        .map_err(|x| e("server certificate", &x))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|x| e("TLS", &x))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .map_err(|x| e("TLS", &x))?;
    Ok((Arc::new(server), ca.pem()))
}

/// A client that trusts only `ca_pem` (the control client).
pub fn client(ca_pem: &[u8]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| format!("ca.crt: {e}"))?;
        roots.add(cert).map_err(|e| format!("ca.crt: {e}"))?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))
}

/// Writes `path` whole or not at all: a test polling for DIR/port never reads half a file.
pub fn write_atomically(path: &Path, data: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The address a client dials for a listener on `addr` (an unspecified address means
/// loopback).
pub fn client_addr(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    a
}

/// DIR/kubeconfig: the cluster, with the CA inline and the bearer token when serving TLS.
pub fn kubeconfig(addr: SocketAddr, tls: Option<(&str, &str)>) -> String {
    let a = client_addr(addr);
    let (scheme, cluster_extra, user) = match tls {
        Some((ca_pem, token)) => (
            "https",
            format!(
                "    certificate-authority-data: {}\n",
                base64(ca_pem.as_bytes())
            ),
            format!("  user:\n    token: {token}\n"),
        ),
        None => ("http", String::new(), "  user: {}\n".to_string()),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {scheme}://{a}\n{cluster_extra}\
         users:\n- name: test\n{user}contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\n\
         current-context: test\npreferences: {{}}\n"
    )
}
