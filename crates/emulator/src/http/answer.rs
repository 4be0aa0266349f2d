//! What the routes answer: JSON answers, refusals that become error answers, and a handled call's
//! outcome with what the call log keeps of it.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

/// Every answer the emulator gives.
pub(crate) type Resp = Response<Full<Bytes>>;

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A plain-text answer (the REST API's bare hostname and token).
pub(crate) fn text_response(status: StatusCode, text: &str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(text.to_owned())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// An answer with no body (204, 202).
pub(crate) fn empty_response(status: StatusCode) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

/// A JSON error in the service's shape: `{"success": false, "error": "..."}`.
pub(crate) fn error_response(status: StatusCode, message: &str) -> Resp {
    json_response(status, &json!({"success": false, "error": message}))
}

/// A refused request, small enough to pass around in `Result`s; becomes an error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reject {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// The `Allow` header of a 405.
    pub(crate) allow: Option<&'static str>,
}

impl Reject {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            allow: None,
        }
    }

    pub(crate) fn response(&self) -> Resp {
        let mut resp = error_response(self.status, &self.message);
        if let Some(allow) = self.allow {
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        }
        resp
    }
}

/// What a handled call answers, with what the call log keeps of it.
pub(crate) struct Outcome {
    pub(crate) resp: Resp,
    pub(crate) channel_id: Option<String>,
    pub(crate) offset: Option<String>,
    pub(crate) row_count: Option<usize>,
    pub(crate) statement: Option<String>,
    /// REST: the error code answered, for the channel's request log.
    pub(crate) code: Option<String>,
    /// REST: the continuation token answered, for the channel's request log.
    pub(crate) token: Option<String>,
    /// The call took effect but its answer is to be lost (the connection closed instead): a
    /// scripted fault the handler decided.
    pub(crate) lose_answer: bool,
}

impl Outcome {
    pub(crate) fn new(resp: Resp) -> Self {
        Self {
            resp,
            channel_id: None,
            offset: None,
            row_count: None,
            statement: None,
            code: None,
            token: None,
            lose_answer: false,
        }
    }

    pub(crate) fn channel(mut self, id: &str) -> Self {
        self.channel_id = Some(id.to_owned());
        self
    }
}
