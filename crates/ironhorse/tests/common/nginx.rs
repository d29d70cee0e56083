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
