//! Certificates made with the `openssl` command line, EC P-256, in a directory the caller
//! owns, each as `NAME.pem` and `NAME.key`: CAs valid for two days, certificates signed by
//! them valid for one. A server certificate names its DNS name and 127.0.0.1 (syslog-ng
//! checks the address it connects to); a client certificate its DNS name.

use std::path::Path;
use std::process::Command;

/// Runs `openssl ARGS` in `dir`.
pub fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The key options of every certificate: a new EC P-256 key, not encrypted.
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// A self-signed CA `NAME.pem` / `NAME.key`.
pub fn make_ca(dir: &Path, name: &str) -> Result<(), String> {
    let (pem, key, subj) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("/CN=logwell test {name}"),
    );
    let mut args = vec!["req", "-x509"];
    args.extend(EC_KEY);
    args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
    openssl(dir, &args)
}

/// A key and signing request `NAME.key` / `NAME.csr` for `cn`, and the extensions file
/// `NAME.ext`: DNS name `cn` and `usage` (`serverAuth` adds IP 127.0.0.1, or `clientAuth`).
pub fn make_request(dir: &Path, name: &str, cn: &str, usage: &str) -> Result<(), String> {
    let (key, csr, subj) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("/CN={cn}"),
    );
    let mut args = vec!["req", "-new"];
    args.extend(EC_KEY);
    args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(dir, &args)?;
    let ip = if usage == "serverAuth" {
        ",IP:127.0.0.1"
    } else {
        ""
    };
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        format!(
            "subjectAltName = DNS:{cn}{ip}\nbasicConstraints = CA:FALSE\nextendedKeyUsage = {usage}\n"
        ),
    )
    .map_err(|e| format!("{}: {e}", ext.display()))
}

/// Signs `NAME.csr` with CA `ca` and the extensions of `NAME.ext` into `NAME.pem`, valid
/// for a day.
pub fn sign(dir: &Path, name: &str, ca: &str) -> Result<(), String> {
    let (csr, pem, ext, ca_pem, ca_key) = (
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
        format!("{ca}.pem"),
        format!("{ca}.key"),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "1",
            "-extfile",
            &ext,
        ],
    )
}

/// `NAME.pem` / `NAME.key` for `cn` with `usage`, signed by CA `ca`.
pub fn make_cert(dir: &Path, name: &str, cn: &str, usage: &str, ca: &str) -> Result<(), String> {
    make_request(dir, name, cn, usage)?;
    sign(dir, name, ca)
}

/// A CA `ca` and a server certificate `server` for `server_name` signed by it: what a TLS
/// receiver needs.
pub fn make_server(dir: &Path, server_name: &str) -> Result<(), String> {
    make_ca(dir, "ca")?;
    make_cert(dir, "server", server_name, "serverAuth", "ca")
}

/// The tests' PKI: `ca` signs `server` (localhost) and `client` (client.example.com);
/// another CA, `other`, signs `stranger` (client.example.com too).
pub fn make_pki(dir: &Path) -> Result<(), String> {
    make_server(dir, "localhost")?;
    make_ca(dir, "other")?;
    make_cert(dir, "client", "client.example.com", "clientAuth", "ca")?;
    make_cert(dir, "stranger", "client.example.com", "clientAuth", "other")
}
