//! Several certificates on one socket, chosen by the name the client asks for (SNI), the
//! way HAProxy's repeated `crt`, Traefik and Caddy choose: each certificate is selected by
//! the DNS names in its subjectAltName (exact, or a `*.example.com` wildcard covering one
//! label), a name in two certificates goes to the one given first, and the first certificate
//! is the default for clients that send no SNI or a name none of them has (it is what a
//! single `--certfile` serves to everyone).
//!
//! rustls's own `ResolvesServerCertUsingSni` knows exact names only and has no default,
//! so this is the small resolver that adds both.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;

/// Picks a certificate by SNI.
#[derive(Debug)]
pub(crate) struct SniResolver {
    default: Arc<CertifiedKey>,
    /// Lowercase DNS names, without a trailing dot.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` certificates, by `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl SniResolver {
    /// The first certificate is the default; each is reachable by the `names` given with it.
    pub(crate) fn new(default: Arc<CertifiedKey>) -> SniResolver {
        SniResolver {
            default,
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        }
    }

    /// Adds `names` for `key` (the default's names are added too). A name already taken
    /// stays with the certificate given first. Returns how many names were new.
    pub(crate) fn add(&mut self, names: &[String], key: &Arc<CertifiedKey>) -> usize {
        let mut added = 0;
        for name in names {
            let name = normalize(name);
            let (map, name) = match name.strip_prefix("*.") {
                Some(parent) => (&mut self.wildcard, parent.to_string()),
                None => (&mut self.exact, name),
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = map.entry(name) {
                slot.insert(key.clone());
                added += 1;
            }
        }
        added
    }

    /// The certificate for `server_name` (`None`: the client sent no SNI).
    fn pick(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = server_name else {
            return &self.default;
        };
        let name = normalize(name);
        if let Some(key) = self.exact.get(&name) {
            return key;
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name()).clone())
    }
}

/// DNS names compare without case and without a final dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The DNS names in a certificate's subjectAltName (SNI never carries addresses, and clients
/// no longer look at the common name). Empty if it has none or cannot be parsed.
pub(crate) fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::ring;

    fn key(names: &[&str]) -> Arc<CertifiedKey> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let issued = rcgen::generate_simple_self_signed(names).unwrap();
        let der = rustls_pki_types::PrivateKeyDer::Pkcs8(issued.key_pair.serialize_der().into());
        let provider = ring::default_provider();
        Arc::new(CertifiedKey::from_der(vec![issued.cert.der().clone()], der, &provider).unwrap())
    }

    #[test]
    fn names_select_and_the_first_is_the_default() {
        let (a, b, c) = (
            key(&["a.test"]),
            key(&["b.test", "*.b.test"]),
            key(&["b.test", "c.test"]),
        );
        let mut resolver = SniResolver::new(a.clone());
        for k in [&a, &b, &c] {
            resolver.add(&dns_names(&k.cert[0]), k);
        }
        let picked = |name| resolver.pick(name);
        assert!(Arc::ptr_eq(picked(None), &a));
        assert!(Arc::ptr_eq(picked(Some("unknown.test")), &a));
        assert!(Arc::ptr_eq(picked(Some("A.Test.")), &a));
        assert!(Arc::ptr_eq(picked(Some("b.test")), &b), "first given wins");
        assert!(Arc::ptr_eq(picked(Some("x.b.test")), &b), "wildcard");
        assert!(
            Arc::ptr_eq(picked(Some("y.x.b.test")), &a),
            "one label only"
        );
        assert!(Arc::ptr_eq(picked(Some("c.test")), &c));
    }
}
