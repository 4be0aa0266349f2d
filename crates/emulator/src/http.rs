//! HTTP plumbing shared by the routes: bounded body reading (413 past the limit, compressed or not),
//! gzip decoding, query strings and JSON answers. Nothing here panics on any input.

use std::io::Read;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
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

fn too_large(limit: usize) -> Reject {
    Reject::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body exceeds the limit of {limit} bytes"),
    )
}

/// Reads a whole body, refusing (413) past `limit` bytes — up front when `Content-Length` says so.
pub(crate) async fn read_body<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, Reject>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(limit)),
        Err(e) => Err(Reject::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read request body: {e}"),
        )),
    }
}

/// Undoes `Content-Encoding` (gzip or none); the decoded body is bounded by `limit` too.
pub(crate) fn decode_body(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, Reject> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(gzip_size_hint(&body, limit));
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            match flate2::read::GzDecoder::new(body.as_ref())
                .take(cap)
                .read_to_end(&mut out)
            {
                Ok(n) if n > limit => Err(too_large(limit)),
                Ok(_) => Ok(Bytes::from(out)),
                Err(e) => Err(Reject::new(
                    StatusCode::BAD_REQUEST,
                    format!("invalid gzip body: {e}"),
                )),
            }
        }
        other => Err(Reject::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding `{other}`; use gzip or none"),
        )),
    }
}

/// How much room a gzip body's content will take, from the size its trailer declares, so decoding
/// does not regrow (and copy) the buffer about twenty times for a few megabytes. Only a hint: a trailer
/// may lie, so it is capped by the limit and by deflate's best ratio (1032:1).
fn gzip_size_hint(body: &[u8], limit: usize) -> usize {
    let declared = body
        .len()
        .checked_sub(4)
        .and_then(|at| body.get(at..))
        .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
        .map_or(0, u32::from_le_bytes);
    usize::try_from(declared)
        .unwrap_or(usize::MAX)
        .min(limit.saturating_add(1))
        .min(body.len().saturating_mul(1032))
}

/// The decoded `key=value` pairs of a query string (`+` is a space, `%XX` a byte; bad UTF-8 is replaced).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The last value of `key` in a query string.
pub(crate) fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query_pairs(query)
        .into_iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn headers(encoding: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(e) = encoding {
            h.insert(header::CONTENT_ENCODING, e.parse().unwrap());
        }
        h
    }

    fn gzip(data: &[u8]) -> Bytes {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        Bytes::from(enc.finish().unwrap())
    }

    #[test]
    fn decodes_gzip_and_refuses_bombs_and_garbage() {
        assert_eq!(
            decode_body(&headers(Some("gzip")), gzip(b"hello"), 10).unwrap(),
            Bytes::from_static(b"hello")
        );
        assert_eq!(
            decode_body(&headers(None), Bytes::from_static(b"raw"), 10).unwrap(),
            Bytes::from_static(b"raw")
        );
        let bomb = gzip(&[b'a'; 1000]);
        assert_eq!(
            decode_body(&headers(Some("gzip")), bomb, 100)
                .unwrap_err()
                .status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let bad =
            decode_body(&headers(Some("gzip")), Bytes::from_static(b"not gzip"), 100).unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let br = decode_body(&headers(Some("br")), Bytes::new(), 100).unwrap_err();
        assert_eq!(br.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn gzip_size_hint_trusts_the_trailer_only_so_far() {
        let data = vec![b'x'; 5000];
        let body = gzip(&data);
        assert_eq!(gzip_size_hint(&body, 1 << 20), 5000);
        assert_eq!(gzip_size_hint(&body, 100), 101);
        // A tiny body claiming 4 GiB gets no more than deflate could expand it to.
        assert_eq!(gzip_size_hint(&[0xff; 4], 1 << 30), 4 * 1032);
        assert_eq!(gzip_size_hint(&[1, 2, 3], 1 << 30), 0);
        // A lying trailer costs only the hint: the content decodes all the same.
        let mut lying = gzip(&data).to_vec();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&7u32.to_le_bytes());
        let err = decode_body(&headers(Some("gzip")), Bytes::from(lying), 1 << 20).unwrap_err();
        assert_eq!(
            err.status,
            StatusCode::BAD_REQUEST,
            "the size check still applies"
        );
        let mut short = gzip(&data).to_vec();
        let n = short.len();
        short[n - 4..].copy_from_slice(&10u32.to_le_bytes());
        assert!(decode_body(&headers(Some("gzip")), Bytes::from(short), 1 << 20).is_err());
    }

    #[test]
    fn query_strings() {
        let pairs = query_pairs(Some("channelIds=a&channelIds=b%20c&x"));
        assert_eq!(pairs[1], ("channelIds".to_owned(), "b c".to_owned()));
        assert_eq!(
            query_value(Some("sync=false&sync=true"), "sync").as_deref(),
            Some("true")
        );
        assert_eq!(query_value(None, "sync"), None);
    }
}
