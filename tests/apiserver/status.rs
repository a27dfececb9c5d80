//! metav1.Status bodies as apimachinery's pkg/api/errors/errors.go builds them and
//! encoding/json writes them: the struct's field order, empty fields left out (omitempty),
//! except `metadata`, a struct, which is always there.

use crate::util::go_quote;
use serde_json::Value;

/// One metav1.StatusCause: `reason` is its Type.
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

#[derive(Default)]
pub struct Details {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub causes: Vec<Cause>,
    pub retry_after: u32,
}

pub struct Status {
    pub code: u16,
    pub success: bool,
    pub message: String,
    pub reason: String,
    /// Boxed: most answers have none, and every error path carries a Status.
    pub details: Option<Box<Details>>,
    /// ListMeta.continue: a 410 for an expired continue token carries a fresh one.
    pub continue_: String,
}

impl Status {
    fn failure(code: u16, reason: &str, message: String, details: Option<Details>) -> Status {
        Status {
            code,
            success: false,
            message,
            reason: reason.to_string(),
            details: details.map(Box::new),
            continue_: String::new(),
        }
    }

    /// `&metav1.Status{Status: metav1.StatusSuccess}` from a Create, its code set by
    /// handlers/create.go.
    pub fn success(code: u16) -> Status {
        Status {
            code,
            success: true,
            message: String::new(),
            reason: String::new(),
            details: None,
            continue_: String::new(),
        }
    }

    /// The JSON, with the newline json.Encoder ends it with.
    pub fn json(&self) -> String {
        let mut s = String::from(r#"{"kind":"Status","apiVersion":"v1","metadata":{"#);
        if !self.continue_.is_empty() {
            s += &format!(r#""continue":{}"#, Value::from(self.continue_.as_str()));
        }
        s += "},";
        s += if self.success {
            r#""status":"Success","#
        } else {
            r#""status":"Failure","#
        };
        let mut field = |name: &str, value: &str| {
            if !value.is_empty() {
                s += &format!("{}:{},", Value::from(name), Value::from(value));
            }
        };
        field("message", &self.message);
        field("reason", &self.reason);
        if let Some(d) = &self.details {
            let mut parts = Vec::new();
            for (k, v) in [("name", &d.name), ("group", &d.group), ("kind", &d.kind)] {
                if !v.is_empty() {
                    parts.push(format!("{}:{}", Value::from(k), Value::from(v.as_str())));
                }
            }
            if !d.causes.is_empty() {
                let causes: Vec<String> = d
                    .causes
                    .iter()
                    .map(|c| {
                        let mut f = Vec::new();
                        for (k, v) in [
                            ("reason", &c.reason),
                            ("message", &c.message),
                            ("field", &c.field),
                        ] {
                            if !v.is_empty() {
                                f.push(format!("{}:{}", Value::from(k), Value::from(v.as_str())));
                            }
                        }
                        format!("{{{}}}", f.join(","))
                    })
                    .collect();
                parts.push(format!(r#""causes":[{}]"#, causes.join(",")));
            }
            if d.retry_after > 0 {
                parts.push(format!(r#""retryAfterSeconds":{}"#, d.retry_after));
            }
            s += &format!(r#""details":{{{}}},"#, parts.join(","));
        }
        s += &format!(r#""code":{}}}"#, self.code);
        s + "\n"
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> Status {
        let details = Details {
            name: name.into(),
            group: group.into(),
            kind: resource.into(),
            ..Details::default()
        };
        let message = format!(
            "{} {} not found",
            qualified(resource, group),
            go_quote(name)
        );
        Status::failure(404, "NotFound", message, Some(details))
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> Status {
        let mut s = Status::not_found(group, resource, name);
        s.code = 409;
        s.reason = "AlreadyExists".into();
        s.message = format!(
            "{} {} already exists",
            qualified(resource, group),
            go_quote(name)
        );
        s
    }

    /// RBAC's denial as the authorization filter writes it (responsewriters/errors.go).
    pub fn forbidden(resource: &str, name: &str, why: &str) -> Status {
        let details = Details {
            name: name.into(),
            kind: resource.into(),
            ..Details::default()
        };
        let message = format!("{resource} {} is forbidden: {why}", go_quote(name));
        Status::failure(403, "Forbidden", message, Some(details))
    }

    pub fn unauthorized() -> Status {
        Status::failure(401, "Unauthorized", "Unauthorized".into(), None)
    }

    pub fn bad_request(message: &str) -> Status {
        Status::failure(400, "BadRequest", message.into(), None)
    }

    /// NewResourceExpired: 410, reason Expired.
    pub fn expired(message: &str) -> Status {
        Status::failure(410, "Expired", message.into(), None)
    }

    pub fn too_many_requests(message: &str, causes: Vec<Cause>) -> Status {
        let details = Details {
            causes,
            ..Details::default()
        };
        Status::failure(429, "TooManyRequests", message.into(), Some(details))
    }

    /// storage.NewTooLargeResourceVersionError: a 504 Timeout with its cause.
    pub fn too_large_resource_version(wanted: u64, current: u64) -> Status {
        let details = Details {
            causes: vec![Cause {
                reason: "ResourceVersionTooLarge".into(),
                message: "Too large resource version".into(),
                field: String::new(),
            }],
            retry_after: 1,
            ..Details::default()
        };
        let message = format!("Timeout: Too large resource version: {wanted}, current: {current}");
        Status::failure(504, "Timeout", message, Some(details))
    }

    /// An error that is not a StatusError (ErrorToAPIStatus's default branch): 500, no reason.
    pub fn internal(message: &str) -> Status {
        Status::failure(500, "", message.into(), None)
    }

    /// NewInvalid for `kind.group` named `name`.
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Status {
        let details = Details {
            name: name.into(),
            group: group.into(),
            kind: kind.into(),
            causes: errors
                .iter()
                .map(|e| Cause {
                    reason: e.kind.cause().into(),
                    message: e.body(),
                    field: e.field.clone(),
                })
                .collect(),
            ..Details::default()
        };
        let all: Vec<String> = errors.iter().map(FieldError::error).collect();
        // utilerrors.Aggregate: one error as itself, more in brackets.
        let aggregate = if all.len() == 1 {
            all[0].clone()
        } else {
            format!("[{}]", all.join(", "))
        };
        let message = format!(
            "{} {} is invalid: {aggregate}",
            qualified(kind, group),
            go_quote(name)
        );
        Status::failure(422, "Invalid", message, Some(details))
    }

    /// go-restful's answers for a path or method it has no route for
    /// (NewGenericServerResponse with an empty resource: details present, empty).
    pub fn no_route(code: u16) -> Status {
        let (reason, message) = match code {
            404 => (
                "NotFound",
                "the server could not find the requested resource",
            ),
            _ => (
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            ),
        };
        Status::failure(code, reason, message.into(), Some(Details::default()))
    }

    pub fn unsupported_media_type(accepted: &str) -> Status {
        let message =
            format!("the body of the request was in an unknown format - accepted media types include: {accepted}");
        Status::failure(415, "UnsupportedMediaType", message, None)
    }
}

/// schema.GroupResource.String(): "pods", "events.events.k8s.io".
fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

#[derive(Clone, Copy)]
pub enum FieldKind {
    Required,
    Forbidden,
    Invalid,
    NotSupported,
}

impl FieldKind {
    fn cause(self) -> &'static str {
        match self {
            FieldKind::Required => "FieldValueRequired",
            FieldKind::Forbidden => "FieldValueForbidden",
            FieldKind::Invalid => "FieldValueInvalid",
            FieldKind::NotSupported => "FieldValueNotSupported",
        }
    }
}

/// field.Error from apimachinery's pkg/util/validation/field/errors.go.
pub struct FieldError {
    pub kind: FieldKind,
    pub field: String,
    pub value: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(kind: FieldKind, field: &str, value: &str, detail: &str) -> FieldError {
        FieldError {
            kind,
            field: field.into(),
            value: value.into(),
            detail: detail.into(),
        }
    }

    /// ErrorBody: the error without the field path.
    fn body(&self) -> String {
        let head = match self.kind {
            FieldKind::Required => "Required value".to_string(),
            FieldKind::Forbidden => "Forbidden".to_string(),
            FieldKind::Invalid => format!("Invalid value: {}", go_quote(&self.value)),
            FieldKind::NotSupported => format!("Unsupported value: {}", go_quote(&self.value)),
        };
        if self.detail.is_empty() {
            head
        } else {
            format!("{head}: {}", self.detail)
        }
    }

    pub fn error(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(
            Status::success(201).json(),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Success\",\"code\":201}\n"
        );
        assert_eq!(
            Status::not_found("", "pods", "web-0").json(),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"web-0\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"web-0\",\"kind\":\"pods\"},\"code\":404}\n"
        );
    }
}
