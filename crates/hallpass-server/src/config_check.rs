//! Checking a configuration: the names of settings (a misspelt `HALLPASS_*` variable or
//! file key is an error naming the closest known one, never silently ignored), and
//! `hallpass config check`, which prints the effective settings, where each value came
//! from (default, file or environment), with secrets masked.
//!
//! The known names are the fields of [`Config`] and [`ScopeConfig`] as serde sees them,
//! so a new setting is known here the moment it is added there.

use crate::config::{Config, ENV_PREFIX, OidcProviderConfig, ScopeConfig};
use anyhow::bail;
use figment::Figment;
use figment::providers::{Format, Toml};
use figment::value::Value as FigValue;
use std::path::Path;

/// `HALLPASS_*` variables that are not settings (without the prefix): the config file's
/// path, the source of `import-sleepless`, what the project's own tests read, and the
/// build's commit override (read by build.rs only, but a packager's shell may still
/// export it when starting the binary).
const NOT_SETTINGS: &[&str] = &["CONFIG", "SLEEPLESS_URL", "WRITE_OPENAPI", "BUILD_COMMIT"];

/// Whether the variable `HALLPASS_<stripped>` is read by something other than the
/// configuration (see [`NOT_SETTINGS`]; `TEST_*` are the test suite's database URLs).
pub(crate) fn is_not_a_setting(stripped: &str) -> bool {
    let upper = stripped.to_ascii_uppercase();
    NOT_SETTINGS.contains(&upper.as_str()) || upper.starts_with("TEST_")
}

fn field_names<T: serde::Serialize>(value: &T) -> Vec<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// The top-level settings (lower case, as in the file).
fn top_level() -> Vec<String> {
    field_names(&Config::default())
}

/// The settings a `[scopes.NAME]` table may hold.
fn per_scope() -> Vec<String> {
    field_names(&ScopeConfig::default())
}

/// Whether `path` (below `mail`) names a mail setting: `from`, `reply_to`,
/// `notify_new_device`, `templates_dir`, `links__confirm|reset|email_code`.
fn is_mail_key(path: &[&str]) -> bool {
    match path {
        [key] => field_names(&crate::mail::MailConfig::default()).iter().any(|k| k == key && k != "links"),
        ["links", key] => field_names(&crate::mail::LinksConfig::default()).iter().any(|k| k == key),
        _ => false,
    }
}

/// The settings a `[scopes.NAME.oidc.PROVIDER]` table may hold.
fn per_provider() -> Vec<String> {
    field_names(&OidcProviderConfig::default())
}

/// The known name closest to `name`, if any is close enough to be a likely typo.
fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.as_str())
}

fn hint(suggestion: Option<String>) -> String {
    suggestion.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default()
}

/// Refuses any `HALLPASS_*` variable that names no setting, with the closest known name;
/// every unknown one is listed.
pub(crate) fn check_variable_names(names: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let (top, scope, provider) = (top_level(), per_scope(), per_provider());
    let mut errors = Vec::new();
    for name in names {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
        if is_not_a_setting(rest) {
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split("__").collect();
        match parts.as_slice() {
            [key] if *key != "scopes" && *key != "mail" && top.iter().any(|k| k == key) => {}
            ["mail", rest @ ..] if is_mail_key(rest) => {}
            ["scopes", name, "mail", rest @ ..] if !name.is_empty() && is_mail_key(rest) => {}
            ["scopes", name, "webauthn", key] if !name.is_empty() => {
                let known = field_names(&crate::config::WebauthnConfig::default());
                if !known.iter().any(|k| k == key) {
                    errors.push(format!(
                        "unknown setting {key:?} of {name}.webauthn (known: {})",
                        known.join(", ")
                    ));
                }
            }
            ["scopes", name, "oidc", p, key] if !name.is_empty() && !p.is_empty() => {
                if !provider.iter().any(|k| k == key) {
                    let suggestion = closest(key, &provider).map(|s| {
                        format!(
                            "{ENV_PREFIX}SCOPES__{}__OIDC__{}__{}",
                            name.to_ascii_uppercase(),
                            p.to_ascii_uppercase(),
                            s.to_ascii_uppercase()
                        )
                    });
                    errors.push(format!(
                        "unknown provider setting {key:?} of {name}.oidc.{p}{}",
                        hint(suggestion)
                    ));
                }
            }
            ["scopes", name, key] if !name.is_empty() => {
                if !scope.iter().any(|k| k == key) {
                    let also =
                        if top.iter().any(|k| k == key) { " (it is not a per-scope setting)" } else { "" };
                    let suggestion = closest(key, &scope).map(|s| {
                        format!(
                            "{ENV_PREFIX}SCOPES__{}__{}",
                            name.to_ascii_uppercase(),
                            s.to_ascii_uppercase()
                        )
                    });
                    errors.push(format!("unknown per-scope setting {name:?}{also}{}", hint(suggestion)));
                }
            }
            _ => {
                let suggestion =
                    closest(&lower, &top).map(|s| format!("{ENV_PREFIX}{}", s.to_ascii_uppercase()));
                errors.push(format!("unknown setting {name}{}", hint(suggestion)));
            }
        }
    }
    if !errors.is_empty() {
        bail!("configuration: {}", errors.join("; "));
    }
    Ok(())
}

/// Refuses a key of the TOML file `file` that names no setting, with the closest known
/// name. A file that does not parse is left to the reader, whose error says where.
pub(crate) fn check_file_keys(file: &Path) -> anyhow::Result<()> {
    use figment::Provider as _;
    let Ok(data) = Toml::file_exact(file).data() else { return Ok(()) };
    let (top, scope, provider) = (top_level(), per_scope(), per_provider());
    let mut errors = Vec::new();
    for dict in data.values() {
        for (key, value) in dict {
            if key == "scopes" {
                let FigValue::Dict(_, scopes) = value else { continue };
                for (name, table) in scopes {
                    let FigValue::Dict(_, table) = table else { continue };
                    if let Some(FigValue::Dict(_, providers)) = table.get("oidc") {
                        for (p, keys) in providers {
                            let FigValue::Dict(_, keys) = keys else { continue };
                            for key in keys.keys().filter(|k| !provider.contains(k)) {
                                let suggestion = closest(key, &provider).map(|s| format!("`{s}`"));
                                errors.push(format!(
                                    "unknown key `{key}` in [scopes.{name}.oidc.{p}]{}",
                                    hint(suggestion)
                                ));
                            }
                        }
                    }
                    for key in table.keys() {
                        if !scope.contains(key) {
                            let also =
                                if top.contains(key) { " (it is not a per-scope setting)" } else { "" };
                            let suggestion = closest(key, &scope).map(|s| format!("`{s}`"));
                            errors.push(format!(
                                "unknown key `{key}` in [scopes.{name}]{also}{}",
                                hint(suggestion)
                            ));
                        }
                    }
                }
            } else if !top.contains(key) {
                let suggestion = closest(key, &top).map(|s| format!("`{s}`"));
                errors.push(format!("unknown key `{key}`{}", hint(suggestion)));
            }
        }
    }
    if !errors.is_empty() {
        bail!("configuration file {}: {}", file.display(), errors.join("; "));
    }
    Ok(())
}

/// A value as `config check` prints it: secrets masked.
fn shown(key: &str, value: &serde_json::Value) -> String {
    if key.ends_with("password") || key.contains("secret") {
        return if value.is_null() { "(unset)".into() } else { "***".into() };
    }
    match value {
        serde_json::Value::Null => "(unset)".into(),
        serde_json::Value::String(s) => format!("{:?}", crate::serve::redact_url(s)),
        other => other.to_string(),
    }
}

/// Where the value at `path` (`listen`, `scopes.shop.code_ttl`) came from.
fn source(fig: &Figment, path: &str) -> String {
    match fig.find_metadata(path) {
        Some(md) if md.name.contains("environment") => {
            format!("environment {ENV_PREFIX}{}", path.replace('.', "__").to_ascii_uppercase())
        }
        Some(md) if md.name.contains("TOML") => match &md.source {
            Some(src) => format!("file {src}"),
            None => "file".into(),
        },
        _ => "default".into(),
    }
}

/// The report of `hallpass config check`: one line per setting, `name = value  # source`,
/// then each scope's overrides.
pub fn report(config: &Config, fig: &Figment) -> String {
    let Ok(serde_json::Value::Object(values)) = serde_json::to_value(config) else {
        return String::new();
    };
    let mut lines: Vec<(String, String, String)> = Vec::new();
    for (key, value) in &values {
        if key == "scopes" {
            continue;
        }
        lines.push((key.clone(), shown(key, value), source(fig, key)));
    }
    for (name, over) in &config.scopes {
        let Ok(serde_json::Value::Object(map)) = serde_json::to_value(over) else { continue };
        for (key, value) in map.iter().filter(|(_, v)| !v.is_null()) {
            if let (true, serde_json::Value::Object(providers)) = (key == "oidc", value) {
                // One line per provider setting, so secrets are masked like any other.
                for (provider, fields) in providers {
                    let serde_json::Value::Object(fields) = fields else { continue };
                    for (field, value) in fields.iter().filter(|(_, v)| !v.is_null()) {
                        let path = format!("scopes.{name}.oidc.{provider}.{field}");
                        let src = source(fig, &path);
                        lines.push((path, shown(field, value), src));
                    }
                }
                continue;
            }
            let path = format!("scopes.{name}.{key}");
            let src = source(fig, &path);
            lines.push((path, shown(key, value), src));
        }
    }
    let width = lines.iter().map(|(k, v, _)| k.len() + v.len()).max().unwrap_or(0) + 3;
    let mut out = String::new();
    for (key, value, src) in lines {
        let pad = width.saturating_sub(key.len() + value.len() + 3);
        out.push_str(&format!("{key} = {value}{:pad$}  # {src}\n", ""));
    }
    out
}

/// `hallpass config check`: loads the configuration as `serve` would and prints it.
pub fn run(file: Option<&Path>) -> anyhow::Result<String> {
    let (config, fig) = Config::load_with_sources(file)?;
    Ok(report(&config, &fig))
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    fn names(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn a_misspelt_variable_is_refused_with_the_closest_name() {
        let e = check_variable_names(names(&["HALLPASS_SESION_IDLE_TIMEOUT"])).unwrap_err().to_string();
        assert!(e.contains("unknown setting HALLPASS_SESION_IDLE_TIMEOUT"), "{e}");
        assert!(e.contains("did you mean HALLPASS_SESSION_IDLE_TIMEOUT?"), "{e}");
        let e = check_variable_names(names(&["HALLPASS_SCOPES__SHOP__CODE_TLL"])).unwrap_err().to_string();
        assert!(e.contains("did you mean HALLPASS_SCOPES__SHOP__CODE_TTL?"), "{e}");
        let e = check_variable_names(names(&["HALLPASS_SCOPES__SHOP__LISTEN"])).unwrap_err().to_string();
        assert!(e.contains("not a per-scope setting"), "{e}");
        let e = check_variable_names(names(&["HALLPASS_ZZZ"])).unwrap_err().to_string();
        assert!(!e.contains("did you mean"), "nothing close: {e}");
    }

    #[test]
    fn mail_variables_are_known_and_misspelt_ones_refused() {
        check_variable_names(names(&[
            "HALLPASS_SMTP_URL",
            "HALLPASS_SMTP_PASSWORD_FILE",
            "HALLPASS_MAIL__FROM",
            "HALLPASS_MAIL__LINKS__RESET",
            "HALLPASS_SCOPES__SHOP__MAIL__REPLY_TO",
            "HALLPASS_SCOPES__SHOP__MAIL__LINKS__EMAIL_CODE",
        ]))
        .unwrap();
        for bad in [
            "HALLPASS_MAIL",
            "HALLPASS_MAIL__FORM",
            "HALLPASS_MAIL__LINKS",
            "HALLPASS_SCOPES__SHOP__MAIL__LINKS__X",
        ] {
            assert!(check_variable_names(names(&[bad])).is_err(), "{bad}");
        }
    }

    #[test]
    fn known_and_non_setting_variables_pass() {
        check_variable_names(names(&[
            "HALLPASS_LISTEN",
            "HALLPASS_THROTTLE_KEY_OTHER_RATE",
            "HALLPASS_SCOPES__SHOP__CODE_TTL",
            "HALLPASS_CONFIG",
            "HALLPASS_TEST_POSTGRES_URL",
            "HALLPASS_SLEEPLESS_URL",
            "HALLPASS_BUILD_COMMIT",
            "PATH",
        ]))
        .unwrap();
    }

    #[test]
    fn check_names_sources_and_masks_secrets() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "h.toml",
                "session_idle_timeout = \"30m\"\n[scopes.shop]\ncode_ttl = \"15m\"\n",
            )?;
            jail.set_env("HALLPASS_DATABASE_URL", "postgres://hp:hunter2@db.internal/hallpass");
            let out = run(Some(Path::new("h.toml"))).map_err(|e| e.to_string())?;
            let line = |key: &str| {
                out.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_default().to_owned()
            };
            assert!(
                line("session_idle_timeout").contains("\"30m\"")
                    && line("session_idle_timeout").contains("# file"),
                "{out}"
            );
            assert!(line("database_url").contains("postgres://hp:***@db.internal/hallpass"), "{out}");
            assert!(line("database_url").ends_with("# environment HALLPASS_DATABASE_URL"), "{out}");
            assert!(!out.contains("hunter2"), "{out}");
            assert!(line("listen").ends_with("# default"), "{out}");
            assert!(line("scopes.shop.code_ttl").contains("# file"), "{out}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_file_key_is_refused_with_the_closest_name() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("h.toml", "lisen = \"0.0.0.0:80\"\n[scopes.shop]\nmin_pasword_score = 4\n")?;
            let e = run(Some(Path::new("h.toml"))).unwrap_err().to_string();
            assert!(e.contains("unknown key `lisen` (did you mean `listen`?)"), "{e}");
            assert!(
                e.contains(
                    "unknown key `min_pasword_score` in [scopes.shop] (did you mean `min_password_score`?)"
                ),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    fn providers_are_reported_setting_by_setting_with_secrets_masked() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "h.toml",
                "public_url = \"https://auth.example\"\nsecret_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n\
                 [scopes.shop.oidc.google]\nissuer = \"https://accounts.google.com\"\nclient_id = \"cid\"\n\
                 client_secret = \"s3cr3t-value\"\nreturn_to = [\"https://shop.example/done\"]\n",
            )?;
            jail.set_env("HALLPASS_SCOPES__SHOP__OIDC__GOOGLE__NEW_USERS", "refuse");
            let out = run(Some(Path::new("h.toml"))).map_err(|e| e.to_string())?;
            assert!(!out.contains("s3cr3t-value") && !out.contains("MDEyMzQ1"), "{out}");
            assert!(out.contains("scopes.shop.oidc.google.client_secret = ***"), "{out}");
            assert!(out.contains("secret_key = ***"), "{out}");
            assert!(out.contains("scopes.shop.oidc.google.client_id = \"cid\""), "{out}");
            let refuse =
                out.lines().find(|l| l.starts_with("scopes.shop.oidc.google.new_users")).unwrap_or_default();
            assert!(refuse.contains("refuse") && refuse.contains("environment"), "{out}");
            // A misspelt provider variable names the closest one.
            let e = check_variable_names(names(&["HALLPASS_SCOPES__SHOP__OIDC__GOOGLE__CLIENT_SECRT"]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("did you mean HALLPASS_SCOPES__SHOP__OIDC__GOOGLE__CLIENT_SECRET?"), "{e}");
            Ok(())
        });
    }
}
