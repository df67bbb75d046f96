//! Strict query-string parameters: unknown or repeated names, missing values and malformed
//! numbers are rejected with a message that says what is accepted.

use actix_web::HttpRequest;
use serde_json::json;

use crate::api_error::ApiError;

/// The document's pattern of a text that is not blank: at least one character that is not
/// white space, white space being what Rust's `char::is_whitespace` (and so `str::trim`)
/// takes for it, Unicode's `White_Space`.
pub const NOT_BLANK: &str =
    "[^\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

/// The parsed query string of one request, checked against the names a route accepts.
#[derive(Debug)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses the query of `request`; every name must be in `accepted` and appear once.
    pub fn parse(request: &HttpRequest, accepted: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> =
            actix_web::web::Query::<Vec<(String, String)>>::from_query(request.query_string())
                .map_err(|err| {
                    ApiError::bad_request(format!("malformed query string: {err}"))
                        .with("accepted_parameters", json!(accepted))
                })?
                .into_inner();
        for (index, (name, _)) in pairs.iter().enumerate() {
            if !accepted.contains(&name.as_str()) {
                let message = if accepted.is_empty() {
                    format!("unknown parameter {name:?}; this route takes no parameters")
                } else {
                    format!(
                        "unknown parameter {name:?}; accepted: {}",
                        accepted.join(", ")
                    )
                };
                return Err(
                    ApiError::bad_request(message).with("accepted_parameters", json!(accepted))
                );
            }
            if pairs[..index].iter().any(|(earlier, _)| earlier == name) {
                return Err(ApiError::bad_request(format!(
                    "parameter {name:?} is given more than once; accepted: once"
                ))
                .with("parameter", json!(name)));
            }
        }
        Ok(Self { pairs })
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `name`, or 400 saying it is required and what it accepts.
    pub fn required(&self, name: &str, accepts: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(value) if !value.trim().is_empty() => Ok(value),
            Some(_) => Err(ApiError::bad_request(format!(
                "parameter {name} is empty; accepted: {accepts}"
            ))
            .with("parameter", json!(name))),
            None => Err(ApiError::bad_request(format!(
                "missing parameter {name}; accepted: {accepts}"
            ))
            .with("parameter", json!(name))),
        }
    }

    /// `name` as a finite number within `[min, max]`, if given.
    pub fn number(
        &self,
        name: &str,
        min: f64,
        max: f64,
        accepts: &str,
    ) -> Result<Option<f64>, ApiError> {
        self.get(name)
            .map(|text| parse_number(name, text, min, max, accepts))
            .transpose()
    }

    /// `name` as a finite number within `[min, max]`, required.
    pub fn required_number(
        &self,
        name: &str,
        min: f64,
        max: f64,
        accepts: &str,
    ) -> Result<f64, ApiError> {
        let text = self.required(name, accepts)?;
        parse_number(name, text, min, max, accepts)
    }
}

fn parse_number(
    name: &str,
    text: &str,
    min: f64,
    max: f64,
    accepts: &str,
) -> Result<f64, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!("invalid {name} {text:?}; accepted: {accepts}"))
            .with("parameter", json!(name))
            .with("min", json!(min))
            .with("max", json!(max))
    };
    let value: f64 = text.trim().parse().map_err(|_| invalid())?;
    if !value.is_finite() || value < min || value > max {
        return Err(invalid());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn params(query: &str, accepted: &[&str]) -> Result<Params, ApiError> {
        let request = TestRequest::with_uri(&format!("/x?{query}")).to_http_request();
        Params::parse(&request, accepted)
    }

    #[test]
    fn unknown_and_repeated_names_are_rejected() {
        let error = params("endpoint=/a&bogus=1", &["endpoint"]).expect_err("unknown");
        assert!(
            error.message().contains("accepted: endpoint"),
            "{}",
            error.message()
        );
        let error = params("endpoint=/a&endpoint=/b", &["endpoint"]).expect_err("twice");
        assert!(error.message().contains("more than once"));
    }

    #[test]
    fn numbers_must_be_finite_and_in_range() {
        let parsed = params("duration=3000", &["duration"]).expect("valid");
        assert_eq!(
            parsed
                .required_number("duration", 0.0, 60_000.0, "ms")
                .expect("in range"),
            3000.0
        );
        for bad in ["NaN", "inf", "-1", "abc", "70000", ""] {
            let parsed = params(&format!("duration={bad}"), &["duration"]).expect("parses");
            let error = parsed
                .required_number("duration", 0.0, 60_000.0, "0 to 60000 ms")
                .expect_err(bad);
            assert!(error.message().contains("accepted"), "{}", error.message());
        }
    }

    #[test]
    fn missing_required_parameter_says_what_is_accepted() {
        let parsed = params("", &["endpoint"]).expect("empty query");
        let error = parsed
            .required("endpoint", "/payment")
            .expect_err("missing");
        assert_eq!(
            error.message(),
            "missing parameter endpoint; accepted: /payment"
        );
    }
}
