//! The foundation end to end through the route table on the embedded store:
//! agent sign-in, `POST /token`, routing errors, and the webhook gate.

use http::Method;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use switchboard::auth::Authenticator;
use switchboard::webhook::{self, WebhookError};
use switchboard_testkit::harness::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn token_request(jwt: &str) -> switchboard::api::Request {
    with_bearer(request(Method::POST, "/token"), jwt)
}

#[tokio::test]
async fn token_mints_a_voice_access_token_for_the_agent() {
    let t = TestApp::new().await;
    let workspace = t.seed_workspace("acme", &account("acme"), "auth-token-acme").await;
    let signed_in_for_a_day = jwt_hs256(
        &serde_json::json!({"sub": "auth0|alice", "workspace_id": "acme", "role": "agent", "exp": now() + 86_400}),
        HS256_SECRET,
    );
    let reply = t.call(token_request(&signed_in_for_a_day)).await;
    assert_eq!(reply.status(), 200, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["identity"], "agent_auth0_7calice");
    assert_eq!(body["expiresIn"], 3600);
    assert_eq!(body["eventsUrl"], "wss://voice.example.test/events");

    // The token verifies with the workspace's API key secret and carries the grant.
    let twilio = workspace.twilio.unwrap();
    let api_key = twilio.api_key.unwrap();
    let secret = t.app.secrets.open(&workspace.id, &api_key.secret).await.unwrap();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    let token = body["token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.cty.as_deref(), Some("twilio-fpa;v=1"));
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &DecodingKey::from_secret(secret.expose_secret().as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["iss"], api_key.sid.as_str());
    assert_eq!(claims["sub"], twilio.account_sid.as_str());
    assert_eq!(claims["grants"]["identity"], "agent_auth0_7calice");
    assert_eq!(
        claims["grants"]["voice"]["outgoing"]["application_sid"],
        twilio.twiml_app_sid.unwrap().as_str()
    );
    assert_eq!(claims["grants"]["voice"]["incoming"]["allow"], true);
    let lifetime = claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap();
    assert_eq!(lifetime, 3600);
    // No secret leaks into the response.
    assert!(!reply.text().contains(secret.expose_secret()));
}

/// A Voice token never outlives the sign-in token that asked for it.
#[tokio::test]
async fn a_voice_token_ends_with_the_sign_in_that_obtained_it() {
    let t = TestApp::new().await;
    t.seed_workspace("acme", &account("acme"), "tok").await;
    for seconds_left in [120, 60] {
        let signed_in_until = now() + seconds_left;
        let sign_in = jwt_hs256(
            &serde_json::json!({"sub": "alice", "workspace_id": "acme", "exp": signed_in_until}),
            HS256_SECRET,
        );
        let reply = t.call(token_request(&sign_in)).await;
        assert_eq!(reply.status(), 200);
        let expires_in = reply.json()["expiresIn"].as_u64().unwrap();
        assert!(
            (seconds_left - 5..=seconds_left).contains(&expires_in),
            "{seconds_left} s left: {expires_in}"
        );
        let token = reply.json()["token"].as_str().unwrap().to_owned();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims::<&str>(&[]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(b"api-key-secret-of-acme"),
            &validation,
        )
        .unwrap()
        .claims;
        assert!(
            claims["exp"].as_u64().unwrap() <= signed_in_until,
            "{seconds_left} s left"
        );
    }
}

#[tokio::test]
async fn token_lifetime_is_configurable() {
    let t = TestApp::with_env(&[("SWITCHBOARD_TOKEN_TTL_SECONDS", "600")]).await;
    t.seed_workspace("acme", &account("acme"), "tok").await;
    let reply = t.call(token_request(&agent_jwt("acme", "alice", "agent"))).await;
    assert_eq!(reply.json()["expiresIn"], 600);
}

#[tokio::test]
async fn token_for_an_unconfigured_workspace_says_to_configure_it_first() {
    let t = TestApp::new().await;
    let reply = t.call(token_request(&agent_jwt("newco", "alice", "agent"))).await;
    assert_eq!(reply.status(), 409);
    assert_eq!(reply.error_code(), "twilio_not_configured");
    assert!(reply.json()["error"]["message"].as_str().unwrap().contains("configure"));
}

#[tokio::test]
async fn sign_in_failures_are_401_with_a_json_error() {
    let t = TestApp::new().await;
    t.seed_workspace("acme", &account("acme"), "tok").await;
    let expired = jwt_hs256(
        &serde_json::json!({"sub": "alice", "workspace_id": "acme", "exp": now() - 3600}),
        HS256_SECRET,
    );
    let wrong_secret = jwt_hs256(
        &serde_json::json!({"sub": "alice", "workspace_id": "acme", "exp": now() + 600}),
        "another-secret-0123456789abcdef0123456789",
    );
    let no_workspace = jwt_hs256(&serde_json::json!({"sub": "alice", "exp": now() + 600}), HS256_SECRET);
    let bad_workspace = jwt_hs256(
        &serde_json::json!({"sub": "alice", "workspace_id": "a#b", "exp": now() + 600}),
        HS256_SECRET,
    );
    let no_sub = jwt_hs256(
        &serde_json::json!({"workspace_id": "acme", "exp": now() + 600}),
        HS256_SECRET,
    );
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS512),
        &serde_json::json!({"sub": "alice", "workspace_id": "acme", "exp": now() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(HS256_SECRET.as_bytes()),
    )
    .unwrap();
    // An unsigned token ("alg": "none") made by hand.
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(format!(
                r#"{{"sub":"alice","workspace_id":"acme","exp":{}}}"#,
                now() + 600
            ))
        )
    };
    for (name, token) in [
        ("expired", expired),
        ("wrong secret", wrong_secret),
        ("no workspace", no_workspace),
        ("bad workspace", bad_workspace),
        ("no sub", no_sub),
        ("HS512", hs512),
        ("unsigned", unsigned),
        ("garbage", "a.b.c".into()),
    ] {
        let reply = t.call(token_request(&token)).await;
        assert_eq!(reply.status(), 401, "{name}: {}", reply.text());
        assert_eq!(reply.error_code(), "unauthorized", "{name}");
    }
    let reply = t.call(request(Method::POST, "/token")).await;
    assert_eq!(reply.status(), 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
}

/// A token whose `nbf` (not before) is in the future is not valid yet, beyond
/// the same leeway for clock skew that `exp` gets; `nbf` stays optional.
#[tokio::test]
async fn a_token_is_not_valid_before_its_nbf_with_hs256() {
    let t = TestApp::new().await;
    t.seed_workspace("acme", &account("acme"), "tok").await;
    let with_nbf = |nbf: serde_json::Value| {
        jwt_hs256(
            &serde_json::json!({"sub": "alice", "workspace_id": "acme", "exp": now() + 7200, "nbf": nbf}),
            HS256_SECRET,
        )
    };
    assert_nbf_is_enforced(&t, with_nbf).await;
}

#[tokio::test]
async fn a_token_is_not_valid_before_its_nbf_with_jwks() {
    let idp = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&["rsa-1", "ec-1"])))
        .mount(&idp)
        .await;
    let t = TestApp::with_env(&[
        ("SWITCHBOARD_AUTH_HS256_SECRET", ""),
        ("SWITCHBOARD_AUTH_JWKS_URL", &format!("{}/jwks", idp.uri())),
    ])
    .await;
    t.seed_workspace("acme", &account("acme"), "tok").await;
    for kid in ["rsa-1", "ec-1"] {
        let with_nbf = |nbf: serde_json::Value| {
            jwt_from_fixture(
                &serde_json::json!({"sub": "alice", "workspace_id": "acme", "exp": now() + 7200, "nbf": nbf}),
                kid,
            )
        };
        assert_nbf_is_enforced(&t, with_nbf).await;
    }
}

async fn assert_nbf_is_enforced(t: &TestApp, with_nbf: impl Fn(serde_json::Value) -> String) {
    for (name, nbf) in [
        ("in an hour", serde_json::json!(now() + 3600)),
        ("just past the leeway", serde_json::json!(now() + 90)),
        ("not a number", serde_json::json!("soon")),
    ] {
        let reply = t.call(token_request(&with_nbf(nbf))).await;
        assert_eq!(reply.status(), 401, "nbf {name}: {}", reply.text());
        assert_eq!(reply.error_code(), "unauthorized", "nbf {name}");
    }
    let future = t.call(token_request(&with_nbf(serde_json::json!(now() + 3600)))).await;
    assert!(future.text().contains("not valid yet"), "{}", future.text());
    // Sockets sign in with the same check.
    let socket = t.app.auth.check(&with_nbf(serde_json::json!(now() + 3600))).await;
    assert!(socket.is_err(), "{socket:?}");

    for (name, nbf) in [
        ("a minute ago", serde_json::json!(now() - 60)),
        ("now", serde_json::json!(now())),
        ("within the leeway (clock skew)", serde_json::json!(now() + 10)),
    ] {
        let reply = t.call(token_request(&with_nbf(nbf))).await;
        assert_eq!(reply.status(), 200, "nbf {name}: {}", reply.text());
    }
}

#[tokio::test]
async fn issuer_audience_and_claim_names_are_honoured() {
    let t = TestApp::with_env(&[
        ("SWITCHBOARD_AUTH_ISSUER", "https://idp.example/"),
        ("SWITCHBOARD_AUTH_AUDIENCE", "switchboard"),
        (
            "SWITCHBOARD_AUTH_WORKSPACE_CLAIM",
            "https://switchboard.example/workspace",
        ),
    ])
    .await;
    t.seed_workspace("acme", &account("acme"), "tok").await;
    let claims = |iss: &str, aud: &str| {
        serde_json::json!({
            "sub": "alice", "iss": iss, "aud": aud, "exp": now() + 600,
            "https://switchboard.example/workspace": "acme",
        })
    };
    let ok = t
        .call(token_request(&jwt_hs256(
            &claims("https://idp.example/", "switchboard"),
            HS256_SECRET,
        )))
        .await;
    assert_eq!(ok.status(), 200, "{}", ok.text());
    let wrong_iss = t
        .call(token_request(&jwt_hs256(
            &claims("https://evil.example/", "switchboard"),
            HS256_SECRET,
        )))
        .await;
    assert_eq!(wrong_iss.status(), 401);
    let wrong_aud = t
        .call(token_request(&jwt_hs256(
            &claims("https://idp.example/", "other"),
            HS256_SECRET,
        )))
        .await;
    assert_eq!(wrong_aud.status(), 401);
}

#[tokio::test]
async fn jwks_keys_are_cached_and_refetched_for_an_unknown_key_id() {
    let idp = MockServer::start().await;
    // First the provider publishes rsa-1 and ec-1; later it rotates in rsa-2.
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&["rsa-1", "ec-1"])))
        .up_to_n_times(1)
        .mount(&idp)
        .await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&["rsa-1", "rsa-2", "ec-1"])))
        .mount(&idp)
        .await;
    let jwks_url = format!("{}/.well-known/jwks.json", idp.uri());
    let t = TestApp::with_env(&[
        ("SWITCHBOARD_AUTH_HS256_SECRET", ""),
        ("SWITCHBOARD_AUTH_JWKS_URL", &jwks_url),
    ])
    .await;
    t.seed_workspace("acme", &account("acme"), "tok").await;
    let claims = serde_json::json!({"sub": "alice", "workspace_id": "acme", "role": ["admin"], "exp": now() + 600});

    for kid in ["rsa-1", "ec-1", "rsa-1"] {
        let reply = t.call(token_request(&jwt_from_fixture(&claims, kid))).await;
        assert_eq!(reply.status(), 200, "{kid}: {}", reply.text());
    }
    assert_eq!(idp.received_requests().await.unwrap().len(), 1, "keys are cached");

    // A new key id triggers one refetch... but not within the refresh interval
    // of the first fetch, which a flood of unknown kids must not bypass.
    let rotated = t.call(token_request(&jwt_from_fixture(&claims, "rsa-2"))).await;
    assert_eq!(rotated.status(), 401, "refetch is rate limited: {}", rotated.text());
    assert_eq!(idp.received_requests().await.unwrap().len(), 1);

    // HS256 tokens are refused when the provider's keys are asymmetric.
    let hs = t.call(token_request(&agent_jwt("acme", "alice", "agent"))).await;
    assert_eq!(hs.status(), 401);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_on_its_first_use() {
    let idp = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&["rsa-1"])))
        .up_to_n_times(1)
        .mount(&idp)
        .await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&["rsa-1", "rsa-2"])))
        .mount(&idp)
        .await;
    let mut t = TestApp::with_env(&[
        ("SWITCHBOARD_AUTH_HS256_SECRET", ""),
        ("SWITCHBOARD_AUTH_JWKS_URL", &format!("{}/jwks", idp.uri())),
    ])
    .await;
    // The production interval is 30 s; the behaviour past it is the same.
    t.app.auth = Authenticator::new(t.app.config.auth.clone(), t.app.http.clone())
        .with_min_refresh_interval(std::time::Duration::ZERO);
    t.seed_workspace("acme", &account("acme"), "tok").await;
    let claims = serde_json::json!({"sub": "alice", "workspace_id": "acme", "exp": now() + 600});

    assert_eq!(
        t.call(token_request(&jwt_from_fixture(&claims, "rsa-1")))
            .await
            .status(),
        200
    );
    let rotated = t.call(token_request(&jwt_from_fixture(&claims, "rsa-2"))).await;
    assert_eq!(rotated.status(), 200, "{}", rotated.text());
    assert_eq!(idp.received_requests().await.unwrap().len(), 2);
    // A key id the provider does not publish is refused, not a server error.
    let unknown = t.call(token_request(&jwt_from_fixture(&claims, "ec-1"))).await;
    assert_eq!(unknown.status(), 401);
}

#[tokio::test]
async fn an_unreachable_identity_provider_is_503_not_401() {
    let t = TestApp::with_env(&[
        ("SWITCHBOARD_AUTH_HS256_SECRET", ""),
        ("SWITCHBOARD_AUTH_JWKS_URL", "http://127.0.0.1:9/jwks"),
    ])
    .await;
    let claims = serde_json::json!({"sub": "alice", "workspace_id": "acme", "exp": now() + 600});
    let reply = t.call(token_request(&jwt_from_fixture(&claims, "rsa-1"))).await;
    assert_eq!(reply.status(), 503, "{}", reply.text());
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_large_bodies() {
    let t = TestApp::new().await;
    let reply = t.call(request(Method::GET, "/nope")).await;
    assert_eq!(reply.status(), 404);
    assert_eq!(reply.error_code(), "not_found");

    let reply = t.call(request(Method::GET, "/token")).await;
    assert_eq!(reply.status(), 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    assert_eq!(reply.error_code(), "method_not_allowed");

    let mut big = token_request(&agent_jwt("acme", "alice", "agent"));
    big.body = bytes::Bytes::from(vec![b'x'; switchboard::api::MAX_BODY_BYTES + 1]);
    let reply = t.call(big).await;
    assert_eq!(reply.status(), 413);
}

mod webhook_gate {
    use super::*;

    const PARAMS: [(&str, &str); 3] = [
        ("CallStatus", "ringing"),
        ("CallSid", "CA0123456789abcdef0123456789abcdef"),
        ("To", "+14155550100"),
    ];

    fn params(account: &str) -> Vec<(&str, &str)> {
        let mut params = PARAMS.to_vec();
        params.push(("AccountSid", account));
        params
    }

    #[tokio::test]
    async fn a_correctly_signed_webhook_passes_with_its_workspace() {
        let t = TestApp::new().await;
        let acme = account("acme");
        t.seed_workspace("acme", &acme, "acme-auth-token").await;
        let request = twilio_post(
            "/twilio/status?callId=01J&leg=agent",
            &params(acme.as_str()),
            "acme-auth-token",
        );
        let hook = webhook::verify(&t.app, &request).await.expect("verified");
        assert_eq!(hook.workspace.id.as_str(), "acme");
        assert_eq!(hook.params.get("CallStatus"), Some("ringing"));
    }

    #[tokio::test]
    async fn anything_else_is_forbidden() {
        let t = TestApp::new().await;
        let (acme, other) = (account("acme"), account("other"));
        t.seed_workspace("acme", &acme, "acme-auth-token").await;
        t.seed_workspace("other", &other, "other-auth-token").await;
        let sid = acme.as_str();

        let mut unsigned = twilio_post("/twilio/status", &params(sid), "acme-auth-token");
        unsigned.headers.remove("x-twilio-signature");
        let mut tampered = twilio_post("/twilio/status", &params(sid), "acme-auth-token");
        tampered.body = bytes::Bytes::from(
            String::from_utf8(tampered.body.to_vec())
                .unwrap()
                .replace("ringing", "completed"),
        );
        let mut other_query = twilio_post("/twilio/status?callId=1", &params(sid), "acme-auth-token");
        other_query.query = Some("callId=2".into());
        let cases = [
            ("unsigned", unsigned),
            ("tampered", tampered),
            ("query changed", other_query),
            // Signed with another workspace's token while claiming acme's account.
            (
                "wrong account's token",
                twilio_post("/twilio/status", &params(sid), "other-auth-token"),
            ),
            (
                "unknown account",
                twilio_post("/twilio/status", &params(account("nobody").as_str()), "x"),
            ),
            ("no account", twilio_post("/twilio/status", &PARAMS, "acme-auth-token")),
            (
                "garbage account",
                twilio_post("/twilio/status", &params("AC<script>"), "acme-auth-token"),
            ),
        ];
        for (name, request) in cases {
            let result = webhook::verify(&t.app, &request).await;
            assert!(matches!(result, Err(WebhookError::Forbidden)), "{name}: {result:?}");
        }
    }

    /// The gate keeps each workspace's opened signing key; a new Auth Token
    /// (re-connecting after a rotation) must count from the next webhook on.
    #[tokio::test]
    async fn a_new_auth_token_counts_at_once_and_the_old_one_no_more() {
        let t = TestApp::new().await;
        let acme = account("acme");
        t.seed_workspace("acme", &acme, "old-token").await;
        let p = params(acme.as_str());
        let signed = |token| twilio_post("/twilio/status", &p, token);
        assert!(webhook::verify(&t.app, &signed("old-token")).await.is_ok());
        assert!(webhook::verify(&t.app, &signed("old-token")).await.is_ok(), "kept key");

        t.seed_workspace("acme", &acme, "new-token").await;
        assert!(webhook::verify(&t.app, &signed("new-token")).await.is_ok());
        let old = webhook::verify(&t.app, &signed("old-token")).await;
        assert!(matches!(old, Err(WebhookError::Forbidden)), "{old:?}");
    }

    /// The form check reads the media type: any case, parameters aside, and
    /// not a prefix. A body that is not a form carries no `AccountSid`, so
    /// the gate cannot tell whose it is: 403.
    #[tokio::test]
    async fn the_form_content_type_is_a_media_type() {
        let t = TestApp::new().await;
        let acme = account("acme");
        t.seed_workspace("acme", &acme, "tok").await;
        let p = params(acme.as_str());
        let with_type = |content_type: &'static str| {
            let mut request = twilio_post("/twilio/status", &p, "tok");
            request
                .headers
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
            request
        };
        for accepted in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            "APPLICATION/X-WWW-FORM-URLENCODED",
        ] {
            let result = webhook::verify(&t.app, &with_type(accepted)).await;
            assert!(result.is_ok(), "{accepted}: {result:?}");
        }
        for refused in [
            "application/x-www-form-urlencodedXYZ",
            "application/x-www-form-urlencoded-not; charset=utf-8",
            "text/plain",
        ] {
            let result = webhook::verify(&t.app, &with_type(refused)).await;
            assert!(matches!(result, Err(WebhookError::Forbidden)), "{refused}: {result:?}");
            let reply = t.call(with_type(refused)).await;
            assert_eq!(reply.status(), 403, "{refused}");
        }
    }

    #[tokio::test]
    async fn signatures_made_for_the_default_port_are_accepted() {
        let t = TestApp::new().await;
        let acme = account("acme");
        t.seed_workspace("acme", &acme, "tok").await;
        let p = params(acme.as_str());
        let mut request = twilio_post("/twilio/status", &p, "tok");
        let url = format!("{}:443/twilio/status", PUBLIC_URL);
        let signature = switchboard::twilio::signature::sign(b"tok", &url, &p);
        request.headers.insert("x-twilio-signature", signature.parse().unwrap());
        assert!(webhook::verify(&t.app, &request).await.is_ok());
    }
}
