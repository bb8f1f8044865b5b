//! The mails people receive. Each names the product, what happened, when and
//! from which address, carries its link (built only from `APP_URL`, the token
//! in the fragment so it never reaches a server log or a `Referer`) with its
//! lifetime, and says what to do if it was not them. Plain text and HTML.

use std::{fmt::Write, net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};

use crate::mail::{Mail, Notice};

/// Who, when and where, for the lines every mail carries.
pub struct Context<'a> {
    pub app_name: &'a str,
    pub app_url: &'a str,
    pub at: DateTime<Utc>,
    pub ip: Option<IpAddr>,
}

impl<'a> Context<'a> {
    /// A mail about a request from `ip`, now, with the configured product name and SPA origin.
    pub fn new(config: &'a crate::config::Config, ip: Option<IpAddr>) -> Self {
        Self { app_name: &config.app_name, app_url: &config.app_url, at: crate::clock::now(), ip }
    }
}

struct Link {
    url: String,
    label: &'static str,
    lifetime: Duration,
}

fn link(ctx: &Context, path: &str, token: &str, label: &'static str, lifetime: Duration) -> Link {
    Link { url: format!("{}/{path}#token={token}", ctx.app_url.trim_end_matches('/')), label, lifetime }
}

pub fn verify_email(to: &str, ctx: &Context, token: &str, lifetime: Duration) -> Mail {
    compose(
        to,
        ctx,
        "Confirm your email address",
        "Someone (we hope you) created an account with this email address, or asked us to confirm it.",
        Some(link(ctx, "verify-email", token, "Confirm this address", lifetime)),
        "If you did not create an account, ignore this mail: without the link, nothing is confirmed.",
    )
}

pub fn reset_password(to: &str, ctx: &Context, token: &str, lifetime: Duration, by_admin: bool) -> Mail {
    let what = if by_admin {
        "An administrator started a password reset for your account."
    } else {
        "Someone (we hope you) asked to reset the password of your account."
    };
    compose(
        to,
        ctx,
        "Reset your password",
        what,
        Some(link(ctx, "reset-password", token, "Choose a new password", lifetime)),
        "If you did not ask for this, ignore this mail: your password stays as it is. \
         If it keeps happening, tell us.",
    )
}

/// `others_only`: the change came from a signed-in session, which stays signed in.
pub fn password_changed(to: &str, ctx: &Context, others_only: bool) -> Notice {
    let what = if others_only {
        "The password of your account was just changed, and every other session was signed out."
    } else {
        "The password of your account was just changed, and every session was signed out."
    };
    Notice::new(
        "password_changed",
        compose(
            to,
            ctx,
            "Your password was changed",
            what,
            None,
            "If this was not you, reset your password at once with \"Forgot password?\" on the sign-in \
             page, and tell us.",
        ),
    )
}

pub fn confirm_email_change(to: &str, ctx: &Context, token: &str, lifetime: Duration) -> Mail {
    compose(
        to,
        ctx,
        "Confirm your new email address",
        "Someone (we hope you) asked to move an account to this email address.",
        Some(link(ctx, "confirm-email", token, "Confirm the new address", lifetime)),
        "If you did not ask for this, ignore this mail: nothing changes without the link.",
    )
}

pub fn email_change_requested(to: &str, ctx: &Context) -> Notice {
    Notice::new(
        "email_change_requested",
        compose(
            to,
            ctx,
            "A change of your email address was requested",
            "Someone signed in to your account asked to move it to another email address. \
             Nothing changes until the new address is confirmed.",
            None,
            "If this was not you, change your password at once (that signs everyone else out) and tell us.",
        ),
    )
}

pub fn email_in_use(to: &str, ctx: &Context) -> Notice {
    Notice::new(
        "email_in_use",
        compose(
            to,
            ctx,
            "Someone tried to use your email address",
            "Someone signed in to another account asked to move it to this address, which already \
             has an account. Nothing was changed.",
            None,
            "If this was you, sign in to the account this address belongs to instead. \
             If not, you need not do anything.",
        ),
    )
}

pub fn mfa_enabled(to: &str, ctx: &Context) -> Notice {
    Notice::new(
        "mfa_enabled",
        compose(
            to,
            ctx,
            "Two-step sign-in is on",
            "Signing in to your account now takes a code from your authenticator app after the password.",
            None,
            "If this was not you, someone has your password and your session: reset your password at \
             once and tell us.",
        ),
    )
}

pub fn mfa_disabled(to: &str, ctx: &Context, by_admin: bool) -> Notice {
    let what = if by_admin {
        "An administrator turned off two-step sign-in for your account (for example after you lost \
         your device). Your password alone now signs you in; turn it on again soon."
    } else {
        "Two-step sign-in was turned off for your account: your password alone now signs you in."
    };
    Notice::new(
        "mfa_disabled",
        compose(
            to,
            ctx,
            "Two-step sign-in is off",
            what,
            None,
            "If this was not you, reset your password at once and tell us.",
        ),
    )
}

pub fn recovery_codes_replaced(to: &str, ctx: &Context) -> Notice {
    Notice::new(
        "recovery_codes_replaced",
        compose(
            to,
            ctx,
            "New recovery codes were made",
            "Ten new recovery codes were made for your account; the old ones no longer work.",
            None,
            "If this was not you, someone is signed in to your account: change your password (that signs \
             everyone else out), make new recovery codes, and tell us.",
        ),
    )
}

pub fn recovery_code_used(to: &str, ctx: &Context) -> Notice {
    Notice::new(
        "recovery_code_used",
        compose(
            to,
            ctx,
            "A recovery code was used",
            "One of your recovery codes was just used to sign in or to confirm a change. It will not work again.",
            None,
            "If this was not you, someone has your password and a recovery code: reset your password, \
             make new recovery codes, and tell us.",
        ),
    )
}

fn compose(to: &str, ctx: &Context, subject: &str, what: &str, link: Option<Link>, not_you: &str) -> Mail {
    let when = ctx.at.format("%Y-%m-%d %H:%M UTC").to_string();
    let from = ctx.ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
    let app = ctx.app_name;

    let mut text = format!("{what}\n\nWhen: {when}\nFrom: {from}\n");
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;max-width:36em\">\
         <h1 style=\"font-size:1.2em\">{}</h1><p>{}</p><p>When: {}<br>From: {}</p>",
        escape(subject),
        escape(what),
        escape(&when),
        escape(&from)
    );
    if let Some(link) = &link {
        let minutes = link.lifetime.as_secs().div_ceil(60);
        let lifetime = if minutes >= 120 && minutes % 60 == 0 {
            format!("{} hours", minutes / 60)
        } else {
            format!("{minutes} minutes")
        };
        let _ = write!(text, "\n{}:\n{}\n\nThe link works once, for {lifetime}.\n", link.label, link.url);
        let _ = write!(
            html,
            "<p><a href=\"{url}\">{label}</a></p><p>Or paste this into your browser:<br>{url}</p>\
             <p>The link works once, for {lifetime}.</p>",
            url = escape(&link.url),
            label = escape(link.label),
        );
    }
    let _ = write!(text, "\n{not_you}\n\n-- {app}\n");
    let _ = write!(html, "<p>{}</p><p>&mdash; {}</p></body></html>", escape(not_you), escape(app));
    Mail { to: to.to_owned(), subject: format!("{app}: {subject}"), text, html }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            app_name: "Acme <Auth>",
            app_url: "https://app.example.com/",
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            ip: Some("203.0.113.9".parse().unwrap()),
        }
    }

    #[test]
    fn a_reset_mail_has_everything_a_person_needs_to_trust_it() {
        let mail = reset_password("ada@example.com", &ctx(), "tok123", Duration::from_secs(1800), false);
        assert_eq!(mail.subject, "Acme <Auth>: Reset your password");
        for part in [
            "https://app.example.com/reset-password#token=tok123",
            "30 minutes",
            "203.0.113.9",
            "2027-01-15",
            "ignore this mail",
        ] {
            assert!(mail.text.contains(part), "{part} missing from {}", mail.text);
            assert!(mail.html.contains(part), "{part} missing from {}", mail.html);
        }
        assert!(mail.html.contains("Acme &lt;Auth&gt;") && !mail.html.contains("<Auth>"), "{}", mail.html);
    }

    #[test]
    fn lifetimes_read_in_hours_when_whole() {
        let mail = verify_email("a@example.com", &ctx(), "t", Duration::from_secs(24 * 3600));
        assert!(mail.text.contains("for 24 hours"), "{}", mail.text);
    }
}
