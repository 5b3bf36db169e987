//! Mail templates: a subject, a plain-text body and an HTML body per mail kind, rendered
//! with minijinja. Good defaults are compiled in; a scope's `templates_dir` may hold files
//! that replace any of them (`confirm.subject.txt`, `confirm.txt`, `confirm.html`, and so
//! on for `email_changed`, `reset`, `email_code`, `new_device`), read once at start. HTML
//! templates (`.html`) escape every value; every mail has its text part.
//!
//! The values a template sees: `scope`, `username` (may be empty), `email` (the
//! recipient), `code`, `link` (empty when the mail has none), `expires_minutes`, and
//! `detail` (per kind: `new_email` for `email_changed`; `at`, `ip`, `user_agent` for
//! `new_device`).

use anyhow::Context;
use hallpass_core::outbox::MailKind;
use minijinja::Environment;
use std::path::Path;

const LAYOUT_TEXT_END: &str = "\n\n-- \nThis mail was sent by {{ scope }}.\n";

fn defaults(kind: MailKind) -> [(String, String); 3] {
    let (subject, text, html): (&str, &str, &str) = match kind {
        MailKind::Confirm => (
            "Confirm your email for {{ scope }}",
            "Hello{% if username %} {{ username }}{% endif %},\n\nPlease confirm that {{ email }} is your address.\n{% if link %}\nOpen this link and press the button:\n{{ link }}\n\nOr enter this code:{% else %}\nEnter this code:{% endif %} {{ code }}\n\nIt works for {{ expires_minutes }} minutes. If you did not ask for this, ignore this mail.",
            "<p>Hello{% if username %} {{ username }}{% endif %},</p>\n<p>Please confirm that {{ email }} is your address.</p>\n{% if link %}<p><a href=\"{{ link }}\">Confirm my email</a></p>\n<p>Or enter this code:</p>{% else %}<p>Enter this code:</p>{% endif %}\n<p><code>{{ code }}</code></p>\n<p>It works for {{ expires_minutes }} minutes. If you did not ask for this, ignore this mail.</p>",
        ),
        MailKind::EmailChanged => (
            "Your email for {{ scope }} was changed",
            "Hello{% if username %} {{ username }}{% endif %},\n\nThe email of your account was changed from {{ email }} to {{ detail.new_email }}.\nIf you did not do this, contact the support of {{ scope }} at once.",
            "<p>Hello{% if username %} {{ username }}{% endif %},</p>\n<p>The email of your account was changed from {{ email }} to {{ detail.new_email }}.</p>\n<p>If you did not do this, contact the support of {{ scope }} at once.</p>",
        ),
        MailKind::Reset => (
            "Reset your password for {{ scope }}",
            "Hello{% if username %} {{ username }}{% endif %},\n\nSomeone asked to reset the password of your account.\n{% if link %}\nOpen this link to choose a new password:\n{{ link }}\n\nOr enter this code:{% else %}\nEnter this code:{% endif %} {{ code }}\n\nIt works for {{ expires_minutes }} minutes. If you did not ask for this, ignore this mail: your password stays as it is.",
            "<p>Hello{% if username %} {{ username }}{% endif %},</p>\n<p>Someone asked to reset the password of your account.</p>\n{% if link %}<p><a href=\"{{ link }}\">Choose a new password</a></p>\n<p>Or enter this code:</p>{% else %}<p>Enter this code:</p>{% endif %}\n<p><code>{{ code }}</code></p>\n<p>It works for {{ expires_minutes }} minutes. If you did not ask for this, ignore this mail: your password stays as it is.</p>",
        ),
        MailKind::EmailCode => (
            "Your sign-in code for {{ scope }}: {{ code }}",
            "Hello{% if username %} {{ username }}{% endif %},\n\nYour sign-in code is {{ code }}\n{% if link %}\nOr open this link:\n{{ link }}\n{% endif %}\nIt works for {{ expires_minutes }} minutes, once. If you did not ask for it, ignore this mail.",
            "<p>Hello{% if username %} {{ username }}{% endif %},</p>\n<p>Your sign-in code is <strong>{{ code }}</strong></p>\n{% if link %}<p><a href=\"{{ link }}\">Sign in</a></p>{% endif %}\n<p>It works for {{ expires_minutes }} minutes, once. If you did not ask for it, ignore this mail.</p>",
        ),
        MailKind::NewDevice => (
            "New sign-in to {{ scope }}",
            "Hello{% if username %} {{ username }}{% endif %},\n\nYour account was signed in to from a new device at {{ detail.at }}{% if detail.ip %} from {{ detail.ip }}{% endif %}{% if detail.user_agent %} ({{ detail.user_agent }}){% endif %}.\nIf this was not you, change your password.",
            "<p>Hello{% if username %} {{ username }}{% endif %},</p>\n<p>Your account was signed in to from a new device at {{ detail.at }}{% if detail.ip %} from {{ detail.ip }}{% endif %}{% if detail.user_agent %} ({{ detail.user_agent }}){% endif %}.</p>\n<p>If this was not you, change your password.</p>",
        ),
    };
    let k = kind.as_str();
    [
        (format!("{k}.subject.txt"), subject.to_owned()),
        (format!("{k}.txt"), format!("{text}{LAYOUT_TEXT_END}")),
        (format!("{k}.html"), format!("<!doctype html>\n<html><body>\n{html}\n</body></html>\n")),
    ]
}

/// The templates of one scope.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

/// A rendered mail.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

impl Templates {
    /// The defaults, with the files of `dir` (if given) in their place. A file that does
    /// not parse is an error here, at start, not when a mail is sent.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        for kind in MailKind::ALL {
            for (name, source) in defaults(kind) {
                let source = match dir.map(|d| d.join(&name)) {
                    Some(path) if path.exists() => std::fs::read_to_string(&path)
                        .with_context(|| format!("reading mail template {}", path.display()))?,
                    _ => source,
                };
                let what = format!("mail template {name}");
                env.add_template_owned(name, source).context(what)?;
            }
        }
        if let Some(dir) = dir {
            anyhow::ensure!(dir.is_dir(), "templates_dir {} is not a directory", dir.display());
        }
        Ok(Self { env })
    }

    /// Renders the three parts of `kind` with `ctx`.
    pub fn render(&self, kind: MailKind, ctx: &minijinja::Value) -> anyhow::Result<Rendered> {
        let k = kind.as_str();
        let get = |suffix: &str| -> anyhow::Result<String> {
            let name = format!("{k}.{suffix}");
            Ok(self.env.get_template(&name)?.render(ctx)?)
        };
        let subject = get("subject.txt")?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Rendered { subject, text: get("txt")?, html: get("html")? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let t = Templates::load(None).unwrap();
        let ctx = minijinja::context! { scope => "shop", username => "<b>eve</b>", email => "e@example.com",
        code => "123456", link => "", expires_minutes => 10, detail => minijinja::Value::from(()) };
        let r = t.render(MailKind::EmailCode, &ctx).unwrap();
        assert_eq!(r.subject, "Your sign-in code for shop: 123456");
        assert!(r.html.contains("&lt;b&gt;eve&lt;&#x2f;b&gt;"), "{}", r.html);
        assert!(r.text.contains("<b>eve</b>"));
        assert!(!r.text.contains("Or open this link"));
    }

    #[test]
    fn files_replace_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("reset.subject.txt"), "Neues Passwort für {{ scope }}").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let ctx = minijinja::context! { scope => "shop", code => "hpc_x", link => "", expires_minutes => 60 };
        assert_eq!(t.render(MailKind::Reset, &ctx).unwrap().subject, "Neues Passwort für shop");
        assert!(t.render(MailKind::Confirm, &ctx).unwrap().subject.starts_with("Confirm your email"));
        std::fs::write(dir.path().join("confirm.html"), "{% if %}").unwrap();
        assert!(Templates::load(Some(dir.path())).is_err());
    }
}
