//! Wire types: what SPAs send and receive. Doc comments here are the public docs.
//! Request bodies ignore fields they do not know (as the spec allows), so a
//! field like `role` in a registration simply has no effect.
//!
//! The spec states every input rule of [`crate::domain`] that JSON Schema can:
//! `JsonBody` parses with serde, so the `validator(...)` attributes here only
//! document (a broken rule stays a 422 naming the field). The text patterns
//! spell out, in the ECMA-262 subset that Rust, Python and JavaScript read
//! alike, what the parsers do:
//! - *space* is what `str::trim` removes (Unicode `White_Space`):
//!   `[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]`;
//! - *control* is `char::is_control` (`Cc`): `\u0000-\u001f` and `\u007f-\u009f`;
//! - so a trimmed value starts and ends with neither:
//!   `[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]`.
//!
//! The tests below hold each pattern against its parser, character by character.
//!
//! The input types whose rules several requests share live here.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde::Deserialize;
use serde_json::Value;

/// The email of a registration. A type of its own because its pattern needs
/// lookaheads (the lengths of the whole address and of its local part), which
/// `#[oai(validator(pattern))]` refuses: it compiles patterns with the `regex`
/// crate. Deserializes like a plain string.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct EmailInput(pub String);

impl EmailInput {
    /// What [`crate::domain::Email::parse`] accepts, for ASCII addresses: space
    /// around it, at most 254 characters, at most 64 before the last `@`, a
    /// dot-atom or quoted local part, and a domain of at least two labels
    /// (letters or digits at both ends, at most 63 characters) or a literal in
    /// brackets with a dot. Upper case is fine: the server lowercases.
    pub const PATTERN: &str = r#"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?![!-~]{255})(?![!-~]{65,}@[!-?A-~]*[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$)(?:[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*|"(?:[!#-\[\]-~]|\\[!-~])+")@(?:[a-zA-Z0-9](?:[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{0,61}[a-zA-Z0-9])?)+|\[[!-?A-Z^-~]*\.[!-?A-Z^-~]*\])[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#;
}

impl std::ops::Deref for EmailInput {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Type for EmailInput {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string(email)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            min_length: Some(1),
            pattern: Some(Self::PATTERN.to_owned()),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromJSON for EmailInput {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        String::parse_from_json(value).map(Self).map_err(ParseError::propagate)
    }
}

impl ToJSON for EmailInput {
    fn to_json(&self) -> Option<Value> {
        self.0.to_json()
    }
}
