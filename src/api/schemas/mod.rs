//! Wire types, one module per tag: what SPAs send and receive. Doc comments
//! here are the public docs. Request bodies ignore fields they do not know
//! (as the spec allows), so a field like `role` in a registration simply has
//! no effect. The input rules several requests share, and how the spec's
//! patterns spell out the parsers, are in [`rules`].

mod auth;
mod email;
mod events;
mod mfa;
mod operations;
pub mod rules;
mod tasks;
mod users;

pub use auth::*;
pub use email::*;
pub use events::*;
pub use mfa::*;
pub use operations::*;
pub use rules::*;
pub use tasks::*;
pub use users::*;

#[cfg(test)]
mod tests {
    //! Each pattern in the spec against the parser it documents. The patterns
    //! are read from the served spec, so these tests hold what clients see.
    use std::sync::LazyLock;

    use fancy_regex::Regex;
    use proptest::prelude::*;
    use serde_json::Value;

    use crate::domain::{Email, NewPassword, parse_full_name, parse_task_description, parse_task_title};

    fn pattern(schema: &str, field: &str) -> Regex {
        static SPEC: LazyLock<Value> = LazyLock::new(|| serde_json::from_str(&crate::api::service().spec()).unwrap());
        let property = &SPEC["components"]["schemas"][schema]["properties"][field];
        let source = property["pattern"].as_str().unwrap_or_else(|| panic!("{schema}.{field} has no pattern"));
        Regex::new(source).unwrap()
    }

    fn matches(re: &Regex, s: &str) -> bool {
        re.is_match(s).unwrap()
    }

    /// Every character up to U+3100 (all the space and control characters are
    /// there) and a sample of the rest, alone and in the places trimming
    /// treats differently.
    fn sample() -> impl Iterator<Item = char> {
        (0..=0x10FFFFu32).filter(|c| *c < 0x3100 || c % 61 == 0).filter_map(char::from_u32)
    }

    fn probes() -> impl Iterator<Item = String> {
        sample().flat_map(|c| {
            [format!("{c}"), format!("a{c}"), format!("{c}a"), format!("a{c}b"), format!(" {c} "), format!("{c}{c}")]
        })
    }

    /// Checks `accepts(s) == pattern(s)` over the probes and the extra values.
    fn agrees(schema: &str, field: &str, accepts: impl Fn(&str) -> bool, extra: &[String]) {
        let re = pattern(schema, field);
        for s in probes().chain(extra.iter().cloned()) {
            assert_eq!(matches(&re, &s), accepts(&s), "{schema}.{field} disagrees with the server on {s:?}");
        }
    }

    fn padded(core: &str) -> Vec<String> {
        ["", " ", "\t\n", "\u{85}\u{a0}", "\u{3000}"]
            .iter()
            .flat_map(|pad| [format!("{pad}{core}"), format!("{core}{pad}"), format!("{pad}{core}{pad}")])
            .collect()
    }

    fn lengths(unit: &str, around: usize) -> Vec<String> {
        (around - 1..=around + 1).flat_map(|n| padded(&unit.repeat(n))).collect()
    }

    #[test]
    fn task_titles() {
        let mut extra = lengths("ж", 200);
        extra.extend(lengths("🦀", 200));
        extra.extend(padded("a\tb\nc\rd"));
        extra.extend(["", "   ", "a\u{0}b", "a\u{7}b", "\u{b}a\u{c}", "a\u{85}b", "\u{85}a\u{85}"].map(String::from));
        agrees("NewTask", "title", |s| parse_task_title(s).is_ok(), &extra);
        agrees("TaskUpdate", "title", |s| parse_task_title(s).is_ok(), &extra);
    }

    #[test]
    fn task_descriptions() {
        let mut extra = lengths("🦀", 1000);
        extra.extend(lengths("x", 1000));
        extra.extend(["", "   ", "line\nbreak\ttab", "bell\u{7}"].map(String::from));
        let accepts = |s: &str| parse_task_description(Some(s)).is_ok();
        agrees("NewTask", "description", accepts, &extra);
        agrees("TaskUpdate", "description", accepts, &extra);
    }

    #[test]
    fn full_names() {
        let mut extra = lengths("é", 200);
        extra.extend(["", "  ", "Ada Lovelace", "Ada\tLovelace", "Ada\nLovelace", "\tAda\n"].map(String::from));
        let accepts = |s: &str| parse_full_name(Some(s)).is_ok();
        agrees("RegisterRequest", "full_name", accepts, &extra);
        agrees("UserUpdate", "full_name", accepts, &extra);
    }

    #[test]
    fn login_emails_must_not_be_blank() {
        agrees("LoginRequest", "email", |s| !s.trim().is_empty(), &["".into(), " \u{2028} ".into()]);
    }

    /// The spec's email is ASCII: the server also takes some non-ASCII
    /// addresses, never the other way round.
    fn email_agrees(re: &Regex, s: &str) {
        let accepted = Email::parse(s).is_ok();
        if s.trim().is_ascii() {
            assert_eq!(matches(re, s), accepted, "the email pattern disagrees with the server on {s:?}");
        } else {
            assert!(!matches(re, s) || accepted, "the email pattern takes {s:?}, which the server refuses");
        }
    }

    #[test]
    fn registration_emails() {
        let re = pattern("RegisterRequest", "email");
        for c in sample() {
            for s in [
                format!("{c}"),
                format!("{c}a@b.co"),
                format!("a{c}b@c.de"),
                format!("a{c}@b.co"),
                format!("a@{c}b.co"),
                format!("a@b{c}.co"),
                format!("a@b.c{c}"),
                format!("\"a{c}b\"@c.de"),
                format!("\"a\\{c}\"@c.de"),
                format!("a@[1.2{c}]"),
                format!("{c}a@b.co{c}"),
            ] {
                email_agrees(&re, &s);
            }
        }
        let local = |n: usize| "a".repeat(n);
        let label = |n: usize| "b".repeat(n);
        let mut cases = vec![
            format!("{}@example.com", local(64)),
            format!("{}@example.com", local(65)),
            format!("x@{}.com", label(63)),
            format!("x@{}.com", label(64)),
            format!("\"{}\"@example.com", local(62)),
            format!("\"{}\"@example.com", local(63)),
            format!("a.{}@example.com", local(62)),
            format!("a.{}@example.com", local(63)),
        ];
        // Whole addresses of 253 to 256 characters.
        for n in 253..=256 {
            let domain_len = n - 2;
            let labels = format!("{}.{}.{}.{}", label(63), label(63), label(63), label(domain_len - 3 * 64));
            cases.push(format!("a@{labels}"));
        }
        let more: Vec<String> = [
            "ada@example.com",
            "Ada.Lovelace+tag@Example.COM",
            "a@b.c",
            "a@b",
            "a@.b.c",
            "a@b..c",
            "a@b.c.",
            "a@-b.c",
            "a@b-.c",
            "a@b.c-d",
            "a@b!c.d",
            ".a@b.c",
            "a.@b.c",
            "a..b@c.d",
            "\"\"@b.c",
            "\"a@b\"@c.de",
            "\"a\\\"b\"@c.de",
            "\"a\\\"@c.de",
            "\"a b\"@c.de",
            "a@[]",
            "a@[.]",
            "a@[1.2.3.4]",
            "a@[a@b.c]",
            "a@[1.2",
            "a@b@c.de",
            "<a@b.co>",
            "Ada <a@b.co>",
            "@b.co",
            "a@",
            "",
            "  ",
        ]
        .map(String::from)
        .to_vec();
        cases.extend(more);
        for case in cases {
            for s in padded(&case) {
                email_agrees(&re, &s);
            }
        }
    }

    /// The pattern is the digit rule; the letter rules are the server's alone.
    #[test]
    fn password_digits() {
        for (schema, field) in [("RegisterRequest", "password"), ("ChangePasswordRequest", "new_password")] {
            let re = pattern(schema, field);
            for c in sample() {
                let s = format!("Correct{c}Horse");
                let server = match NewPassword::parse("password", &s, &[]) {
                    Ok(_) => true,
                    Err(e) => e.message != "must contain a digit",
                };
                assert_eq!(matches(&re, &s), server, "{schema}.{field} disagrees with the server on {s:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn random_near_emails(s in "[ \t\u{85}]{0,2}([a-cA-C0-9.@\"\\\\\\[\\]!#<> -]{0,12}|[a-b]{1,3}(\\.[a-b]{1,3}){0,2}@[a-b0-9-]{1,3}(\\.[a-b0-9-]{1,3}){0,3})[ \t\u{85}]{0,2}") {
            static RE: LazyLock<Regex> = LazyLock::new(|| pattern("RegisterRequest", "email"));
            email_agrees(&RE, &s);
        }

        #[test]
        fn random_titles(s in "[ \t\n\u{0}\u{7}\u{85}\u{a0}aé🦀-]{0,210}") {
            static TITLE: LazyLock<Regex> = LazyLock::new(|| pattern("NewTask", "title"));
            static NAME: LazyLock<Regex> = LazyLock::new(|| pattern("RegisterRequest", "full_name"));
            prop_assert_eq!(matches(&TITLE, &s), parse_task_title(&s).is_ok());
            prop_assert_eq!(matches(&NAME, &s), parse_full_name(Some(&s)).is_ok());
        }

        #[test]
        fn random_passwords(s in "[aB3é\u{c9} !]{8,12}") {
            static RE: LazyLock<Regex> = LazyLock::new(|| pattern("RegisterRequest", "password"));
            let refusal = NewPassword::parse("password", &s, &[]).err().map(|e| e.message);
            if matches(&RE, &s) {
                prop_assert_ne!(refusal.as_deref(), Some("must contain a digit"), "{:?}", s);
            } else {
                prop_assert!(refusal.is_some(), "{:?} has no digit but was accepted", s);
            }
        }
    }
}
