//! Layered setting values: command line, then environment (both through clap), then the
//! TOML config file, then the table's defaults.

use std::collections::BTreeMap;

use clap::parser::ValueSource;
use clap::ArgMatches;

use crate::settings::{Kind, SettingError, SETTINGS};

/// A value from the config file, already checked against the setting's kind.
#[derive(Debug, Clone)]
enum FileValue {
    Flag(bool),
    One(String),
    Many(Vec<String>),
}

/// Typed access to the effective settings, with errors naming the setting.
pub struct Values {
    matches: ArgMatches,
    file: BTreeMap<&'static str, FileValue>,
}

impl Values {
    /// Layers the config file (`-c`) under what clap parsed.
    pub fn load(matches: ArgMatches) -> Result<Values, SettingError> {
        let mut values = Values {
            matches,
            file: BTreeMap::new(),
        };
        if let Some(path) = values.text("config") {
            values.file = read_file(&path)?;
        }
        Ok(values)
    }

    /// Whether the command line or the environment set `name` (they beat the file).
    fn given(&self, name: &str) -> bool {
        matches!(
            self.matches.value_source(name),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    }

    /// Where the effective value of `name` comes from.
    pub fn source(&self, name: &str) -> &'static str {
        match self.matches.value_source(name) {
            Some(ValueSource::CommandLine) => "command line",
            Some(ValueSource::EnvVariable) => "environment",
            _ if self.file.contains_key(name) => "config file",
            _ => "default",
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        match self.file.get(name) {
            Some(FileValue::Flag(on)) if !self.given(name) => *on,
            _ => self.matches.get_flag(name),
        }
    }

    pub fn text(&self, name: &str) -> Option<String> {
        match self.file.get(name) {
            Some(FileValue::One(v)) if !self.given(name) => Some(v.clone()),
            _ => self.matches.get_one::<String>(name).cloned(),
        }
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        match self.file.get(name) {
            Some(FileValue::Many(v)) if !self.given(name) => v.clone(),
            Some(FileValue::One(v)) if !self.given(name) => vec![v.clone()],
            _ => self
                .matches
                .get_many::<String>(name)
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
        }
    }

    pub fn count(&self, name: &str) -> Result<Option<usize>, SettingError> {
        self.text(name)
            .map(|v| {
                v.trim().parse::<usize>().map_err(|_| {
                    SettingError(format!("--{name}: expected a whole number, got {v:?}"))
                })
            })
            .transpose()
    }

    /// A size in bytes; `K`, `M` and `G` suffixes multiply by 1024s.
    pub fn bytes(&self, name: &str) -> Result<Option<u64>, SettingError> {
        self.text(name)
            .map(|v| {
                let t = v.trim();
                let (digits, scale) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
                    Some('K') => (&t[..t.len() - 1], 1u64 << 10),
                    Some('M') => (&t[..t.len() - 1], 1 << 20),
                    Some('G') => (&t[..t.len() - 1], 1 << 30),
                    _ => (t, 1),
                };
                digits
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| n.checked_mul(scale))
                    .ok_or_else(|| SettingError(format!("--{name}: expected a number of bytes (K, M, G suffixes allowed), got {v:?}")))
            })
            .transpose()
    }

    pub fn seconds(&self, name: &str) -> Result<Option<std::time::Duration>, SettingError> {
        self.text(name)
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(std::time::Duration::from_secs_f64)
                    .ok_or_else(|| {
                        SettingError(format!(
                            "--{name}: expected seconds (a non-negative number), got {v:?}"
                        ))
                    })
            })
            .transpose()
    }

    /// The effective settings as TOML, each with its source.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for s in SETTINGS
            .iter()
            .filter(|s| !matches!(s.name, "config" | "print-config" | "check-config"))
        {
            let value = match s.kind {
                Kind::Flag => toml::Value::Boolean(self.flag(s.name)),
                Kind::List => toml::Value::Array(
                    self.list(s.name)
                        .into_iter()
                        .map(toml::Value::String)
                        .collect(),
                ),
                _ => match self.text(s.name) {
                    Some(v) => toml::Value::String(v),
                    None => {
                        out.push_str(&format!("# {} is not set\n", s.name));
                        continue;
                    }
                },
            };
            out.push_str(&format!(
                "{} = {}  # {}\n",
                s.name,
                value,
                self.source(s.name)
            ));
        }
        out
    }
}

/// Reads and checks the config file: every key a known setting, every value of its kind.
fn read_file(path: &str) -> Result<BTreeMap<&'static str, FileValue>, SettingError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| SettingError(format!("--config {path}: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SettingError(format!("--config {path}: {}", e.message())))?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let setting = SETTINGS
            .iter()
            .find(|s| {
                s.name == name && !matches!(s.name, "config" | "print-config" | "check-config")
            })
            .ok_or_else(|| SettingError(format!("--config {path}: unknown setting {key:?}")))?;
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
        let parsed = match setting.kind {
            Kind::Flag => FileValue::Flag(value.as_bool().ok_or_else(|| wrong("true or false"))?),
            Kind::List => match &value {
                toml::Value::Array(items) => FileValue::Many(
                    items
                        .iter()
                        .map(|i| scalar(i).ok_or_else(|| wrong("a list of strings")))
                        .collect::<Result<_, _>>()?,
                ),
                other => FileValue::One(
                    scalar(other).ok_or_else(|| wrong("a string or a list of strings"))?,
                ),
            },
            Kind::Count | Kind::Seconds | Kind::Bytes => {
                FileValue::One(scalar(&value).ok_or_else(|| wrong("a number"))?)
            }
            Kind::Text | Kind::Positional => {
                FileValue::One(scalar(&value).ok_or_else(|| wrong("a string"))?)
            }
        };
        values.insert(setting.name, parsed);
    }
    Ok(values)
}
