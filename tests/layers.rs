//! The crate's layers, from the top: the command line (`main`, `cli`), the
//! server's wiring (`app`), handlers (`api`), use cases (`flows`), the shared
//! state (`state`), and below it everything else: the tables' owners and the
//! mechanisms. A module below `state` never names a module above it, so the
//! lower layers can be read, tested and reused without the HTTP edge.

use std::{fs, path::Path};

const UPPER: &[&str] = &["main.rs", "cli.rs", "app.rs", "state.rs", "api", "flows"];
const NAMES_ABOVE: &[&str] = &["state", "api", "app", "flows", "cli"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::…` path a file names: `crate::x::y` and the items of `use crate::{…}`.
fn crate_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The top-level items of the group, one nesting level deep.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => paths.push(std::mem::take(&mut item)),
                    _ if depth == 0 => item.push(c),
                    _ => {}
                }
            }
            paths.push(item);
        } else {
            paths.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect());
        }
    }
    paths.into_iter().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect()
}

#[test]
fn modules_below_state_name_nothing_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut offences = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_str().unwrap();
        if UPPER.contains(&top) || relative == Path::new("lib.rs") {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        for path in crate_paths(&text) {
            let first = path.split("::").next().unwrap_or_default();
            if NAMES_ABOVE.contains(&first) {
                offences.push(format!("{}: crate::{path}", relative.display()));
            }
        }
    }
    assert!(offences.is_empty(), "lower modules name upper ones:\n{}", offences.join("\n"));
}

#[test]
fn the_check_sees_grouped_and_plain_paths() {
    let paths = crate_paths("use crate::{auth::{a, b}, state::AppState};\nlet x = crate::api::schemas::User;");
    assert_eq!(paths, ["auth::", "state::AppState", "api::schemas::User"]);
}

#[test]
fn handlers_write_no_rows_and_open_no_transactions() {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut files = Vec::new();
    rust_files(&api, &mut files);
    let mut offences = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for needle in ["ActiveModel", ".begin()", "sessions.changed(", "outbox.wake("] {
            if text.contains(needle) {
                offences.push(format!("{}: {needle}", file.display()));
            }
        }
    }
    assert!(offences.is_empty(), "handlers doing a flow's or an owner's work:\n{}", offences.join("\n"));
}
