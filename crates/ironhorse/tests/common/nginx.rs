//! Real nginx (Debian's package) in front of the server under test, for the tests that put
//! ironhorse behind a proxy: started from a generated configuration in its own folder, waited
//! for on its ports, and stopped gracefully (`QUIT`) with the folder removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct Nginx {
    child: Child,
    /// Its prefix folder: configuration, pid file, error log, temporary files.
    pub dir: PathBuf,
}

impl Nginx {
    /// Writes `conf` to `dir/nginx.conf`, starts `binary` with it (it must say `daemon off`)
    /// and waits until it accepts on every port of `ports`; a failed start shows its error log.
    pub fn start(binary: &Path, dir: PathBuf, conf: &str, ports: &[u16]) -> Nginx {
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { child, dir };
        let up = super::eventually(|| {
            matches!(nginx.child.try_wait(), Ok(None))
                && ports
                    .iter()
                    .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
        });
        let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
        assert!(up, "nginx did not start: {log}");
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // QUIT: nginx's graceful stop; its workers leave with the master.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// nginx's binary, installing Debian's `nginx-light` if needed; `None` when it cannot be had.
pub fn binary() -> Option<PathBuf> {
    let find = || {
        ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(path) = find() {
        return Some(path);
    }
    let script =
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light";
    let installed = Command::new("sh")
        .args(["-c", script])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("apt-get could not install nginx-light");
    }
    find()
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A folder for one nginx (its workers, unprivileged when it runs as root, must read it).
pub fn folder(tag: &str) -> PathBuf {
    let dir = super::temp_path(tag);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

/// The start of an `nginx.conf` whose files all live in `dir`, up to the open `http {` block.
pub fn conf_head(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n  access_log off;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n"
    )
}

/// A self-signed certificate for `name`: `dir/cert.pem` and `dir/key.pem`.
pub fn certificate(dir: &Path, name: &str) {
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", &format!("/CN={name}"), "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (scripts/test.sh installs it)");
    assert!(ok.success(), "openssl could not make a certificate");
}
