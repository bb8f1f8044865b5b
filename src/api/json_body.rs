//! `JsonBody<T>`: the request body extractor for every operation. Documented in
//! the spec like poem-openapi's `Json<T>`, but it tells the client which field
//! is wrong (422) instead of one opaque 400, and never echoes field values
//! (a mistyped password must not come back in an error).

use poem::{Request, RequestBody, error::ReadBodyError};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;

use crate::{
    error::{ApiError, FieldError},
    state::AppState,
};

pub struct JsonBody<T>(pub T);

const CONTENT_TYPE: &str = "application/json; charset=utf-8";

fn is_json(content_type: &str) -> bool {
    content_type
        .parse::<mime::Mime>()
        .is_ok_and(|m| m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")))
}

impl<'a, T: Type + DeserializeOwned> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType { content_type: CONTENT_TYPE, schema: T::schema_ref() }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        if !request.content_type().is_some_and(is_json) {
            return Err(
                ApiError::BadRequest("The request body must be JSON (Content-Type: application/json).".into()).into()
            );
        }
        let limit = request.data::<AppState>().map_or(64 * 1024, |s| s.config.max_body_bytes);
        let bytes = body.take()?.into_bytes_limit(limit).await.map_err(|e| match e {
            ReadBodyError::PayloadTooLarge => ApiError::PayloadTooLarge,
            _ => ApiError::BadRequest("The request body could not be read.".into()),
        })?;
        parse(&bytes).map(JsonBody).map_err(Into::into)
    }
}

/// Syntax errors are the client's malformed body (400); shape errors name the field (422).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde's derived structs also read an array as their fields in order, so
    // `["Buy milk"]` would be a task: every body here is an object, as the spec says.
    if bytes.trim_ascii_start().starts_with(b"[") {
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => ApiError::Validation(vec![FieldError::new("", "must be an object")]),
            Err(_) => ApiError::BadRequest("The request body is not valid JSON.".into()),
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(de);
    let err = match result {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    let path = err.path().to_string();
    let inner = err.into_inner();
    if !inner.is_data() {
        return Err(ApiError::BadRequest("The request body is not valid JSON.".into()));
    }
    Err(ApiError::Validation(vec![describe(&path, &inner.to_string())]))
}

fn describe(path: &str, message: &str) -> FieldError {
    let path = if path == "." { "" } else { path };
    let named = |m: &str| {
        m.split('`').nth(1).map(|name| if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") })
    };
    if let Some(field) = message.strip_prefix("missing field").and_then(|_| named(message)) {
        return FieldError::new(field, "is required");
    }
    if message.starts_with("invalid type") {
        // "invalid type: integer `5`, expected a string": keep only what was expected.
        let expected = message.rsplit_once("expected ").map(|(_, e)| e).unwrap_or("another type");
        let expected = expected.split(" at line").next().unwrap_or(expected);
        return FieldError::new(path, format!("must be {expected}"));
    }
    FieldError::new(path, "has an invalid value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    fn fields(body: &str) -> Vec<FieldError> {
        match parse::<Login>(body.as_bytes()) {
            Err(ApiError::Validation(f)) => f,
            other => panic!("expected 422 for {body}, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        for body in ["", "{", "{\"email\": }", "not json", "{\"email\":\"a\",}"] {
            assert!(matches!(parse::<Login>(body.as_bytes()), Err(ApiError::BadRequest(_))), "{body}");
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        assert_eq!(fields(r#"{"email":"a@b.co"}"#), [FieldError::new("password", "is required")]);
        assert_eq!(fields(r#"{"email":"a@b.co","password":12345678}"#)[0].field, "password");
        assert_eq!(fields("[]")[0].field, "");
    }

    #[test]
    fn arrays_are_not_objects_even_in_field_order() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Update {
            #[serde(default)]
            title: Option<String>,
        }
        for body in ["[]", " [\"Buy milk\"]", "[\"a@b.co\", \"Secret-Passphrase-1\"]"] {
            let fields = match parse::<Update>(body.as_bytes()) {
                Err(ApiError::Validation(f)) => f,
                other => panic!("expected 422 for {body}, got {other:?}"),
            };
            assert_eq!(fields, [FieldError::new("", "must be an object")]);
        }
        assert_eq!(fields(r#"["a@b.co","Secret-Passphrase-1"]"#), [FieldError::new("", "must be an object")]);
        assert!(matches!(parse::<Update>(b"[1,"), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn wrong_types_never_echo_the_value() {
        let f = fields(r#"{"email":"a@b.co","password":987654321}"#);
        assert!(!f[0].message.contains("987654321"), "{f:?}");
        assert_eq!(f[0].message, "must be a string");
    }
}
