//! Reading requests: bounded body reading (413 past the limit, compressed or not), content decoding and
//! query strings. Nothing here panics on any input.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::{
    answer::Reject,
    buffers::{self, BufferPool},
    gzip,
};

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

/// Undoes `Content-Encoding` (gzip or none); the decoded body is bounded by `limit` too. Decoded
/// bodies live in buffers borrowed from `pool`.
pub(crate) fn decode_body(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
    pool: &Arc<BufferPool>,
) -> Result<Bytes, Reject> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut buf = pool.take();
            match gzip::gunzip(&body, limit, &mut buf) {
                Ok(n) if n > limit => Err(too_large(limit)),
                Ok(n) => Ok(buffers::lend(buf, n, pool)),
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

/// Undoes `Content-Encoding` as the REST API takes it: gzip, zstd (one frame or several, decoded
/// back to back) or none; the decoded body is bounded by `limit` (413 past it).
pub(crate) fn decode_rest_body(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
    pool: &Arc<BufferPool>,
) -> Result<Bytes, Reject> {
    let zstd = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("zstd"));
    if !zstd {
        return decode_body(headers, body, limit, pool);
    }
    let mut buf = pool.take();
    match unzstd(&body, limit, &mut buf) {
        Ok(n) if n > limit => Err(too_large(limit)),
        Ok(n) => Ok(buffers::lend(buf, n, pool)),
        Err(e) => Err(Reject::new(
            StatusCode::BAD_REQUEST,
            format!("invalid zstd body: {e}"),
        )),
    }
}

/// Decodes zstd frames into `buf` (bytes all initialised, reused), growing it as needed; answers the
/// decoded length, stopping past `limit` as gzip decoding does. The streaming decoder reads every
/// frame of a multi-frame body in turn.
fn unzstd(body: &[u8], limit: usize, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::io::Read as _;
    let cap = limit.saturating_add(1);
    let mut decoder = zstd::stream::read::Decoder::with_buffer(body)?;
    let mut filled = 0;
    loop {
        if filled >= buf.len().min(cap) {
            if filled >= cap {
                return Ok(filled);
            }
            let grown = buf.len().saturating_mul(2).max(64 * 1024).min(cap);
            buf.resize(grown, 0);
        }
        let end = buf.len().min(cap);
        match decoder.read(&mut buf[filled..end]) {
            Ok(0) => return Ok(filled),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
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

    fn pool() -> Arc<BufferPool> {
        Arc::default()
    }

    fn gzip(data: &[u8]) -> Bytes {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        Bytes::from(enc.finish().unwrap())
    }

    #[test]
    fn decodes_gzip_and_refuses_bombs_and_garbage() {
        assert_eq!(
            decode_body(&headers(Some("gzip")), gzip(b"hello"), 10, &pool()).unwrap(),
            Bytes::from_static(b"hello")
        );
        assert_eq!(
            decode_body(&headers(None), Bytes::from_static(b"raw"), 10, &pool()).unwrap(),
            Bytes::from_static(b"raw")
        );
        let bomb = gzip(&[b'a'; 1000]);
        assert_eq!(
            decode_body(&headers(Some("gzip")), bomb, 100, &pool())
                .unwrap_err()
                .status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let bad = decode_body(
            &headers(Some("gzip")),
            Bytes::from_static(b"not gzip"),
            100,
            &pool(),
        )
        .unwrap_err();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let br = decode_body(&headers(Some("br")), Bytes::new(), 100, &pool()).unwrap_err();
        assert_eq!(br.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn reused_buffers_decode_exactly_up_to_the_limit() {
        let pool = pool();
        let gz = headers(Some("gzip"));
        let big: Vec<u8> = (0..100_000u32).flat_map(u32::to_le_bytes).collect();
        let decoded = decode_body(&gz, gzip(&big), 1 << 20, &pool).unwrap();
        assert_eq!(decoded, big);
        drop(decoded);
        // The stale, larger buffer comes back and must not leak into smaller bodies.
        for (data, limit, ok) in [
            (&b"short"[..], 100, true),
            (b"", 100, true),
            (&big[..1000], 1000, true),
            (&big[..1001], 1000, false),
            (&big[..20_000], 19_999, false),
            (&big[..20_000], 20_000, true),
        ] {
            let got = decode_body(&gz, gzip(data), limit, &pool);
            match got {
                Ok(body) => {
                    assert!(ok, "{} bytes under limit {limit}", data.len());
                    assert_eq!(body, data);
                }
                Err(e) => {
                    assert!(!ok, "{} bytes under limit {limit}", data.len());
                    assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
                }
            }
        }
        // A lying trailer (too small a size) only costs growing the buffer.
        let mut lying = gzip(&big).to_vec();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&1u32.to_le_bytes());
        let fresh = decode_body(&gz, Bytes::from(lying), 1 << 20, &Arc::default());
        assert_eq!(fresh.unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn zstd_bodies_of_one_or_several_frames() {
        let zs = headers(Some("zstd"));
        let data: Vec<u8> = (0..200_000u32).flat_map(u32::to_le_bytes).collect();
        let one = zstd::encode_all(&data[..], 1).unwrap();
        let mut two = zstd::encode_all(&data[..1000], 1).unwrap();
        two.extend(zstd::encode_all(&data[1000..], 3).unwrap());
        for body in [one, two] {
            let got = decode_rest_body(&zs, Bytes::from(body.clone()), 1 << 20, &pool()).unwrap();
            assert_eq!(got, data);
            let over = decode_rest_body(&zs, Bytes::from(body), data.len() - 1, &pool());
            assert_eq!(over.unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        }
        let bad = decode_rest_body(&zs, Bytes::from_static(b"nope"), 100, &pool());
        assert_eq!(bad.unwrap_err().status, StatusCode::BAD_REQUEST);
        // gzip and plain bodies read as before.
        assert_eq!(
            decode_rest_body(&headers(Some("gzip")), gzip(b"x"), 10, &pool()).unwrap(),
            Bytes::from_static(b"x")
        );
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
