//! One source of truth: command line > environment > config file > defaults.

mod common;

use std::process::Command;

fn ironhorse(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ironhorse"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config_file(text: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path =
        std::env::temp_dir().join(format!("ironhorse-config-{}-{n}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn effective(printed: &str, name: &str) -> String {
    printed
        .lines()
        .find(|l| l.starts_with(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("{name} missing in {printed}"))
        .to_string()
}

#[test]
fn command_line_beats_environment_beats_file_beats_default() {
    let file = config_file("workers = 3\nkeep_alive = 7\nmodel = \"prefork\"\nroot = \"/tmp\"\n");
    let file = file.display().to_string();
    let (code, out, err) = ironhorse(
        &["-c", &file, "--print-config", "-w", "5"],
        &[("IRONHORSE_WORKERS", "4"), ("IRONHORSE_KEEP_ALIVE", "9")],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        effective(&out, "workers"),
        "workers = \"5\"  # command line"
    );
    assert_eq!(
        effective(&out, "keep-alive"),
        "keep-alive = \"9\"  # environment"
    );
    assert_eq!(
        effective(&out, "model"),
        "model = \"prefork\"  # config file"
    );
    assert_eq!(effective(&out, "backlog"), "backlog = \"2048\"  # default");
}

#[test]
fn a_bad_config_file_is_one_clear_line_naming_the_setting() {
    for (text, needle) in [
        ("bogus = 1\n", "unknown setting \"bogus\""),
        ("workers = \"many\"\n", "--workers"),
        ("autoindex = \"yes\"\n", "autoindex must be true or false"),
        ("workers = \n", "--config"),
    ] {
        let file = config_file(text).display().to_string();
        let (code, _, err) = ironhorse(&["-c", &file, "--root", "/tmp"], &[]);
        assert_eq!(code, 2, "{text}: {err}");
        assert!(err.contains(needle), "{text}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{text}: {err}");
    }
}

/// `--env NAME` without `=` is a startup error naming the value, wherever it comes from
/// (`--check-config` accepted it before; a real start refused it only after binding).
#[test]
fn an_env_setting_without_equals_is_one_clear_line() {
    let file = config_file("env = [\"IH_OK=1\", \"IH_NO_VALUE\"]\n")
        .display()
        .to_string();
    for (how, args, env) in [
        ("command line", vec!["--env", "IH_NO_VALUE"], vec![]),
        (
            "environment",
            vec![],
            vec![("IRONHORSE_ENV", "IH_NO_VALUE")],
        ),
        ("config file", vec!["-c", file.as_str()], vec![]),
    ] {
        let mut args = args;
        args.extend(["--root", "/tmp", "--check-config"]);
        let (code, _, err) = ironhorse(&args, &env);
        assert_eq!(code, 2, "{how}: {err}");
        assert!(err.contains("'IH_NO_VALUE'"), "{how}: {err}");
        assert!(err.contains("KEY=VALUE"), "{how}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{how}: {err}");
    }
    let _ = std::fs::remove_file(&file);
}

#[test]
fn check_config_loads_the_app_without_serving() {
    let apps = common::python::apps_dir().display().to_string();
    let (code, out, err) = ironhorse(
        &[
            "wsgi_app:application",
            "--chdir",
            &apps,
            "--model",
            "prefork",
            "--check-config",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration OK"));
    let (code, _, err) = ironhorse(
        &[
            "broken_import:application",
            "--chdir",
            &apps,
            "--model",
            "prefork",
            "--check-config",
        ],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("this_module_does_not_exist"), "{err}");
}

#[test]
fn the_settings_doc_is_generated_from_the_table() {
    let (code, out, _) = ironhorse(&["--print-settings-doc"], &[]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/settings.md"
    ))
    .unwrap();
    assert!(
        committed == out,
        "docs/settings.md is stale: run ironhorse --print-settings-doc > docs/settings.md"
    );
}

#[test]
fn gunicorn_flags_work_as_a_drop_in() {
    let (code, out, err) = ironhorse(
        &[
            "--root",
            "/tmp",
            "-k",
            "gthread",
            "-w",
            "2",
            "--threads",
            "4",
            "-t",
            "20",
            "--graceful-timeout",
            "5",
            "--keepalive",
            "3",
            "--max-requests",
            "10",
            "--max-requests-jitter",
            "2",
            "--limit-request-line",
            "4094",
            "--limit-request-fields",
            "50",
            "--limit-request-field_size",
            "4000",
            "--print-config",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("model = \"gthread\""), "{out}");
    assert!(out.contains("limit-request-field-size = \"4000\""));
}
