//! The certificates of the TLS cases, made with the `openssl` command line as
//! `tests/it/tls.rs` makes them: a CA (`ca.pem`, `ca.key`) and a server certificate for
//! `localhost` signed by it (`server.pem`, `server.key`), EC P-256, in the daemon's
//! temporary directory.

use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
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

/// Writes `ca.pem`/`ca.key` and `server.pem`/`server.key` (for DNS name `server_name`) into
/// `dir`.
pub fn make(dir: &Path, server_name: &str) -> Result<(), String> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=logwell bench CA",
    ]);
    openssl(dir, &ca)?;
    let subj = format!("/CN={server_name}");
    let mut req = vec!["req", "-new"];
    req.extend(ec);
    req.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        &subj,
    ]);
    openssl(dir, &req)?;
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "subjectAltName = DNS:{server_name}\nbasicConstraints = CA:FALSE\n\
             extendedKeyUsage = serverAuth\n"
        ),
    )
    .map_err(|e| format!("server.ext: {e}"))?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "server.ext",
        ],
    )
}
