//! A certificate authority made at test time with rcgen, and the PEM files a server and its
//! clients need: server certificates for `localhost` with ECDSA, Ed25519 or RSA keys (valid
//! or expired), client certificates.

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::common::temp_path;

/// The key algorithm of a certificate.
#[derive(Debug, Clone, Copy)]
pub enum Key {
    EcdsaP256,
    Ed25519,
    Rsa,
}

/// A certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A test CA and the folder its files go to.
pub struct Pki {
    pub dir: PathBuf,
    /// The CA certificate, PEM (what clients trust, and `--ca-certs`).
    pub ca: PathBuf,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
    issued: std::cell::Cell<u32>,
}

impl Pki {
    pub fn new(tag: &str) -> Pki {
        let dir = temp_path(tag);
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ironhorse test CA {tag}"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = params.self_signed(&ca_key).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        Pki {
            dir,
            ca,
            ca_cert,
            ca_key,
            issued: std::cell::Cell::new(0),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self, key: Key) -> Issued {
        self.issue(key, false, |params| {
            params.subject_alt_names = vec![
                SanType::DnsName("localhost".try_into().unwrap()),
                SanType::IpAddress("127.0.0.1".parse().unwrap()),
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        })
    }

    /// A server certificate for these DNS names (`*.example.test` wildcards allowed).
    pub fn server_named(&self, names: &[&str]) -> Issued {
        self.issue(Key::EcdsaP256, false, |params| {
            params.subject_alt_names = names
                .iter()
                .map(|name| SanType::DnsName((*name).try_into().unwrap()))
                .collect();
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        })
    }

    /// A server certificate for `localhost` that expired in 2021.
    pub fn expired_server(&self) -> Issued {
        self.issue(Key::EcdsaP256, false, |params| {
            params.subject_alt_names = vec![SanType::DnsName("localhost".try_into().unwrap())];
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        })
    }

    /// A client certificate whose subject is `CN=<name>, O=Ironhorse Tests`.
    pub fn client(&self, name: &str) -> Issued {
        self.issue(Key::EcdsaP256, true, |params| {
            params.distinguished_name.push(DnType::CommonName, name);
            params
                .distinguished_name
                .push(DnType::OrganizationName, "Ironhorse Tests");
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        })
    }

    fn issue(&self, key: Key, client: bool, shape: impl FnOnce(&mut CertificateParams)) -> Issued {
        let n = self.issued.get() + 1;
        self.issued.set(n);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        if !client {
            params
                .distinguished_name
                .push(DnType::CommonName, format!("localhost #{n}"));
        }
        shape(&mut params);
        let key_pair = key_pair(key, &self.dir.join(format!("rsa-{n}.pem")));
        let cert = params
            .signed_by(&key_pair, &self.ca_cert, &self.ca_key)
            .unwrap();
        let issued = Issued {
            cert: self.dir.join(format!("cert-{n}.pem")),
            key: self.dir.join(format!("key-{n}.pem")),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key_pair.serialize_pem()).unwrap();
        issued
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn key_pair(key: Key, scratch: &Path) -> KeyPair {
    match key {
        Key::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        Key::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
        // ring signs with RSA keys but cannot make them: openssl makes one.
        Key::Rsa => {
            let status = Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ])
                .arg("-out")
                .arg(scratch)
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl");
            assert!(status.success(), "openssl genpkey");
            let pem = std::fs::read_to_string(scratch).unwrap();
            KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap()
        }
    }
}
