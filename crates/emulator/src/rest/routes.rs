//! The REST API's paths: hostname discovery and the token exchange on the account host, channel calls
//! on the ingest host. Path segments are percent-decoded, then resolved as identifiers (unquoted upper
//! case, `"quoted"` exact), so `events`, `EVENTS` and `%22EVENTS%22` name one table.

use http::{Method, StatusCode};

use crate::{faults::Endpoint, http::Reject, store::ident};

/// A pipe named by a path, every part resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PipePath {
    pub(crate) database: String,
    pub(crate) schema: String,
    pub(crate) pipe: String,
}

/// A channel named by a path, every part resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelPath {
    pub(crate) pipe: PipePath,
    pub(crate) channel: String,
}

/// A REST request matched to its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Hostname,
    Token,
    Open(ChannelPath),
    Append(ChannelPath),
    Drop(ChannelPath),
    BulkStatus(PipePath),
}

impl Route {
    pub(crate) fn endpoint(&self) -> Endpoint {
        match self {
            Self::Hostname => Endpoint::RestHostname,
            Self::Token => Endpoint::RestToken,
            Self::Open(_) => Endpoint::RestOpenChannel,
            Self::Append(_) => Endpoint::RestAppend,
            Self::Drop(_) => Endpoint::RestDropChannel,
            Self::BulkStatus(_) => Endpoint::RestBulkStatus,
        }
    }

    /// The channel a call names, as the call log shows it (`DB.SCHEMA.PIPE.CHANNEL`).
    pub(crate) fn channel_label(&self) -> Option<String> {
        match self {
            Self::Open(c) | Self::Append(c) | Self::Drop(c) => Some(format!(
                "{}.{}.{}.{}",
                ident::display(&c.pipe.database),
                ident::display(&c.pipe.schema),
                ident::display(&c.pipe.pipe),
                ident::display(&c.channel)
            )),
            _ => None,
        }
    }

    pub(crate) fn channel(&self) -> Option<&ChannelPath> {
        match self {
            Self::Open(c) | Self::Append(c) | Self::Drop(c) => Some(c),
            _ => None,
        }
    }
}

/// One path segment as an identifier; `None` when empty or not UTF-8.
fn segment(raw: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?;
    let resolved = ident::resolve(&decoded);
    (!resolved.is_empty()).then_some(resolved)
}

/// Matches a REST path: `None` for paths that are not the REST API's, a refusal (404 or 405) for
/// REST paths that name nothing or use the wrong method.
pub(crate) fn route(method: &Method, path: &str) -> Option<Result<Route, Reject>> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let not_found = || Reject::new(StatusCode::NOT_FOUND, format!("no such path: {path}"));
    let wrong = |allow: &'static str| Reject {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} is not allowed on {path}"),
        allow: Some(allow),
    };
    let only = |m: Method, allow: &'static str, r: Route| {
        if *method == m {
            Ok(r)
        } else {
            Err(wrong(allow))
        }
    };
    let routed = match parts.as_slice() {
        ["oauth", "token"] => only(Method::POST, "POST", Route::Token),
        ["v2", "streaming", rest @ ..] => match rest {
            ["hostname"] => only(Method::GET, "GET", Route::Hostname),
            [
                "databases",
                db,
                "schemas",
                schema,
                "pipes",
                pipe,
                "channels",
                channel,
            ] => match channel_path(db, schema, pipe, channel) {
                None => Err(not_found()),
                Some(c) if *method == Method::PUT => Ok(Route::Open(c)),
                Some(c) if *method == Method::DELETE => Ok(Route::Drop(c)),
                Some(_) => Err(wrong("PUT, DELETE")),
            },
            [
                "data",
                "databases",
                db,
                "schemas",
                schema,
                "pipes",
                pipe,
                "channels",
                channel,
                "rows",
            ] => match channel_path(db, schema, pipe, channel) {
                None => Err(not_found()),
                Some(c) => only(Method::POST, "POST", Route::Append(c)),
            },
            ["databases", db, "schemas", schema, "pipes", pipe] => {
                let pipe = pipe
                    .strip_suffix(":bulk-channel-status")
                    .or_else(|| pipe.strip_suffix("%3Abulk-channel-status"))
                    .or_else(|| pipe.strip_suffix("%3abulk-channel-status"));
                match pipe.and_then(|p| pipe_path(db, schema, p)) {
                    None => Err(not_found()),
                    Some(p) => only(Method::POST, "POST", Route::BulkStatus(p)),
                }
            }
            _ => Err(not_found()),
        },
        _ => return None,
    };
    Some(routed)
}

fn pipe_path(db: &str, schema: &str, pipe: &str) -> Option<PipePath> {
    Some(PipePath {
        database: segment(db)?,
        schema: segment(schema)?,
        pipe: segment(pipe)?,
    })
}

fn channel_path(db: &str, schema: &str, pipe: &str, channel: &str) -> Option<ChannelPath> {
    Some(ChannelPath {
        pipe: pipe_path(db, schema, pipe)?,
        channel: segment(channel)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::needless_pass_by_value)] // Tests read better passing `Method::GET` as is.
    fn r(m: Method, p: &str) -> Option<Result<Route, StatusCode>> {
        route(&m, p).map(|r| r.map_err(|reject| reject.status))
    }

    fn chan(db: &str, s: &str, p: &str, c: &str) -> ChannelPath {
        ChannelPath {
            pipe: PipePath {
                database: db.to_owned(),
                schema: s.to_owned(),
                pipe: p.to_owned(),
            },
            channel: c.to_owned(),
        }
    }

    #[test]
    fn routes_resolve_segments_as_identifiers() {
        let base = "/v2/streaming/databases/demo_db/schemas/public/pipes";
        assert_eq!(
            r(Method::GET, "/v2/streaming/hostname"),
            Some(Ok(Route::Hostname))
        );
        assert_eq!(r(Method::POST, "/oauth/token"), Some(Ok(Route::Token)));
        assert_eq!(
            r(
                Method::PUT,
                &format!("{base}/events-streaming/channels/ch_1")
            ),
            Some(Ok(Route::Open(chan(
                "DEMO_DB",
                "PUBLIC",
                "EVENTS-STREAMING",
                "CH_1"
            ))))
        );
        assert_eq!(
            r(
                Method::DELETE,
                &format!("{base}/%22Odd%20T-STREAMING%22/channels/%22mixed%22")
            ),
            Some(Ok(Route::Drop(chan(
                "DEMO_DB",
                "PUBLIC",
                "Odd T-STREAMING",
                "mixed"
            ))))
        );
        assert_eq!(
            r(
                Method::POST,
                "/v2/streaming/data/databases/d/schemas/s/pipes/p/channels/c/rows"
            ),
            Some(Ok(Route::Append(chan("D", "S", "P", "C"))))
        );
        assert_eq!(
            r(
                Method::POST,
                &format!("{base}/T-STREAMING:bulk-channel-status")
            ),
            Some(Ok(Route::BulkStatus(PipePath {
                database: "DEMO_DB".to_owned(),
                schema: "PUBLIC".to_owned(),
                pipe: "T-STREAMING".to_owned(),
            })))
        );
        assert_eq!(r(Method::GET, "/channels"), None);
        assert_eq!(
            r(Method::GET, "/v2/streaming/nope"),
            Some(Err(StatusCode::NOT_FOUND))
        );
        assert_eq!(
            r(Method::POST, &format!("{base}/T-STREAMING/channels/C")),
            Some(Err(StatusCode::METHOD_NOT_ALLOWED))
        );
        assert_eq!(
            r(Method::GET, "/oauth/token"),
            Some(Err(StatusCode::METHOD_NOT_ALLOWED))
        );
        assert_eq!(
            r(Method::PUT, &format!("{base}/T-STREAMING/channels/%FF")),
            Some(Err(StatusCode::NOT_FOUND))
        );
    }
}
