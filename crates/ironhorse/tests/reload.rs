//! `--reload` against the real binary, in every model: an edit of the app's source is
//! served by the next requests, a syntax error is answered with a 500 naming it (under
//! `--debug`) while the server stays up, and the fix brings the app back. Waits are on the
//! served answer changing, never on a clock.

mod common;

use std::path::{Path, PathBuf};

use common::client::Conn;
use common::python::wsgi_args;
use common::{eventually, run_to_exit, temp_path, Server};

/// A temporary app folder with `app.py` answering `body`.
struct AppDir(PathBuf);

impl AppDir {
    fn new(body: &str) -> AppDir {
        let dir = temp_path("reload-app");
        std::fs::create_dir_all(&dir).unwrap();
        let app = AppDir(dir);
        app.write_app(body);
        app
    }

    /// Rewrites `app.py` the way an editor saving in place does.
    fn write_app(&self, body: &str) {
        self.write(
            "app.py",
            &format!(
                "def app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [{body:?}.encode()]\n"
            ),
        );
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).unwrap();
    }
}

impl Drop for AppDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `GET /`: (status, body), or `None` if the connection failed (a process restarting).
fn fetch(addr: &str) -> Option<(u16, String)> {
    let mut conn = Conn::try_open(addr).ok()?;
    conn.try_send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .ok()?;
    conn.try_response("GET").map(|r| (r.status, r.text()))
}

/// Waits until `GET /` answers `status` with a body containing `needle`; the last answer.
fn serves(server: &Server, status: u16, needle: &str) -> Result<(), String> {
    let mut last = None;
    let ok = eventually(|| {
        last = fetch(&server.addr);
        matches!(&last, Some((s, body)) if *s == status && body.contains(needle))
    });
    if ok {
        Ok(())
    } else {
        Err(format!("wanted {status} with {needle:?}, last {last:?}"))
    }
}

fn start(model: &str, dir: &Path, extra: &[&str]) -> Server {
    let mut args = wsgi_args(model, "app:app", dir);
    args.extend(["--reload".to_string(), "--debug".to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args)
}

per_model!(
    an_edit_a_syntax_error_and_its_fix_are_served_in_turn,
    |model| {
        let app = AppDir::new("first version");
        let mut server = start(model, &app.0, &[]);
        serves(&server, 200, "first version").unwrap();

        app.write_app("the second version");
        serves(&server, 200, "the second version").unwrap();
        assert!(server.log_contains("app.py changed"), "{model}");

        app.write("app.py", "def app(environ, start_response:\n");
        serves(&server, 500, "SyntaxError").unwrap();
        assert!(
            matches!(server.child.try_wait(), Ok(None)),
            "{model}: the server went away on an import error"
        );
        assert!(server.log_contains("failed to load"), "{model}");

        app.write_app("fixed, third");
        serves(&server, 200, "fixed, third").unwrap();
        assert_eq!(server.stop(common::HUNG), Some(0), "{model}");
    }
);

#[test]
fn extra_files_are_watched_and_other_files_are_not() {
    let app = AppDir::new("unused");
    // The app reads its template when imported: only a reload shows a new one.
    app.write(
        "app.py",
        "import pathlib\nPAGE = pathlib.Path(__file__).with_name('page.txt').read_text()\n\ndef app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [PAGE.encode()]\n",
    );
    app.write("page.txt", "page one");
    let page = app.0.join("page.txt").display().to_string();
    let server = start("prefork", &app.0, &["--reload-extra-file", &page]);
    serves(&server, 200, "page one").unwrap();
    // Not Python and not an extra file: no reload. The page change that follows is the
    // first change the master may report.
    app.write("notes.txt", "ignored");
    app.write("page.txt", "page two");
    serves(&server, 200, "page two").unwrap();
    assert!(server.log_contains("page.txt changed"));
    let log = server.log_text();
    assert!(!log.contains("notes.txt"), "{log}");
}

#[test]
fn refused_with_preload_in_one_line_saying_why() {
    let app = AppDir::new("x");
    let mut args = vec!["-b".to_string(), "127.0.0.1:0".into()];
    args.extend(wsgi_args("prefork", "app:app", &app.0));
    args.extend(["--reload".into(), "--preload".into()]);
    let (code, err) = run_to_exit(&args);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("--reload cannot be used with --preload"),
        "{err}"
    );
    assert!(err.contains("forked from it"), "{err}");

    args.retain(|a| a != "--reload" && a != "--preload");
    args.extend(["--reload-extra-file".into(), "x".into()]);
    let (code, err) = run_to_exit(&args);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("only watched with --reload"), "{err}");
}
