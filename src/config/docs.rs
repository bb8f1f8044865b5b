//! Documentation generated from the one declaration of the settings
//! ([`Config`]): the settings part of `latchkey serve --help`, the README's
//! configuration table and `.env.example`. A test fails when the committed
//! files drift; `LATCHKEY_BLESS=1 cargo test --lib config` rewrites them.

use std::fmt::Write;

use super::{Config, SettingDoc};

/// Where the generated table sits in the README.
pub const README_START: &str =
    "<!-- settings:start (generated from src/config/mod.rs; LATCHKEY_BLESS=1 cargo test --lib config rewrites it) -->";
pub const README_END: &str = "<!-- settings:end -->";

const ENV_EXAMPLE_HEADER: &str = "\
# Latchkey settings. Copy to `.env` (read at start-up) or set them in the
# environment; the environment wins over `.env`. An empty value counts as
# unset. Durations take whole seconds or a unit suffix: 900, 15m, 12h, 7d.
#
# Generated from src/config/mod.rs (`LATCHKEY_BLESS=1 cargo test --lib config`).
";

/// The settings part of `latchkey serve --help`.
pub fn help_text() -> String {
    let mut out = String::from("Settings (environment variables, or a `.env` file):\n");
    for_each_heading(|heading, settings| {
        let _ = write!(out, "\n{heading}:\n");
        for s in settings {
            let default = s.default.as_deref().map(|d| format!(" [default: {d}]")).unwrap_or_default();
            let _ = writeln!(out, "  {}{default}", s.env);
            for line in wrap(&s.help, 72) {
                let _ = writeln!(out, "      {line}");
            }
        }
    });
    out
}

/// The README's configuration table, markers included.
pub fn readme_table() -> String {
    let mut out = format!("{README_START}\n| variable | default | meaning |\n|---|---|---|\n");
    for s in Config::documentation() {
        let default = s.default.as_deref().map_or_else(|| "unset".to_owned(), |d| format!("`{d}`"));
        let _ = writeln!(out, "| `{}` | {default} | {} |", s.env, one_line(&s.help));
    }
    out.push_str(README_END);
    out
}

/// The whole of `.env.example`.
pub fn env_example() -> String {
    let mut out = String::from(ENV_EXAMPLE_HEADER);
    for_each_heading(|heading, settings| {
        let _ = write!(out, "\n# ---- {heading} ----\n");
        for s in settings {
            out.push('\n');
            for line in wrap(&s.help, 76) {
                let _ = writeln!(out, "# {line}");
            }
            let _ = writeln!(out, "{}={}", s.env, s.default.as_deref().unwrap_or_default());
        }
    });
    out
}

fn for_each_heading(mut f: impl FnMut(&str, &[SettingDoc])) {
    let docs = Config::documentation();
    let mut start = 0;
    while start < docs.len() {
        let heading = &docs[start].heading;
        let end = docs[start..].iter().position(|d| &d.heading != heading).map_or(docs.len(), |n| start + n);
        f(heading, &docs[start..end]);
        start = end;
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = env!("CARGO_MANIFEST_DIR");

    fn bless() -> bool {
        std::env::var_os("LATCHKEY_BLESS").is_some()
    }

    #[test]
    fn env_example_is_generated_from_the_settings() {
        let path = format!("{ROOT}/.env.example");
        let generated = env_example();
        if bless() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap();
        assert!(committed == generated, ".env.example is stale: run `LATCHKEY_BLESS=1 cargo test --lib config`");
    }

    #[test]
    fn readme_table_is_generated_from_the_settings() {
        let path = format!("{ROOT}/README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let (Some(start), Some(end)) = (readme.find(README_START), readme.find(README_END)) else {
            panic!("README.md has no settings markers");
        };
        let current = &readme[start..end + README_END.len()];
        let generated = readme_table();
        if bless() && current != generated {
            std::fs::write(&path, readme.replacen(current, &generated, 1)).unwrap();
            return;
        }
        assert!(
            current == generated,
            "README.md's settings table is stale: run `LATCHKEY_BLESS=1 cargo test --lib config`"
        );
    }

    #[test]
    fn every_setting_is_documented_with_a_variable() {
        let docs = Config::documentation();
        assert!(docs.len() >= 25, "{} settings", docs.len());
        for d in &docs {
            assert!(!d.help.trim().is_empty() && !d.heading.is_empty(), "{} lacks help or a heading", d.env);
        }
        assert!(help_text().contains("BCRYPT_COST [default: 12]"));
    }
}
