//! `TokenCache` through a token's life with an injected time: reuse, renewal, single flight, invalidation.

use std::{
    convert::Infallible,
    future::Future,
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, Waker},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use snowpipe_auth::{RENEW_BEFORE, Secret, Token, TokenCache};
use tokio::sync::oneshot;

const RENEW: Duration = Duration::from_secs(300);

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// A source of tokens that counts its calls; the `n`th token is `token-n`, valid for an hour from `now`.
#[derive(Default)]
struct Issuer {
    calls: AtomicUsize,
}

impl Issuer {
    async fn issue(&self, now: SystemTime) -> Result<Token, Infallible> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Token::new(
            format!("token-{n}"),
            now + Duration::from_secs(3600),
        ))
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The token the cache gives at `now`, refreshing from `issuer` when it must.
async fn get(cache: &TokenCache, issuer: &Issuer, now: SystemTime) -> Arc<Token> {
    cache
        .get_or_refresh(now, || issuer.issue(now))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_is_reused_until_renew_before_its_expiry_then_refreshed() {
    let cache = TokenCache::new(RENEW);
    let issuer = Issuer::default();
    assert_eq!(get(&cache, &issuer, at(1_000)).await.value(), "token-1");
    // Expires at 4_600, so it is due at 4_300.
    for now in [1_000, 1_001, 3_000, 4_299] {
        assert_eq!(get(&cache, &issuer, at(now)).await.value(), "token-1");
    }
    assert_eq!(issuer.calls(), 1);
    assert_eq!(get(&cache, &issuer, at(4_300)).await.value(), "token-2");
    assert_eq!(get(&cache, &issuer, at(4_301)).await.value(), "token-2");
    // Long after its expiry (a process idle for hours): refreshed, not reused.
    assert_eq!(get(&cache, &issuer, at(50_000)).await.value(), "token-3");
    assert_eq!(issuer.calls(), 3);
}

#[tokio::test]
async fn the_default_renews_five_minutes_ahead() {
    assert_eq!(TokenCache::default().renew_before(), RENEW_BEFORE);
    assert_eq!(RENEW_BEFORE, RENEW);
    assert_eq!(
        TokenCache::new(Duration::from_secs(7)).renew_before(),
        Duration::from_secs(7)
    );
}

#[tokio::test]
async fn a_short_lived_token_is_reused_for_half_its_life() {
    let cache = TokenCache::new(RENEW);
    let calls = AtomicUsize::new(0);
    let four_minutes = |now: SystemTime| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, Infallible>(Token::new("short", now + Duration::from_secs(240))) }
    };
    cache
        .get_or_refresh(at(0), || four_minutes(at(0)))
        .await
        .unwrap();
    cache
        .get_or_refresh(at(119), || four_minutes(at(119)))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    cache
        .get_or_refresh(at(120), || four_minutes(at(120)))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let cache = TokenCache::new(RENEW);
    let calls = AtomicUsize::new(0);
    let (release, released) = oneshot::channel::<()>();
    let now = at(1_000);
    let counted = &calls;
    let refresh_first = move || async move {
        counted.fetch_add(1, Ordering::SeqCst);
        released.await.unwrap();
        Ok::<_, Infallible>(Token::new("shared", at(4_600)))
    };
    let refresh_second = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, Infallible>(Token::new("second", at(4_600)))
    };
    let mut first = pin!(cache.get_or_refresh(now, refresh_first));
    let mut second = pin!(cache.get_or_refresh(now, refresh_second));

    // Polled by hand so the interleaving is certain: the first caller is inside its refresh, holding the
    // cache, when the second arrives and finds nothing fresh.
    let mut cx = Context::from_waker(Waker::noop());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    assert!(second.as_mut().poll(&mut cx).is_pending());
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    release.send(()).unwrap();
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(second.value(), "shared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_at_once_refresh_once() {
    let cache = Arc::new(TokenCache::new(RENEW));
    let issuer = Arc::new(Issuer::default());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (cache, issuer) = (Arc::clone(&cache), Arc::clone(&issuer));
            tokio::spawn(async move {
                cache
                    .get_or_refresh(at(1_000), || async {
                        // Gives the other tasks a chance to pile up behind this refresh.
                        tokio::task::yield_now().await;
                        issuer.issue(at(1_000)).await
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().value(), "token-1");
    }
    assert_eq!(issuer.calls(), 1);
}

#[tokio::test]
async fn a_failed_refresh_caches_nothing_and_the_next_caller_tries_again() {
    let cache = TokenCache::new(RENEW);
    let failed = cache
        .get_or_refresh(at(1_000), || async { Err::<Token, _>("unreachable") })
        .await;
    assert_eq!(failed.unwrap_err(), "unreachable");
    let issuer = Issuer::default();
    assert_eq!(get(&cache, &issuer, at(1_001)).await.value(), "token-1");
    assert_eq!(issuer.calls(), 1);
}

#[tokio::test]
async fn a_refresh_dropped_midway_caches_nothing() {
    let cache = TokenCache::new(RENEW);
    {
        let mut abandoned = pin!(cache.get_or_refresh(at(1_000), || async {
            std::future::pending::<Result<Token, Infallible>>().await
        }));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(abandoned.as_mut().poll(&mut cx), Poll::Pending));
    }
    let issuer = Issuer::default();
    assert_eq!(get(&cache, &issuer, at(1_000)).await.value(), "token-1");
}

#[tokio::test]
async fn invalidating_the_current_token_forces_a_refresh_but_an_older_one_does_not() {
    let cache = TokenCache::new(RENEW);
    let issuer = Issuer::default();
    let first = get(&cache, &issuer, at(1_000)).await;

    // The server refused `first` (401): the next caller gets a new token, well before renewal was due.
    cache.invalidate(&first).await;
    let second = get(&cache, &issuer, at(1_001)).await;
    assert_eq!(second.value(), "token-2");

    // A slower task that was also refused `first` reports it late: `second` is kept.
    cache.invalidate(&first).await;
    assert_eq!(get(&cache, &issuer, at(1_002)).await.value(), "token-2");
    // A token with the same value but another expiry is another token.
    cache.invalidate(&Token::new("token-2", at(9_999))).await;
    assert_eq!(get(&cache, &issuer, at(1_003)).await.value(), "token-2");
    assert_eq!(issuer.calls(), 2);

    // Invalidating an empty cache is harmless.
    let empty = TokenCache::new(RENEW);
    empty.invalidate(&second).await;
    assert_eq!(get(&empty, &issuer, at(1_004)).await.value(), "token-3");
}

#[test]
fn debug_never_shows_a_token_or_secret_value() {
    let token = Token::new("eyJhbGciOiJSUzI1NiJ9.secret-payload.sig", at(4_600));
    let debug = format!("{token:?}");
    assert!(
        !debug.contains("eyJ") && !debug.contains("secret-payload"),
        "{debug}"
    );
    assert!(
        debug.contains("REDACTED") && debug.contains("expires_at"),
        "{debug}"
    );
    assert_eq!(token.value(), "eyJhbGciOiJSUzI1NiJ9.secret-payload.sig");
    assert_eq!(token.expires_at(), at(4_600));

    let secret = Secret::new("-----BEGIN PRIVATE KEY-----abc");
    assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
    assert_eq!(
        format!("{:#?}", Some(&secret)),
        "Some(\n    Secret([REDACTED]),\n)"
    );

    let cache = format!("{:?}", TokenCache::default());
    assert!(cache.contains("renew_before"), "{cache}");
}

#[test]
fn secrets_keep_their_value_through_serde_and_read_null_as_empty() {
    let secret = Secret::new("passphrase");
    let json = serde_json::to_string(&secret).unwrap();
    assert_eq!(json, "\"passphrase\"");
    let back: Secret = serde_json::from_str(&json).unwrap();
    assert_eq!(back, secret);
    let null: Secret = serde_json::from_str("null").unwrap();
    assert!(null.is_empty());
}

#[test]
fn the_cache_and_its_futures_can_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let cache = TokenCache::default();
    let token = Token::new("t", at(1));
    send_sync(&cache);
    send_sync(&token);
    send_sync(&Secret::default());
    send(&cache.get_or_refresh(at(0), || async {
        Ok::<_, Infallible>(Token::new("t", at(1)))
    }));
    send(&cache.invalidate(&token));
}
