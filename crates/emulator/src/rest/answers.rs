//! The REST API's error answers: the documented `{"code", "message"}` body, and the other shapes live
//! accounts are seen to answer (`{"error_code"}`, a bare JSON string, no body, an HTML page), which
//! only scripted faults produce.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::json;

use crate::{
    faults::{BodyShape, Failure},
    http::{Reject, Resp, empty_response, json_response},
};

/// Code of a malformed request (body, query, token text): a client bug, not retried.
pub(crate) const BAD_REQUEST: &str = "ERR_BAD_REQUEST";
/// Code of a 401.
pub(crate) const UNAUTHORIZED: &str = "ERR_UNAUTHORIZED";
/// Code of a 403 (a role the user lacks).
pub(crate) const FORBIDDEN: &str = "ERR_ROLE_NOT_AUTHORIZED";
/// Code of a 406: the request does not accept JSON answers.
pub(crate) const NOT_ACCEPTABLE: &str = "ERR_ACCEPT_HEADER_REQUIRED";
/// Code of a 413.
pub(crate) const TOO_LARGE: &str = "ERR_PAYLOAD_TOO_LARGE";
/// Code of a 429.
pub(crate) const TOO_MANY_REQUESTS: &str = "ERR_TOO_MANY_REQUESTS";
/// Code answered to retryable failures (5xx) live accounts send.
pub(crate) const RETRY: &str = "ERR_GENERAL_EXCEPTION_RETRY_REQUEST";

/// The documented error answer.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Resp {
    json_response(status, &json!({"code": code, "message": message}))
}

/// The code a refusal of the HTTP layer carries.
pub(crate) fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => TOO_LARGE,
        StatusCode::UNAUTHORIZED => UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS => TOO_MANY_REQUESTS,
        StatusCode::NOT_FOUND => "ERR_NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "ERR_METHOD_NOT_ALLOWED",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "ERR_UNSUPPORTED_CONTENT_ENCODING",
        s if s.is_server_error() => RETRY,
        _ => BAD_REQUEST,
    }
}

/// A refusal (bad path, body too large, bad encoding) in the REST API's shape.
pub(crate) fn reject_response(reject: &Reject) -> Resp {
    let mut resp = error(reject.status, code_of(reject.status), &reject.message);
    if let Some(allow) = reject.allow {
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    resp
}

/// The answer of a scripted failure on a REST endpoint.
pub(crate) fn failure_response(failure: &Failure) -> Resp {
    let (status, code, shape) = match failure {
        Failure::Status { status } => {
            let s = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (s, code_of(s).to_owned(), BodyShape::Documented)
        }
        Failure::ChannelCode { code, http_code } => (
            StatusCode::from_u16(*http_code).unwrap_or(StatusCode::BAD_REQUEST),
            code.clone(),
            BodyShape::Documented,
        ),
        Failure::Shaped {
            status,
            code,
            shape,
        } => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code.clone(),
            *shape,
        ),
    };
    shaped(status, &code, shape)
}

/// An error answer of the given shape.
pub(crate) fn shaped(status: StatusCode, code: &str, shape: BodyShape) -> Resp {
    match shape {
        BodyShape::Documented => error(status, code, &format!("injected fault: {code}")),
        BodyShape::ErrorCode => json_response(status, &json!({"error_code": code})),
        BodyShape::BareString => json_response(status, &json!(code)),
        BodyShape::Empty => empty_response(status),
        BodyShape::Html => {
            let page = format!(
                "<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
            );
            let mut resp = Response::new(Full::new(Bytes::from(page)));
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/html"),
            );
            resp
        }
    }
}
