//! Layered setting values: command line, then environment (both through clap), then the
//! TOML config file, then the declared defaults.
//!
//! The file is layered by clap too, so its values go through the same parsers: the file's
//! keys that neither the command line nor the environment set become `--key=value` words
//! in front of the command line, which is parsed again. One parse yields the typed
//! [`Settings`]; the file's keys are remembered only to say where a value came from.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{ArgMatches, FromArgMatches};

use crate::settings::{self, Settings, COMMAND_ONLY};

/// A setting's value could not be used.
#[derive(Debug)]
pub struct SettingError(pub String);

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The settings' values as written, by setting id (see [`Loaded::values`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Values(BTreeMap<String, Vec<String>>);

impl Values {
    /// The ids of the settings whose value differs in `other`, in the table's (id) order.
    pub fn changed_in(&self, other: &Values) -> Vec<String> {
        let ids: BTreeSet<&String> = self.0.keys().chain(other.0.keys()).collect();
        ids.into_iter()
            .filter(|id| self.0.get(*id) != other.0.get(*id))
            .cloned()
            .collect()
    }

    /// Takes `id`'s value from `other` (a change that was applied).
    pub fn take(&mut self, id: &str, other: &Values) {
        match other.0.get(id) {
            Some(value) => self.0.insert(id.to_string(), value.clone()),
            None => self.0.remove(id),
        };
    }
}

/// Why the settings could not be loaded.
pub enum LoadError {
    /// From clap: a bad command line or environment value, or `--help` / `--version`.
    Command(clap::Error),
    /// A bad config file.
    File(SettingError),
}

/// The effective settings, and where each came from.
pub struct Loaded {
    pub settings: Settings,
    matches: ArgMatches,
    /// The ids of the settings the config file gave.
    from_file: BTreeSet<String>,
}

impl Loaded {
    /// Parses `args` (the program name first), the environment and the config file.
    pub fn from_args(args: impl IntoIterator<Item = OsString>) -> Result<Loaded, LoadError> {
        let args: Vec<OsString> = args.into_iter().collect();
        let command = settings::command();
        let matches = command
            .clone()
            .try_get_matches_from(&args)
            .map_err(LoadError::Command)?;
        let (matches, from_file) = match matches.get_one::<std::path::PathBuf>("config") {
            None => (matches, BTreeSet::new()),
            Some(path) => {
                let path = path.display().to_string();
                let (words, from_file) =
                    file_words(&command, &matches, &path).map_err(LoadError::File)?;
                let mut layered = vec![args[0].clone()];
                layered.extend(words);
                layered.extend(args[1..].iter().cloned());
                // The command line and environment parsed once already: whatever fails now
                // came from the file.
                let matches = command.try_get_matches_from(layered).map_err(|e| {
                    LoadError::File(SettingError(format!("--config {path}: {}", first_line(&e))))
                })?;
                (matches, from_file)
            }
        };
        let settings = Settings::from_arg_matches(&matches).map_err(LoadError::Command)?;
        Ok(Loaded {
            settings,
            matches,
            from_file,
        })
    }

    /// Where the effective value of the setting `id` comes from.
    fn source(&self, id: &str) -> &'static str {
        if self.from_file.contains(id) {
            return "config file";
        }
        match self.matches.value_source(id) {
            Some(ValueSource::CommandLine) => "command line",
            Some(ValueSource::EnvVariable) => "environment",
            _ => "default",
        }
    }

    /// Every setting's value as written (a flag as `true`/`false`), by setting id: what a
    /// reload compares to tell which settings changed.
    pub fn values(&self) -> Values {
        let command = settings::command();
        let values = command
            .get_arguments()
            .filter(|a| !COMMAND_ONLY.contains(&a.get_id().as_str()))
            .map(|arg| {
                let id = arg.get_id().as_str();
                let value = if settings::is_flag(arg) {
                    vec![self.matches.get_flag(id).to_string()]
                } else {
                    self.matches
                        .get_raw(id)
                        .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
                        .unwrap_or_default()
                };
                (id.to_string(), value)
            })
            .collect();
        Values(values)
    }

    /// The effective settings as TOML, each with its source, the values as they were written.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let command = settings::command();
        for arg in command
            .get_arguments()
            .filter(|a| !COMMAND_ONLY.contains(&a.get_id().as_str()))
        {
            let id = arg.get_id().as_str();
            let raw = || -> Vec<String> {
                self.matches
                    .get_raw(id)
                    .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
                    .unwrap_or_default()
            };
            let value = if settings::is_flag(arg) {
                toml::Value::Boolean(self.matches.get_flag(id))
            } else if settings::is_list(arg) {
                toml::Value::Array(raw().into_iter().map(toml::Value::String).collect())
            } else {
                match raw().pop() {
                    Some(v) => toml::Value::String(v),
                    None => {
                        out.push_str(&format!("# {} is not set\n", settings::key(arg)));
                        continue;
                    }
                }
            };
            out.push_str(&format!(
                "{} = {}  # {}\n",
                settings::key(arg),
                value,
                self.source(id)
            ));
        }
        out
    }
}

/// clap's message without its usage block: its first line, "error: " dropped.
pub fn first_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    first.trim_start_matches("error: ").to_string()
}

/// Reads the config file and turns the keys that the command line and environment left
/// unset into command-line words; returns them with the ids of the keys.
fn file_words(
    command: &clap::Command,
    matches: &ArgMatches,
    path: &str,
) -> Result<(Vec<OsString>, BTreeSet<String>), SettingError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| SettingError(format!("--config {path}: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SettingError(format!("--config {path}: {}", e.message())))?;
    let (mut words, mut from_file) = (Vec::new(), BTreeSet::new());
    for (key, value) in table {
        let name = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| settings::key(a) == name && !COMMAND_ONLY.contains(&a.get_id().as_str()))
            .ok_or_else(|| SettingError(format!("--config {path}: unknown setting {key:?}")))?;
        let id = arg.get_id().as_str();
        let wrong = |expected: &str| {
            SettingError(format!(
                "--config {path}: {key} must be {expected}, got {value}"
            ))
        };
        let scalar = |v: &toml::Value| match v {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Float(f) => Some(f.to_string()),
            _ => None,
        };
        // Checked even when overridden: a broken file is reported, not ignored.
        let values: Vec<String> = if settings::is_flag(arg) {
            let on = value.as_bool().ok_or_else(|| wrong("true or false"))?;
            if on {
                vec![String::new()]
            } else {
                vec![]
            }
        } else if let (true, toml::Value::Array(items)) = (settings::is_list(arg), &value) {
            items
                .iter()
                .map(|i| scalar(i).ok_or_else(|| wrong("a list of strings")))
                .collect::<Result<_, _>>()?
        } else {
            vec![scalar(&value).ok_or_else(|| wrong("a string or a number"))?]
        };
        if matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        from_file.insert(id.to_string());
        for v in values {
            words.push(
                match (arg.get_long(), settings::is_flag(arg)) {
                    (Some(long), true) => format!("--{long}"),
                    (Some(long), false) => format!("--{long}={v}"),
                    // The positional app: one word, ahead of the command line's options.
                    (None, _) => v,
                }
                .into(),
            );
        }
    }
    Ok((words, from_file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn load(file: &str, args: &[&str]) -> Result<Loaded, LoadError> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("ironhorse-values-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, file).unwrap();
        let mut argv: Vec<OsString> = vec!["ironhorse".into(), "-c".into(), path.clone().into()];
        argv.extend(args.iter().map(OsString::from));
        let loaded = Loaded::from_args(argv);
        let _ = std::fs::remove_file(&path);
        loaded
    }

    #[test]
    fn file_values_are_typed_by_the_same_parsers() {
        let file = "app = \"m:app\"\nbind = [\"127.0.0.1:1\", \"unix:/tmp/s\"]\nautoindex = true\n\
                    keep_alive = \"1m 30s\"\nbody_timeout = 0.5\nmax_worker_memory = \"64M\"\n\
                    model = \"gthread\"\n";
        let s = load(file, &[]).ok().unwrap().settings;
        assert_eq!(s.app.as_deref(), Some("m:app"));
        assert_eq!(s.bind, ["127.0.0.1:1", "unix:/tmp/s"]);
        assert!(s.autoindex);
        assert_eq!(s.keep_alive, Duration::from_secs(90));
        assert_eq!(s.body_timeout, Duration::from_millis(500));
        assert_eq!(s.max_worker_memory, Some(64 << 20));
        assert_eq!(s.model.name, "hybrid");
        // Untouched settings keep their declared defaults.
        assert_eq!(s.threads, 16);
        assert_eq!(s.header_timeout, Duration::from_secs(10));
    }

    #[test]
    fn the_command_line_beats_the_file() {
        let file = "app = \"m:app\"\nworkers = 3\nbind = \"127.0.0.1:1\"\n";
        let loaded = load(file, &["other:app", "-w", "5", "-b", "127.0.0.1:2"])
            .ok()
            .unwrap();
        assert_eq!(loaded.settings.app.as_deref(), Some("other:app"));
        assert_eq!(loaded.settings.workers, 5);
        assert_eq!(loaded.settings.bind, ["127.0.0.1:2"]);
        assert_eq!(loaded.source("workers"), "command line");
        assert_eq!(loaded.source("threads"), "default");
    }

    #[test]
    fn a_bad_file_value_names_the_file_and_the_flag() {
        let Err(LoadError::File(e)) = load("workers = 0\n", &[]) else {
            panic!("accepted workers = 0");
        };
        assert!(e.0.starts_with("--config "), "{e}");
        assert!(e.0.contains("--workers"), "{e}");
        let Err(LoadError::File(e)) = load("preload = 1\n", &[]) else {
            panic!("accepted preload = 1");
        };
        assert!(e.0.contains("preload must be true or false"), "{e}");
    }
}
