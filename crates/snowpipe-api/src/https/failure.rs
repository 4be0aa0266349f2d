//! Naming why a connection failed.
//!
//! hyper's own message for every one of these is "client error (Connect)"; the cause is several sources
//! down the chain. A person fixing a destination needs the cause first: a refused port is a wrong URL or a
//! service that is down, a DNS failure a misspelt account, a TLS failure a proxy or an `http`/`https` mix-up.

use std::{error::Error as StdError, fmt, io};

use super::ProxyError;

/// Why a request did not reach the service, as far as the error chain tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// Nothing listens at the address (wrong URL or port, or the service is down).
    Refused,
    /// The host name does not resolve (a misspelt account or host, or no DNS).
    Dns,
    /// The TLS handshake failed (a plain-HTTP service behind an `https://` URL, an intercepting proxy, a
    /// certificate that does not match).
    Tls,
    /// The connection did not open in time (a firewall dropping packets, an unreachable network).
    Timeout,
    /// The proxy could not be used.
    Proxy,
    /// The connection was reset or closed while the request was on its way.
    Reset,
    /// Something else: the full error says what.
    Other,
}

impl ConnectFailure {
    /// A short phrase for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "connection refused",
            Self::Dns => "host name not found (DNS)",
            Self::Tls => "TLS handshake failed",
            Self::Timeout => "connection timed out",
            Self::Proxy => "proxy failed",
            Self::Reset => "connection reset",
            Self::Other => "connection failed",
        }
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cause of a failed request, read from its error chain.
pub fn describe(error: &(dyn StdError + 'static)) -> ConnectFailure {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<ProxyError>() {
            return ConnectFailure::Proxy;
        }
        if e.is::<rustls::Error>() {
            return ConnectFailure::Tls;
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return ConnectFailure::Refused,
                io::ErrorKind::TimedOut => return ConnectFailure::Timeout,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => return ConnectFailure::Reset,
                _ => {}
            }
            // `io::Error::source` skips the error it wraps and returns that one's source: step into it.
            if let Some(inner) = io.get_ref() {
                current = Some(inner);
                continue;
            }
        }
        // hyper-util's connector names a resolver failure only in its message; its type is private.
        if e.to_string() == "dns error" {
            return ConnectFailure::Dns;
        }
        current = e.source();
    }
    ConnectFailure::Other
}
