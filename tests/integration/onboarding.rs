//! Onboarding end to end through the route table, against a stateful fake of
//! Twilio's REST API: configure, check, clear, and the numbers routes.

use http::Method;
use serde_json::{Value, json};
use switchboard::ids::WorkspaceId;
use switchboard_testkit::fake_twilio::{FakeTwilio, Fault, FaultKind};
use switchboard_testkit::harness::*;
use switchboard_testkit::moto;

const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";

struct Setup {
    t: TestApp,
    twilio: FakeTwilio,
    account: String,
}

/// A Twilio account with `numbers`, and a Switchboard pointed at it.
async fn setup(numbers: &[&str]) -> Setup {
    let account = account("acme").to_string();
    let twilio = FakeTwilio::start(&account, AUTH_TOKEN).await;
    for number in numbers {
        twilio.add_number(number);
    }
    let t = TestApp::with_env(&[("SWITCHBOARD_TWILIO_API_URL", &twilio.uri())]).await;
    Setup { t, twilio, account }
}

fn admin(workspace: &str) -> String {
    agent_jwt(workspace, "root", "admin")
}

fn put_twilio(workspace: &str, body: Value) -> switchboard::api::Request {
    with_json(
        with_bearer(request(Method::PUT, "/workspace/twilio"), &admin(workspace)),
        &body,
    )
}

fn configure_body(account: &str) -> Value {
    json!({"accountSid": account, "authToken": AUTH_TOKEN})
}

async fn configure(s: &Setup) -> Reply {
    s.t.call(put_twilio("acme", configure_body(&s.account))).await
}

fn results(reply: &Reply, kind: &str) -> Vec<String> {
    reply.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| r["result"].as_str().unwrap().to_owned())
        .collect()
}

fn writes(twilio: &FakeTwilio) -> Vec<String> {
    twilio
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// Everything in place at Twilio and in the store, exactly once.
async fn assert_wired(s: &Setup, numbers: usize) {
    assert_eq!(s.twilio.keys().len(), 1, "one API key");
    let apps = s.twilio.applications();
    assert_eq!(apps.len(), 1, "one TwiML App");
    assert_eq!(apps[0].friendly_name, "Switchboard acme");
    assert_eq!(
        apps[0].voice_url.as_deref(),
        Some(&*format!("{PUBLIC_URL}/twilio/voice/agent"))
    );
    assert_eq!(
        apps[0].status_callback.as_deref(),
        Some(&*format!("{PUBLIC_URL}/twilio/status"))
    );
    let wired = s.twilio.numbers();
    assert_eq!(wired.len(), numbers);
    for number in &wired {
        assert_eq!(number.voice_url, format!("{PUBLIC_URL}/twilio/voice/inbound"));
        assert_eq!(number.status_callback, format!("{PUBLIC_URL}/twilio/status"));
        assert_eq!(number.sms_url, format!("{PUBLIC_URL}/twilio/sms"));
        assert_eq!(number.voice_application_sid, None);
    }
    let ws = WorkspaceId::parse("acme").unwrap();
    let stored = s.t.app.store.get_workspace(&ws).await.unwrap().unwrap();
    let twilio = stored.twilio.unwrap();
    assert_eq!(twilio.account_sid.as_str(), s.account);
    assert_eq!(twilio.api_key.unwrap().sid.as_str(), s.twilio.keys()[0].sid);
    assert_eq!(twilio.twiml_app_sid.unwrap().as_str(), apps[0].sid);
    assert_eq!(s.t.app.store.list_numbers(&ws).await.unwrap().len(), numbers);
}

#[tokio::test]
async fn configure_wires_everything_and_a_second_call_changes_nothing() {
    let s = setup(&["+14155550101", "+14155550102", "+14155550103"]).await;
    s.twilio.set_page_size_cap(2); // three numbers over two pages

    let first = configure(&s).await;
    assert_eq!(first.status(), 200, "{}", first.text());
    assert_eq!(first.json()["complete"], true);
    assert_eq!(results(&first, "apiKey"), ["created"]);
    assert_eq!(results(&first, "twimlApp"), ["created"]);
    assert_eq!(results(&first, "phoneNumber"), ["updated", "updated", "updated"]);
    assert_wired(&s, 3).await;
    // No secret comes back.
    let key_secret = s.twilio.keys()[0].secret.clone();
    assert!(!first.text().contains(AUTH_TOKEN) && !first.text().contains(&key_secret));

    // Agents can now get tokens signed with the new key.
    let token =
        s.t.call(with_bearer(
            request(Method::POST, "/token"),
            &agent_jwt("acme", "alice", "agent"),
        ))
        .await;
    assert_eq!(token.status(), 200, "{}", token.text());

    s.twilio.clear_requests();
    let second = configure(&s).await;
    assert_eq!(second.status(), 200, "{}", second.text());
    assert_eq!(results(&second, "apiKey"), ["unchanged"]);
    assert_eq!(results(&second, "twimlApp"), ["unchanged"]);
    assert_eq!(results(&second, "phoneNumber"), ["unchanged"; 3]);
    assert_eq!(writes(&s.twilio), Vec::<String>::new(), "a second call only reads");
    assert_wired(&s, 3).await;
}

#[tokio::test]
async fn secrets_are_stored_sealed_never_in_plaintext() {
    let s = setup(&["+14155550101"]).await;
    assert_eq!(configure(&s).await.status(), 200);
    let key_secret = s.twilio.keys()[0].secret.clone();
    // Read the embedded database file as bytes: no secret appears in it.
    let mut found = Vec::new();
    for entry in std::fs::read_dir(s.t.dir.path().join("store")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for secret in [AUTH_TOKEN, key_secret.as_str()] {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                found.push(secret.to_owned());
            }
        }
    }
    assert!(found.is_empty(), "plaintext secrets in the store: {found:?}");
    // And nothing returns them.
    let check =
        s.t.call(with_bearer(request(Method::GET, "/workspace/twilio"), &admin("acme")))
            .await;
    assert!(!check.text().contains(AUTH_TOKEN) && !check.text().contains(&key_secret));
}

#[tokio::test]
async fn wrong_credentials_are_400_with_twilios_reason_and_nothing_is_stored() {
    let s = setup(&["+14155550101"]).await;
    let reply =
        s.t.call(put_twilio(
            "acme",
            json!({"accountSid": s.account, "authToken": "ffffffffffffffffffffffffffffffff"}),
        ))
        .await;
    assert_eq!(reply.status(), 400, "{}", reply.text());
    assert_eq!(reply.error_code(), "twilio_credentials_rejected");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authenticate")
    );
    let ws = WorkspaceId::parse("acme").unwrap();
    assert!(s.t.app.store.get_workspace(&ws).await.unwrap().is_none());
    assert_eq!(writes(&s.twilio), Vec::<String>::new());
}

#[tokio::test]
async fn bad_bodies_are_400() {
    let s = setup(&[]).await;
    for body in [
        json!({"accountSid": "AC123", "authToken": AUTH_TOKEN}),
        json!({"accountSid": s.account, "authToken": ""}),
        json!({"accountSid": s.account}),
        json!({"accountSid": s.account, "authToken": AUTH_TOKEN, "callerId": "555-0100"}),
        json!({"accountSid": s.account, "authToken": AUTH_TOKEN, "surprise": 1}),
        json!([1, 2]),
    ] {
        let reply = s.t.call(put_twilio("acme", body.clone())).await;
        assert_eq!(reply.status(), 400, "{body}: {}", reply.text());
    }
    assert!(s.twilio.requests().is_empty(), "nothing reached Twilio");
}

#[tokio::test]
async fn twilio_down_is_502_naming_the_step() {
    let s = setup(&[]).await;
    s.twilio
        .fail_next(Fault::new("GET", ".json", FaultKind::Status(503)).times(10));
    let reply = configure(&s).await;
    assert_eq!(reply.status(), 502, "{}", reply.text());
    assert_eq!(reply.error_code(), "upstream_error");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("check credentials")
    );
}

/// No network to Twilio at all: the answer says why, down to the cause (here
/// the name does not resolve), not just "error sending request".
#[tokio::test]
async fn twilio_unreachable_is_502_with_its_cause() {
    let t = TestApp::with_env(&[("SWITCHBOARD_TWILIO_API_URL", "https://api.twilio.invalid")]).await;
    let reply = t
        .call(put_twilio("acme", configure_body(&account("acme").to_string())))
        .await;
    assert_eq!(reply.status(), 502, "{}", reply.text());
    let message = reply.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("check credentials: Twilio could not be reached: "),
        "{message}"
    );
    assert!(message.contains("dns error"), "the cause is named: {message}");
}

/// A failure at every step, then a second call that converges to exactly one
/// key, one app and every number wired, then a third that changes nothing.
#[tokio::test]
async fn a_failure_at_any_step_is_reported_and_the_next_call_converges() {
    let steps: &[(&str, Fault, &str)] = &[
        (
            "create key",
            Fault::new("POST", "/Keys.json", FaultKind::Status(500)),
            "create API key",
        ),
        (
            "create key, response lost",
            Fault::new("POST", "/Keys.json", FaultKind::DropAfterApplying),
            "create API key",
        ),
        (
            "find app",
            Fault::new("GET", "/Applications.json", FaultKind::Status(503)).times(3),
            "find TwiML App",
        ),
        (
            "create app",
            Fault::new("POST", "/Applications.json", FaultKind::Status(500)),
            "create TwiML App",
        ),
        (
            "create app, response lost",
            Fault::new("POST", "/Applications.json", FaultKind::DropAfterApplying),
            "create TwiML App",
        ),
        (
            "list numbers",
            Fault::new("GET", "/IncomingPhoneNumbers.json", FaultKind::Status(500)).times(3),
            "list phone numbers",
        ),
        (
            "update a number",
            Fault::new("POST", "/IncomingPhoneNumbers/", FaultKind::Status(400)),
            "",
        ),
        (
            "read a number back",
            Fault::new("GET", "/IncomingPhoneNumbers/PN", FaultKind::Status(500)).times(3),
            "",
        ),
    ];
    for (name, fault, step) in steps {
        let s = setup(&["+14155550101", "+14155550102"]).await;
        s.twilio.fail_next(fault.clone());
        let failed = configure(&s).await;
        assert_eq!(failed.status(), 502, "{name}: {}", failed.text());
        if step.is_empty() {
            assert_eq!(failed.error_code(), "twilio_incomplete", "{name}");
            assert!(results(&failed, "phoneNumber").contains(&"failed".to_owned()), "{name}");
        } else {
            let message = failed.json()["error"]["message"].as_str().unwrap().to_owned();
            assert!(message.starts_with(step), "{name}: {message}");
        }

        let again = configure(&s).await;
        assert_eq!(again.status(), 200, "{name}: {}", again.text());
        if name.contains("key, response lost") {
            // Twilio shows a new key's secret only once: the orphan is left and
            // a second key made. Everything else converges.
            assert_eq!(s.twilio.keys().len(), 2, "{name}");
        } else {
            assert_wired(&s, 2).await;
        }
        s.twilio.clear_requests();
        let third = configure(&s).await;
        assert_eq!(third.status(), 200, "{name}");
        assert_eq!(writes(&s.twilio), Vec::<String>::new(), "{name}: converged");
    }
}

#[tokio::test]
async fn a_revoked_api_key_is_replaced() {
    let s = setup(&["+14155550101"]).await;
    assert_eq!(configure(&s).await.status(), 200);
    let old = s.twilio.keys()[0].sid.clone();
    // Someone deletes the key in the Twilio console.
    let http = reqwest::Client::new();
    let deleted = http
        .delete(format!(
            "{}/2010-04-01/Accounts/{}/Keys/{old}.json",
            s.twilio.uri(),
            s.account
        ))
        .basic_auth(&s.account, Some(AUTH_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let reply = configure(&s).await;
    assert_eq!(results(&reply, "apiKey"), ["created"]);
    assert_wired(&s, 1).await;
    assert_ne!(s.twilio.keys()[0].sid, old);
}

#[tokio::test]
async fn an_existing_app_with_our_name_is_adopted_not_duplicated() {
    let s = setup(&[]).await;
    s.twilio.add_application(
        "Switchboard acme",
        "https://old.example/voice",
        "https://old.example/status",
    );
    let reply = configure(&s).await;
    assert_eq!(reply.status(), 200, "{}", reply.text());
    assert_eq!(results(&reply, "twimlApp"), ["updated"]);
    assert_wired(&s, 0).await;
}

async fn check(s: &Setup) -> Value {
    s.t.call(with_bearer(request(Method::GET, "/workspace/twilio"), &admin("acme")))
        .await
        .json()
}

#[tokio::test]
async fn check_reports_drift_and_new_numbers() {
    let s = setup(&["+14155550101", "+14155550102"]).await;
    let before = check(&s).await;
    assert_eq!(before, json!({"configured": false}));

    assert_eq!(configure(&s).await.status(), 200);
    let clean = check(&s).await;
    assert_eq!(clean["configured"], true);
    assert_eq!(clean["accountSid"], s.account);
    assert_eq!(clean["drift"]["inSync"], true, "{clean}");
    assert_eq!(clean["numbers"].as_array().unwrap().len(), 2);

    // Someone repoints a number in the console, and buys another.
    let first = s.twilio.numbers()[0].sid.clone();
    s.twilio
        .set_number_hooks(&first, "https://elsewhere.example/voice", "", "");
    s.twilio.add_number("+14155550103");
    let drifted = check(&s).await;
    assert_eq!(drifted["drift"]["inSync"], false);
    let numbers = drifted["drift"]["numbers"].as_array().unwrap();
    let repointed = numbers.iter().find(|n| n["sid"] == first.as_str()).unwrap();
    assert_eq!(repointed["inSync"], false);
    assert_eq!(repointed["voiceUrl"], "https://elsewhere.example/voice");
    assert_eq!(drifted["drift"]["unmanagedNumbers"], json!(["+14155550103"]));

    // Configure again puts it right.
    let fixed = configure(&s).await;
    assert_eq!(results(&fixed, "phoneNumber"), ["updated", "unchanged", "updated"]);
    assert_eq!(check(&s).await["drift"]["inSync"], true);
}

#[tokio::test]
async fn check_still_answers_when_twilio_is_down() {
    let s = setup(&["+14155550101"]).await;
    assert_eq!(configure(&s).await.status(), 200);
    s.twilio
        .fail_next(Fault::new("GET", "/", FaultKind::Status(503)).times(20));
    let reply =
        s.t.call(with_bearer(request(Method::GET, "/workspace/twilio"), &admin("acme")))
            .await;
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.json()["drift"]["checked"], false);
    assert_eq!(reply.json()["configured"], true);
}

fn delete_twilio(query: &str) -> switchboard::api::Request {
    with_bearer(
        request(Method::DELETE, &format!("/workspace/twilio{query}")),
        &admin("acme"),
    )
}

#[tokio::test]
async fn clear_undoes_everything_and_is_idempotent() {
    let s = setup(&["+14155550101", "+14155550102"]).await;
    assert_eq!(configure(&s).await.status(), 200);
    let reply = s.t.call(delete_twilio("")).await;
    assert_eq!(reply.status(), 200, "{}", reply.text());
    assert_eq!(reply.json()["cleared"], true);
    assert_eq!(results(&reply, "phoneNumber"), ["cleared", "cleared"]);
    assert_eq!(results(&reply, "twimlApp"), ["deleted"]);
    assert_eq!(results(&reply, "apiKey"), ["deleted"]);

    assert!(s.twilio.keys().is_empty() && s.twilio.applications().is_empty());
    for number in s.twilio.numbers() {
        assert_eq!(
            (
                number.voice_url.as_str(),
                number.status_callback.as_str(),
                number.sms_url.as_str()
            ),
            ("", "", "")
        );
    }
    let ws = WorkspaceId::parse("acme").unwrap();
    assert!(
        s.t.app
            .store
            .get_workspace(&ws)
            .await
            .unwrap()
            .unwrap()
            .twilio
            .is_none()
    );
    assert!(s.t.app.store.list_numbers(&ws).await.unwrap().is_empty());
    let number = switchboard::phone::E164::parse("+14155550101").unwrap();
    assert_eq!(s.t.app.store.workspace_by_number(&number).await.unwrap(), None);
    let account = switchboard::ids::AccountSid::parse(&s.account).unwrap();
    assert_eq!(s.t.app.store.workspace_by_account(&account).await.unwrap(), None);
    let token =
        s.t.call(with_bearer(
            request(Method::POST, "/token"),
            &agent_jwt("acme", "alice", "agent"),
        ))
        .await;
    assert_eq!(token.status(), 409);

    let again = s.t.call(delete_twilio("")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json(), json!({"cleared": true, "resources": []}));

    // And it can be connected again from scratch.
    assert_eq!(configure(&s).await.status(), 200);
    assert_wired(&s, 2).await;
}

#[tokio::test]
async fn a_partial_clear_forgets_nothing_and_a_repeat_finishes() {
    let s = setup(&["+14155550101"]).await;
    assert_eq!(configure(&s).await.status(), 200);
    s.twilio
        .fail_next(Fault::new("DELETE", "/Applications/", FaultKind::Status(500)).times(3));
    let partial = s.t.call(delete_twilio("")).await;
    assert_eq!(partial.status(), 502, "{}", partial.text());
    assert_eq!(results(&partial, "twimlApp"), ["failed"]);
    let ws = WorkspaceId::parse("acme").unwrap();
    assert!(
        s.t.app
            .store
            .get_workspace(&ws)
            .await
            .unwrap()
            .unwrap()
            .twilio
            .is_some(),
        "nothing forgotten"
    );

    let finished = s.t.call(delete_twilio("")).await;
    assert_eq!(finished.status(), 200, "{}", finished.text());
    assert_eq!(results(&finished, "phoneNumber"), ["cleared"]);
    assert_eq!(results(&finished, "twimlApp"), ["deleted"]);
    assert_eq!(results(&finished, "apiKey"), ["absent"]);
    assert!(s.twilio.applications().is_empty());
}

#[tokio::test]
async fn force_forgets_credentials_twilio_no_longer_accepts() {
    let s = setup(&["+14155550101"]).await;
    assert_eq!(configure(&s).await.status(), 200);
    s.twilio.set_account(&s.account, "rotated-token-ffffffffffffffffffff"); // the customer rotated it
    let refused = s.t.call(delete_twilio("")).await;
    assert_eq!(refused.status(), 502);
    let forced = s.t.call(delete_twilio("?force=true")).await;
    assert_eq!(forced.status(), 200, "{}", forced.text());
    let ws = WorkspaceId::parse("acme").unwrap();
    assert!(
        s.t.app
            .store
            .get_workspace(&ws)
            .await
            .unwrap()
            .unwrap()
            .twilio
            .is_none()
    );
    assert_eq!(s.t.call(delete_twilio("?force=maybe")).await.status(), 400);
}

#[tokio::test]
async fn admin_routes_need_the_admin_role() {
    let s = setup(&["+14155550101"]).await;
    let agent = agent_jwt("acme", "alice", "agent");
    for (method, path) in [
        (Method::PUT, "/workspace/twilio"),
        (Method::GET, "/workspace/twilio"),
        (Method::DELETE, "/workspace/twilio"),
        (Method::PUT, "/workspace/numbers/+14155550101"),
    ] {
        let reply =
            s.t.call(with_json(
                with_bearer(request(method.clone(), path), &agent),
                &configure_body(&s.account),
            ))
            .await;
        assert_eq!(reply.status(), 403, "{method} {path}");
        assert_eq!(reply.error_code(), "forbidden");
    }
    assert!(s.twilio.requests().is_empty());
    let numbers =
        s.t.call(with_bearer(request(Method::GET, "/workspace/numbers"), &agent))
            .await;
    assert_eq!(numbers.status(), 200);
}

#[tokio::test]
async fn numbers_are_assigned_to_agents() {
    let s = setup(&["+14155550101", "+14155550102"]).await;
    assert_eq!(configure(&s).await.status(), 200);
    let put = |path: &str, body: Value| with_json(with_bearer(request(Method::PUT, path), &admin("acme")), &body);

    let reply =
        s.t.call(put(
            "/workspace/numbers/%2B14155550101",
            json!({"agents": ["bob", "alice", "bob"], "label": " Sales "}),
        ))
        .await;
    assert_eq!(reply.status(), 200, "{}", reply.text());
    assert_eq!(reply.json()["agents"], json!(["alice", "bob"]));
    assert_eq!(reply.json()["label"], "Sales");

    let list =
        s.t.call(with_bearer(
            request(Method::GET, "/workspace/numbers"),
            &agent_jwt("acme", "alice", "agent"),
        ))
        .await;
    let numbers = list.json()["numbers"].as_array().unwrap().clone();
    let sales = numbers.iter().find(|n| n["number"] == "+14155550101").unwrap();
    assert_eq!(sales["agents"], json!(["alice", "bob"]));

    // A configure run keeps the assignment (numbers come from Twilio, agents from here).
    assert_eq!(configure(&s).await.status(), 200);
    let ws = WorkspaceId::parse("acme").unwrap();
    let number = switchboard::phone::E164::parse("+14155550101").unwrap();
    let kept = s.t.app.store.get_number(&ws, &number).await.unwrap().unwrap();
    assert_eq!(kept.agents.len(), 2);

    for (path, body, status) in [
        ("/workspace/numbers/%2B14155550199", json!({"agents": []}), 404),
        ("/workspace/numbers/not-a-number", json!({"agents": []}), 400),
        ("/workspace/numbers/%2B14155550101", json!({"agents": "alice"}), 400),
        (
            "/workspace/numbers/%2B14155550101",
            json!({"agents": [], "label": "x".repeat(65)}),
            400,
        ),
    ] {
        let reply = s.t.call(put(path, body)).await;
        assert_eq!(reply.status(), status, "{path}: {}", reply.text());
    }
}

#[tokio::test]
async fn one_workspace_cannot_see_change_or_clear_another() {
    // One fake serving two accounts; the two workspaces share the app.
    let s = setup(&["+14155550101"]).await;
    let other = account("globex").to_string();
    s.twilio.set_account(&other, AUTH_TOKEN);
    s.twilio.add_number_for(&other, "+14155550201");
    assert_eq!(configure(&s).await.status(), 200);
    let globex =
        s.t.call(put_twilio(
            "globex",
            json!({"accountSid": other, "authToken": AUTH_TOKEN}),
        ))
        .await;
    assert_eq!(globex.status(), 200, "{}", globex.text());

    // acme's admin sees only acme.
    let check =
        s.t.call(with_bearer(request(Method::GET, "/workspace/twilio"), &admin("acme")))
            .await;
    assert_eq!(check.json()["accountSid"], s.account);
    assert!(!check.text().contains("+14155550201"));
    // cannot assign globex's number,
    let reply =
        s.t.call(with_json(
            with_bearer(
                request(Method::PUT, "/workspace/numbers/%2B14155550201"),
                &admin("acme"),
            ),
            &json!({"agents": ["mallory"]}),
        ))
        .await;
    assert_eq!(reply.status(), 404);
    // cannot take over globex's account,
    let takeover =
        s.t.call(put_twilio(
            "acme",
            json!({"accountSid": other, "authToken": AUTH_TOKEN}),
        ))
        .await;
    assert_eq!(takeover.status(), 409);
    assert_eq!(takeover.error_code(), "account_in_use");
    // and clearing acme leaves globex whole.
    assert_eq!(s.t.call(delete_twilio("")).await.status(), 200);
    let ws = WorkspaceId::parse("globex").unwrap();
    assert!(
        s.t.app
            .store
            .get_workspace(&ws)
            .await
            .unwrap()
            .unwrap()
            .twilio
            .is_some()
    );
    assert_eq!(s.t.app.store.list_numbers(&ws).await.unwrap().len(), 1);
    let globex_number = s
        .twilio
        .numbers()
        .into_iter()
        .find(|n| n.phone_number == "+14155550201")
        .unwrap();
    assert_eq!(globex_number.voice_url, format!("{PUBLIC_URL}/twilio/voice/inbound"));
}

/// The same flow on DynamoDB and KMS (moto): what is stored holds no plaintext
/// secret, and a sealed secret moved to another workspace does not open.
#[tokio::test]
async fn on_dynamodb_and_kms_secrets_are_sealed_per_workspace() {
    use std::sync::Arc;
    use switchboard::ports::{SecretBox, SecretError};
    use switchboard_aws::DynamoStore;
    use switchboard_aws::KmsSecretBox;

    let account = account("acme").to_string();
    let twilio = FakeTwilio::start(&account, AUTH_TOKEN).await;
    twilio.add_number("+14155550101");
    let (dynamodb, table) = moto::fresh_table().await;
    let (kms, key) = moto::fresh_kms_key().await;
    let secrets = Arc::new(KmsSecretBox::new(kms, key));
    let t = TestApp::with_adapters(
        &[("SWITCHBOARD_TWILIO_API_URL", &twilio.uri())],
        Arc::new(DynamoStore::new(dynamodb.clone(), table.clone())),
        secrets.clone(),
    )
    .await;
    let s = Setup { t, twilio, account };
    let reply = configure(&s).await;
    assert_eq!(reply.status(), 200, "{}", reply.text());
    assert_wired(&s, 1).await;

    let items = dynamodb
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let dump = format!("{items:?}");
    let key_secret = s.twilio.keys()[0].secret.clone();
    assert!(dump.contains("WS#acme"), "the profile is there");
    assert!(
        !dump.contains(AUTH_TOKEN) && !dump.contains(&key_secret),
        "no plaintext secret is stored"
    );

    // Tokens are minted with the KMS-sealed key secret.
    let token =
        s.t.call(with_bearer(
            request(Method::POST, "/token"),
            &agent_jwt("acme", "alice", "agent"),
        ))
        .await;
    assert_eq!(token.status(), 200, "{}", token.text());

    // acme's sealed auth token does not open as another workspace's.
    let acme =
        s.t.app
            .store
            .get_workspace(&WorkspaceId::parse("acme").unwrap())
            .await
            .unwrap()
            .unwrap();
    let sealed = acme.twilio.unwrap().auth_token;
    let moved = secrets.open(&WorkspaceId::parse("globex").unwrap(), &sealed).await;
    assert!(matches!(moved, Err(SecretError::Unopenable)), "{moved:?}");
}

#[tokio::test]
async fn workspace_settings_are_set_with_the_same_call() {
    let s = setup(&[]).await;
    let with = |extra: Value| {
        let mut body = configure_body(&s.account);
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        put_twilio("acme", body)
    };
    let reply = s
        .t
        .call(with(json!({"record": true, "deleteTwilioRecordingAfterCopy": true, "smsAutoReply": " Thanks, we'll call back. ", "callerId": "+14155550101"})))
        .await;
    assert_eq!(reply.status(), 200, "{}", reply.text());
    let shown = check(&s).await;
    assert_eq!(shown["record"], true);
    assert_eq!(shown["deleteTwilioRecordingAfterCopy"], true);
    assert_eq!(shown["smsAutoReply"], "Thanks, we'll call back.");
    assert_eq!(shown["callerId"], "+14155550101");
    // Settings not sent are kept; an empty auto-reply turns it off.
    assert_eq!(s.t.call(with(json!({"smsAutoReply": ""}))).await.status(), 200);
    let shown = check(&s).await;
    assert_eq!(shown["smsAutoReply"], Value::Null);
    assert_eq!(shown["record"], true);
    assert_eq!(
        s.t.call(with(json!({"smsAutoReply": "x".repeat(1601)}))).await.status(),
        400
    );

    // The inbound ring time and wait music.
    assert_eq!(check(&s).await["ringSeconds"], 20, "the default");
    let music = "https://music.example.com/hold.mp3";
    let reply = s.t.call(with(json!({"ringSeconds": 30, "waitUrl": music}))).await;
    assert_eq!(reply.status(), 200, "{}", reply.text());
    let shown = check(&s).await;
    assert_eq!(
        (shown["ringSeconds"].clone(), shown["waitUrl"].clone()),
        (json!(30), json!(music))
    );
    for bad in [
        json!({"ringSeconds": 4}),
        json!({"ringSeconds": 121}),
        json!({"waitUrl": "ftp://x"}),
    ] {
        assert_eq!(s.t.call(with(bad.clone())).await.status(), 400, "{bad}");
    }
    assert_eq!(s.t.call(with(json!({"waitUrl": ""}))).await.status(), 200);
    assert_eq!(
        check(&s).await["waitUrl"],
        Value::Null,
        "an empty waitUrl: Twilio's own music"
    );
}
