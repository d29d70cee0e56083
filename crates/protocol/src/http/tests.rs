//! The HTTP session with fakes around it: an executor that keeps jobs, hooks that count,
//! a waker that is a channel. No socket and no driver: the session is sans-IO.

use super::*;
use crate::hooks::{Level, WorkerHooks};
use crate::session::{Executor, Job, JobHost, Link, Waker};
use ironhorse_app::Request;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;

/// Keeps the jobs a session hands over.
#[derive(Default)]
struct Jobs(Mutex<Vec<Job>>);

impl Executor for Jobs {
    fn execute(&self, job: Job) {
        self.0.lock().unwrap().push(job);
    }
}

/// Counts answered requests and keeps log lines.
#[derive(Default)]
struct Counting {
    done: AtomicUsize,
    lines: Mutex<Vec<String>>,
}

impl WorkerHooks for Counting {
    fn beat(&self) {}
    fn request_done(&self) {
        self.done.fetch_add(1, Ordering::SeqCst);
    }
    fn log(&self, _level: Level, message: std::fmt::Arguments<'_>) {
        self.lines.lock().unwrap().push(message.to_string());
    }
    fn stuck(&self) {}
}

/// A job on a thread of its own: it blocks on its queues.
struct OwnThread;

impl JobHost for OwnThread {
    fn pump(&mut self, _want_input: bool) -> Option<io::Result<()>> {
        None
    }
    fn cutoff(&self) -> Option<crate::session::Cutoff> {
        None
    }
}

/// `/body` answers the body's length; `/stall` answers 408 when its body read times
/// out; `/panic` fails; `/wait` runs until cancelled.
#[derive(Default)]
struct App {
    cancelled: AtomicBool,
}

impl Service for App {
    fn call(&self, req: Request<'_>) -> ironhorse_app::Response {
        match req.head.path() {
            "/body" => {
                let mut body = Vec::new();
                req.body.read_to_end(&mut body).unwrap();
                ironhorse_app::Response::text(200, format!("got {}", body.len()))
            }
            "/stall" => match req.body.read_to_end(&mut Vec::new()) {
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    ironhorse_app::Response::text(408, "body timed out")
                }
                other => ironhorse_app::Response::text(200, format!("{other:?}")),
            },
            "/panic" => panic!("the application broke"),
            _ => {
                while !self.cancelled.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                ironhorse_app::Response::text(200, "too late")
            }
        }
    }
    fn may_block(&self) -> bool {
        true
    }
    fn cancel(&self, _thread: u64, still_running: &dyn Fn() -> bool) {
        if still_running() {
            self.cancelled.store(true, Ordering::SeqCst);
        }
    }
}

struct Harness {
    session: Box<dyn Session>,
    jobs: Arc<Jobs>,
    hooks: Arc<Counting>,
    woken: Receiver<()>,
    out: Output,
}

impl Harness {
    fn new(app: Arc<App>, settings: HttpSettings) -> Harness {
        let (wake, woken) = channel();
        let wake = Mutex::new(wake);
        let waker: Waker = Arc::new(move || {
            let _ = wake.lock().unwrap().send(());
        });
        let jobs = Arc::new(Jobs::default());
        let hooks = Arc::new(Counting::default());
        let link = Link {
            waker,
            executor: Some(jobs.clone()),
            hooks: hooks.clone(),
            batch: None,
        };
        let session = Http::new(app, settings).session(ConnInfo::unix(), link);
        Harness {
            session,
            jobs,
            hooks,
            woken,
            out: Output::default(),
        }
    }

    /// Runs the one job handed over on a thread of its own.
    fn run_job(&self) {
        let mut jobs = self.jobs.0.lock().unwrap();
        assert_eq!(jobs.len(), 1, "one job per request");
        let job = jobs.pop().unwrap();
        std::thread::spawn(move || {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut OwnThread)));
        });
    }

    /// Advances once the job woke the session; the step and the output so far.
    fn advance_when_woken(&mut self) -> (Step, String) {
        self.woken
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the job wakes the session");
        let step = self.session.advance(&mut self.out);
        (step, self.sent())
    }

    /// Sends a request whose job runs at once, and collects the output until the session
    /// stops waiting for the job.
    fn answer(&mut self, request: &[u8]) -> (Step, String) {
        self.session.receive(request);
        assert_eq!(self.session.advance(&mut self.out), Step::Pending);
        self.run_job();
        let mut step = Step::Pending;
        let mut answer = String::new();
        while step == Step::Pending {
            let (next, sent) = self.advance_when_woken();
            step = next;
            answer.push_str(&sent);
        }
        (step, answer)
    }

    fn sent(&mut self) -> String {
        let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        self.out.drain_into(&mut a).unwrap();
        drop(a);
        let mut text = String::new();
        b.read_to_string(&mut text).unwrap();
        text
    }
}

#[test]
fn a_blocking_request_is_one_job_and_continue_goes_out_when_the_app_reads() {
    let mut h = Harness::new(Arc::default(), HttpSettings::for_tests());
    h.session.receive(
        b"POST /body HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(h.session.advance(&mut h.out), Step::Pending);
    assert_eq!(h.sent(), "", "no 100 Continue before the app asks");
    h.run_job();
    let (step, sent) = h.advance_when_woken();
    assert_eq!(sent, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(step, Step::Flush, "sent first");
    assert_eq!(
        h.session.advance(&mut h.out),
        Step::Read,
        "the body is needed"
    );
    h.session.receive(b"hello");
    // Received bytes move to the application at the next advance.
    h.session.advance(&mut h.out);
    let mut answer = h.sent();
    while !answer.contains("got 5") {
        let (step, sent) = h.advance_when_woken();
        answer.push_str(&sent);
        if answer.contains("got 5") {
            assert_eq!(step, Step::Read, "keep-alive: the next request");
        }
    }
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert_eq!(h.hooks.done.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failed_application_is_answered_500_by_h1() {
    let mut h = Harness::new(Arc::default(), HttpSettings::for_tests());
    let (step, answer) = h.answer(b"GET /panic HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(step, Step::Close);
    assert!(
        answer.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nDate: ") && answer.contains("\r\nConnection: close\r\n"));
}

#[test]
fn a_request_past_its_deadline_is_cancelled_and_answered_504() {
    let app = Arc::new(App::default());
    let settings = HttpSettings {
        request_timeout: Some(std::time::Duration::from_millis(100)),
        ..HttpSettings::for_tests()
    };
    let mut h = Harness::new(app.clone(), settings);
    let (step, answer) = h.answer(b"GET /wait HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(step, Step::Close);
    assert!(
        answer.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
        "{answer}"
    );
    assert!(!answer.contains("too late"), "{answer}");
    assert!(
        app.cancelled.load(Ordering::SeqCst),
        "the app was asked to stop"
    );
    let lines = h.hooks.lines.lock().unwrap().clone();
    assert!(lines.iter().any(|l| l.contains("timed out")), "{lines:?}");
}

#[test]
fn a_stalled_body_times_out_in_the_session_and_the_app_answers() {
    let settings = HttpSettings {
        body_timeout: std::time::Duration::from_millis(200),
        ..HttpSettings::for_tests()
    };
    let mut h = Harness::new(Arc::default(), settings);
    // Two bytes of ten, then nothing: no driver calls `advance` on input any more, so the
    // session's own deadline must wake it.
    h.session
        .receive(b"POST /stall HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab");
    assert_eq!(
        h.session.advance(&mut h.out),
        Step::Read,
        "the body is needed"
    );
    h.run_job();
    let mut answer = String::new();
    loop {
        let (step, sent) = h.advance_when_woken();
        answer.push_str(&sent);
        if step == Step::Close {
            break;
        }
    }
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    // Whatever the application said, the body's framing is lost: the connection closes.
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    assert!(answer.ends_with("body timed out"), "{answer}");
}
