//! The in-memory session cache across instances: a revocation on one instance
//! must stop the session on every other one, through Redis at once, or within
//! `SESSION_CACHE_TTL` when no message can reach it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::{helpers::*, ratelimit_redis::OwnRedis};

/// Two instances on one database; `tweak` sets both up.
async fn two_instances(tweak: impl Fn(&mut latchkey::config::Config) + Clone) -> (TestApp, TestApp) {
    let first = spawn_app_with(tweak.clone()).await;
    let second = spawn_instance_sharing(&first, tweak).await;
    (first, second)
}

/// Signs up on `a`, then uses the access token on `b` until `b` serves it from its cache.
async fn signed_in_and_cached_on(a: &TestApp, b: &TestApp) -> String {
    let (_, tokens) = a.signed_up().await;
    let access = tokens.access.expect("registration sets an access token");
    let (hits_before, _) = b.state.sessions.cache().counters();
    for _ in 0..2 {
        assert_eq!(b.me_with_bearer(&access).await.status(), StatusCode::OK);
    }
    let (hits_after, _) = b.state.sessions.cache().counters();
    assert!(hits_after > hits_before, "the second request on the other instance came from its cache");
    access
}

/// Polls `/me` on `app` until it refuses `access`; how long that took.
async fn time_until_refused(app: &TestApp, access: &str, give_up: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let status = app.me_with_bearer(access).await.status();
        if status == StatusCode::UNAUTHORIZED {
            return start.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(start.elapsed() < give_up, "still accepted after {give_up:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Until both instances listen for session changes (they subscribe in the background).
async fn wait_for_subscribers(redis_url: &str, count: usize) {
    let client = redis::Client::open(redis_url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for _ in 0..100 {
        let (_, n): (String, usize) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("latchkey:session-changed")
            .query_async::<(String, usize)>(&mut conn)
            .await
            .unwrap();
        if n >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the instances never subscribed");
}

#[tokio::test]
#[ignore = "needs redis-server on the PATH"]
async fn a_revocation_on_one_instance_reaches_the_other_at_once_through_redis() {
    let redis = OwnRedis::start(OwnRedis::port()).await;
    let url = redis.url();
    // A TTL far longer than the bound: only the message can explain a fast refusal.
    let (a, b) = two_instances(move |c| {
        c.rate_limit_redis_url = Some(url.clone());
        c.session_cache_ttl = Duration::from_secs(300);
    })
    .await;
    wait_for_subscribers(&redis.url(), 2).await;

    // Logout (one session)...
    let access = signed_in_and_cached_on(&a, &b).await;
    let resp = reqwest::Client::new().post(a.url("/api/v1/auth/logout")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let took = time_until_refused(&b, &access, Duration::from_secs(5)).await;
    assert!(took <= Duration::from_millis(100), "logout reached the other instance after {took:?}");

    // ...and a deactivation by an admin on the other instance (every session of a user).
    let access = signed_in_and_cached_on(&a, &b).await;
    let me: serde_json::Value = b.me_with_bearer(&access).await.json().await.unwrap();
    let (admin, _) = b.browser_with_role(latchkey::domain::Role::Admin).await;
    let resp = admin
        .send_json(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
            &serde_json::json!({"is_active": false}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let took = time_until_refused(&a, &access, Duration::from_secs(5)).await;
    assert!(took <= Duration::from_millis(100), "deactivation reached the other instance after {took:?}");
}

#[tokio::test]
#[ignore = "needs redis-server on the PATH"]
async fn with_redis_stopped_a_revocation_reaches_the_other_within_the_ttl() {
    let mut redis = OwnRedis::start(OwnRedis::port()).await;
    let url = redis.url();
    let ttl = Duration::from_secs(1);
    let (a, b) = two_instances(move |c| {
        c.rate_limit_redis_url = Some(url.clone());
        c.session_cache_ttl = ttl;
    })
    .await;
    wait_for_subscribers(&redis.url(), 2).await;
    redis.stop();
    let access = signed_in_and_cached_on(&a, &b).await;
    let resp = reqwest::Client::new().post(a.url("/api/v1/auth/logout")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let took = time_until_refused(&b, &access, Duration::from_secs(10)).await;
    assert!(took <= ttl + Duration::from_millis(250), "took {took:?} with SESSION_CACHE_TTL={ttl:?}");
}

#[tokio::test]
async fn without_redis_a_revocation_reaches_the_other_instance_within_the_ttl() {
    let ttl = Duration::from_secs(1);
    let (a, b) = two_instances(move |c| c.session_cache_ttl = ttl).await;
    let access = signed_in_and_cached_on(&a, &b).await;
    let resp = reqwest::Client::new().post(a.url("/api/v1/auth/logout")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // The instance that revoked refuses at once; the other within the TTL.
    assert_eq!(a.me_with_bearer(&access).await.status(), StatusCode::UNAUTHORIZED);
    let took = time_until_refused(&b, &access, Duration::from_secs(10)).await;
    assert!(took <= ttl + Duration::from_millis(250), "took {took:?} with SESSION_CACHE_TTL={ttl:?}");
}

#[tokio::test]
async fn a_zero_ttl_reads_the_database_on_every_request() {
    let (a, b) = two_instances(|c| c.session_cache_ttl = Duration::ZERO).await;
    let (_, tokens) = a.signed_up().await;
    let access = tokens.access.unwrap();
    assert_eq!(b.me_with_bearer(&access).await.status(), StatusCode::OK);
    let resp = reqwest::Client::new().post(a.url("/api/v1/auth/logout")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(b.me_with_bearer(&access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(b.state.sessions.cache().counters().0, 0, "nothing was served from memory");
}
