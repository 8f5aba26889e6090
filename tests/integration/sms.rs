//! Texts end to end through the route table: inbound texts signed as Twilio
//! signs them, sending through a stateful fake of Twilio's Messages API,
//! delivery status callbacks, the listing, and tenant isolation.

use std::sync::Arc;
use std::time::Duration;
use switchboard_testkit::moto;

use http::Method;
use serde_json::{Value, json};
use switchboard::ids::{MessageSid, WorkspaceId};
use switchboard::model::messages::Message;
use switchboard::ports::MessageQuery;
use switchboard_testkit::fake_twilio::{FakeTwilio, Fault, FaultKind};
use switchboard_testkit::harness::*;

const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
/// Rings alice; she may text from it.
const OUR_NUMBER: &str = "+14155550100";
/// No agents assigned: a shared line anyone may text from.
const SHARED: &str = "+14155550101";
/// Bob's alone.
const BOBS: &str = "+14155550102";
const CUSTOMER: &str = "+14155550199";
const OTHER_CUSTOMER: &str = "+14155550188";
const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

struct Texting {
    t: TestApp,
    twilio: FakeTwilio,
    account: String,
}

/// Workspace `acme` connected through onboarding, with three numbers, on
/// the embedded store.
async fn texting() -> Texting {
    let twilio = fake_twilio().await;
    let t = TestApp::with_env(&[("SWITCHBOARD_TWILIO_API_URL", &twilio.uri())]).await;
    wire(t, twilio).await
}

/// The same on DynamoDB and KMS (moto).
async fn texting_on_dynamodb() -> Texting {
    use switchboard_aws::DynamoStore;
    use switchboard_aws::KmsSecretBox;

    let twilio = fake_twilio().await;
    let (dynamodb, table) = moto::fresh_table().await;
    let (kms, key) = moto::fresh_kms_key().await;
    let t = TestApp::with_adapters(
        &[("SWITCHBOARD_TWILIO_API_URL", &twilio.uri())],
        Arc::new(DynamoStore::new(dynamodb, table)),
        Arc::new(KmsSecretBox::new(kms, key)),
    )
    .await;
    wire(t, twilio).await
}

/// Acme's Twilio account, with three numbers.
async fn fake_twilio() -> FakeTwilio {
    let twilio = FakeTwilio::start(&account("acme").to_string(), AUTH_TOKEN).await;
    for number in [OUR_NUMBER, SHARED, BOBS] {
        twilio.add_number(number);
    }
    twilio
}

/// Connects acme and assigns its numbers.
async fn wire(t: TestApp, twilio: FakeTwilio) -> Texting {
    let account = twilio.account_sid();
    connect(&t, "acme", &account, AUTH_TOKEN).await;
    for (number, agents) in [("%2B14155550100", json!(["alice"])), ("%2B14155550102", json!(["bob"]))] {
        let assigned = t
            .call(with_json(
                with_bearer(
                    request(Method::PUT, &format!("/workspace/numbers/{number}")),
                    &agent_jwt("acme", "root", "admin"),
                ),
                &json!({ "agents": agents }),
            ))
            .await;
        assert_eq!(assigned.status(), 200, "{}", assigned.text());
    }
    twilio.clear_requests();
    Texting { t, twilio, account }
}

/// `PUT /workspace/twilio` as the workspace's admin.
async fn connect(t: &TestApp, workspace: &str, account: &str, auth_token: &str) {
    let configured = t
        .call(with_json(
            with_bearer(
                request(Method::PUT, "/workspace/twilio"),
                &agent_jwt(workspace, "root", "admin"),
            ),
            &json!({"accountSid": account, "authToken": auth_token}),
        ))
        .await;
    assert_eq!(configured.status(), 200, "{}", configured.text());
}

/// A webhook from `account`, signed with `auth_token`.
async fn hook_as(t: &TestApp, account: &str, auth_token: &str, path: &str, params: &[(&str, &str)]) -> Reply {
    let mut all = params.to_vec();
    all.push(("AccountSid", account));
    t.call(twilio_post(path, &all, auth_token)).await
}

fn message_sid(seed: &str) -> String {
    sid::<MessageSid>("SM", seed).to_string()
}

impl Texting {
    fn ws(&self) -> WorkspaceId {
        WorkspaceId::parse("acme").unwrap()
    }

    /// A webhook from acme's account, signed with its auth token.
    async fn hook(&self, path: &str, params: &[(&str, &str)]) -> Reply {
        hook_as(&self.t, &self.account, AUTH_TOKEN, path, params).await
    }

    /// A plain text from `from` to `to`, as Twilio delivers it.
    async fn text_in(&self, sid: &str, from: &str, to: &str, body: &str) -> Reply {
        self.hook(
            "/twilio/sms",
            &[
                ("MessageSid", sid),
                ("SmsSid", sid),
                ("SmsStatus", "received"),
                ("From", from),
                ("To", to),
                ("Body", body),
                ("NumMedia", "0"),
                ("NumSegments", "1"),
                ("ApiVersion", "2010-04-01"),
            ],
        )
        .await
    }

    /// `POST /messages` as `agent` of acme.
    async fn send(&self, agent: &str, body: &Value, key: Option<&str>) -> Reply {
        self.send_as("acme", agent, body, key).await
    }

    /// `POST /messages` as `agent` of `workspace`.
    async fn send_as(&self, workspace: &str, agent: &str, body: &Value, key: Option<&str>) -> Reply {
        let mut request = with_json(
            with_bearer(
                request(Method::POST, "/messages"),
                &agent_jwt(workspace, agent, "agent"),
            ),
            body,
        );
        if let Some(key) = key {
            request.headers.insert("idempotency-key", key.parse().unwrap());
        }
        self.t.call(request).await
    }

    /// `GET /messages?{query}` as `agent` of `workspace`.
    async fn list(&self, workspace: &str, agent: &str, query: &str) -> Reply {
        let path = if query.is_empty() {
            "/messages".to_owned()
        } else {
            format!("/messages?{query}")
        };
        self.t
            .call(with_bearer(
                request(Method::GET, &path),
                &agent_jwt(workspace, agent, "agent"),
            ))
            .await
    }

    /// What acme's store holds, newest first.
    async fn stored(&self) -> Vec<Message> {
        let query = MessageQuery {
            limit: 100,
            ..MessageQuery::default()
        };
        self.t.app.store.list_messages(&self.ws(), &query).await.unwrap().items
    }

    async fn stored_message(&self, sid: &str) -> Option<Message> {
        self.t
            .app
            .store
            .get_message(&self.ws(), &MessageSid::parse(sid).unwrap())
            .await
            .unwrap()
    }
}

fn text(to: &str, from: &str, body: &str) -> Value {
    json!({"to": to, "from": from, "body": body})
}

fn assert_empty_twiml(reply: &Reply, status: u16) {
    assert_eq!(reply.status(), status, "{}", reply.text());
    assert!(
        reply.header("content-type").is_some_and(|t| t.starts_with("text/xml")),
        "TwiML, not {:?}",
        reply.header("content-type")
    );
    assert_eq!(reply.text(), EMPTY_TWIML);
}

/// The sids of a `GET /messages` answer, in order.
fn sids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status(), 200, "{}", reply.text());
    reply.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sid"].as_str().unwrap().to_owned())
        .collect()
}

/// Stores keep millisecond times; a pause keeps "newest first" unambiguous.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

// ---------------------------------------------------------------------------
// Inbound texts

#[tokio::test]
async fn inbound_texts_are_kept_once_and_answered_with_an_empty_response() {
    let p = texting().await;
    let sid = message_sid("hello");
    let reply = p.text_in(&sid, CUSTOMER, OUR_NUMBER, "Hello there").await;
    assert_empty_twiml(&reply, 200);

    let stored = p.stored_message(&sid).await.expect("the text is kept");
    assert_eq!(stored.workspace, p.ws());
    assert_eq!(stored.direction, switchboard::model::calls::Direction::Inbound);
    assert_eq!((stored.from.as_str(), stored.to.as_str()), (CUSTOMER, OUR_NUMBER));
    assert_eq!(stored.body, "Hello there");
    assert_eq!(stored.status.as_str(), "received");
    assert!(stored.media_urls.is_empty() && stored.agent.is_none());

    // Twilio redelivers (parameters in another order, another body even):
    // the same answer, and the first text stays the only one.
    let again = p
        .hook(
            "/twilio/sms",
            &[
                ("Body", "Hello there (again)"),
                ("To", OUR_NUMBER),
                ("From", CUSTOMER),
                ("MessageSid", &sid),
            ],
        )
        .await;
    assert_empty_twiml(&again, 200);
    assert_eq!(p.stored().await, vec![stored]);
    assert!(p.twilio.requests().is_empty(), "receiving a text asks Twilio nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_identical_deliveries_at_once_keep_one_text() {
    let p = Arc::new(texting().await);
    let sid = Arc::new(message_sid("racing"));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (p, sid) = (p.clone(), sid.clone());
            tokio::spawn(async move { p.text_in(&sid, CUSTOMER, OUR_NUMBER, "once").await })
        })
        .collect();
    for task in tasks {
        assert_empty_twiml(&task.await.unwrap(), 200);
    }
    assert_eq!(p.stored().await.len(), 1);
}

#[tokio::test]
async fn a_bad_signature_is_403_and_keeps_nothing() {
    let p = texting().await;
    let sid = message_sid("forged");
    let params = [
        ("MessageSid", sid.as_str()),
        ("From", CUSTOMER),
        ("To", OUR_NUMBER),
        ("Body", "forged"),
        ("AccountSid", p.account.as_str()),
    ];

    // Signed with another token.
    let wrong =
        p.t.call(twilio_post("/twilio/sms", &params, "ffffffffffffffffffffffffffffffff"))
            .await;
    assert_empty_twiml(&wrong, 403);

    // No signature at all.
    let mut unsigned = twilio_post("/twilio/sms", &params, AUTH_TOKEN);
    unsigned.headers.remove("x-twilio-signature");
    assert_empty_twiml(&p.t.call(unsigned).await, 403);

    // Signed, then the body changed on the way.
    let mut tampered = twilio_post("/twilio/sms", &params, AUTH_TOKEN);
    let body = String::from_utf8(tampered.body.to_vec())
        .unwrap()
        .replace("forged", "changed");
    tampered.body = body.into();
    assert_empty_twiml(&p.t.call(tampered).await, 403);

    // Signed for another path (the status callback's).
    let mut moved = twilio_post("/twilio/sms/status", &params, AUTH_TOKEN);
    moved.path = "/twilio/sms".into();
    assert_empty_twiml(&p.t.call(moved).await, 403);

    // An account nobody connected, signing with its own token.
    let stranger = account("stranger").to_string();
    let mut foreign = params.to_vec();
    foreign.retain(|(k, _)| *k != "AccountSid");
    foreign.push(("AccountSid", &stranger));
    assert_empty_twiml(&p.t.call(twilio_post("/twilio/sms", &foreign, AUTH_TOKEN)).await, 403);

    assert!(
        p.stored().await.is_empty(),
        "nothing is kept from an unverified request"
    );
}

#[tokio::test]
async fn texts_to_a_number_the_workspace_does_not_have_are_not_kept() {
    let p = texting().await;
    for to in ["+14155550177", "not a number", ""] {
        let reply = p.text_in(&message_sid(to), CUSTOMER, to, "anyone there?").await;
        assert_empty_twiml(&reply, 200);
    }
    assert!(p.stored().await.is_empty());

    // Malformed deliveries are refused with TwiML too, and keep nothing.
    let no_sid = p
        .hook("/twilio/sms", &[("From", CUSTOMER), ("To", OUR_NUMBER), ("Body", "x")])
        .await;
    assert_empty_twiml(&no_sid, 400);
    let bad_sid = p
        .hook(
            "/twilio/sms",
            &[("MessageSid", "SM123"), ("From", CUSTOMER), ("To", OUR_NUMBER)],
        )
        .await;
    assert_empty_twiml(&bad_sid, 400);
    let no_from = p
        .hook(
            "/twilio/sms",
            &[("MessageSid", &message_sid("no-from")), ("To", OUR_NUMBER)],
        )
        .await;
    assert_empty_twiml(&no_from, 400);
    assert!(p.stored().await.is_empty());
}

#[tokio::test]
async fn media_urls_are_kept_in_order() {
    let p = texting().await;
    let sid = sid::<MessageSid>("MM", "photos").to_string();
    let media = |n: u32| {
        format!(
            "https://api.twilio.com/2010-04-01/Accounts/{}/Messages/{sid}/Media/ME{n:032x}",
            p.account
        )
    };
    let (first, second) = (media(1), media(2));
    let reply = p
        .hook(
            "/twilio/sms",
            &[
                ("MessageSid", &sid),
                ("From", CUSTOMER),
                ("To", OUR_NUMBER),
                ("Body", ""),
                ("NumMedia", "2"),
                ("MediaContentType1", "image/png"),
                ("MediaUrl1", &second),
                ("MediaContentType0", "image/jpeg"),
                ("MediaUrl0", &first),
            ],
        )
        .await;
    assert_empty_twiml(&reply, 200);
    let stored = p.stored_message(&sid).await.unwrap();
    assert_eq!(stored.media_urls, vec![first.clone(), second.clone()]);
    assert_eq!(stored.body, "");

    let listed = p.list("acme", "alice", "").await;
    assert_eq!(listed.json()["messages"][0]["mediaUrls"], json!([first, second]));
}

#[tokio::test]
async fn the_auto_reply_answers_every_delivery() {
    let p = texting().await;
    let mut workspace = p.t.app.store.get_workspace(&p.ws()).await.unwrap().unwrap();
    workspace.settings.sms_auto_reply = Some("Thanks! We'll reply <soon> & gladly.".into());
    p.t.app.store.put_workspace(&workspace).await.unwrap();

    let sid = message_sid("auto");
    let expected = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        "<Response><Message>Thanks! We&apos;ll reply &lt;soon&gt; &amp; gladly.</Message></Response>"
    );
    for _ in 0..2 {
        let reply = p.text_in(&sid, CUSTOMER, OUR_NUMBER, "hi").await;
        assert_eq!(reply.status(), 200);
        assert_eq!(reply.text(), expected, "the same answer to a redelivery");
    }
    assert_eq!(p.stored().await.len(), 1);

    // A blank auto-reply is no auto-reply.
    workspace.settings.sms_auto_reply = Some("   ".into());
    p.t.app.store.put_workspace(&workspace).await.unwrap();
    assert_empty_twiml(&p.text_in(&message_sid("blank"), CUSTOMER, OUR_NUMBER, "hi").await, 200);
}

// ---------------------------------------------------------------------------
// The listing

#[tokio::test]
async fn listing_is_newest_first_filtered_and_paged() {
    let p = texting().await;
    let inbound = |seed: &str| message_sid(seed);
    let (m1, m3, m5) = (inbound("m1"), inbound("m3"), inbound("m5"));
    assert_eq!(p.text_in(&m1, CUSTOMER, OUR_NUMBER, "one").await.status(), 200);
    tick().await;
    let m2 = p.send("alice", &text(CUSTOMER, OUR_NUMBER, "two"), None).await;
    assert_eq!(m2.status(), 201, "{}", m2.text());
    let m2 = m2.json()["sid"].as_str().unwrap().to_owned();
    tick().await;
    assert_eq!(p.text_in(&m3, OTHER_CUSTOMER, SHARED, "three").await.status(), 200);
    tick().await;
    let m4 = p.send("alice", &text(CUSTOMER, SHARED, "four"), None).await;
    let m4 = m4.json()["sid"].as_str().unwrap().to_owned();
    tick().await;
    // A short code texting in.
    assert_eq!(p.text_in(&m5, "12345", OUR_NUMBER, "five").await.status(), 200);

    let all = p.list("acme", "alice", "").await;
    assert_eq!(
        sids(&all),
        [m5.as_str(), m4.as_str(), m3.as_str(), m2.as_str(), m1.as_str()]
    );
    let newest = &all.json()["messages"][0];
    assert_eq!(newest["direction"], "inbound");
    assert_eq!(newest["body"], "five");
    assert!(newest["createdAt"].is_string());
    assert_eq!(all.json()["next"], Value::Null);

    // Bob sees the workspace's texts too, as every agent sees the call log.
    assert_eq!(sids(&p.list("acme", "bob", "").await).len(), 5);

    let cases: [(&str, Vec<&str>); 6] = [
        ("number=%2B14155550100", vec![m5.as_str(), m2.as_str(), m1.as_str()]),
        // An unencoded `+` arrives as a space, and still means `+`.
        ("number=+14155550100", vec![m5.as_str(), m2.as_str(), m1.as_str()]),
        (
            "counterpart=%2B14155550199",
            vec![m4.as_str(), m2.as_str(), m1.as_str()],
        ),
        ("number=%2B14155550101&counterpart=%2B14155550199", vec![m4.as_str()]),
        ("counterpart=12345", vec![m5.as_str()]),
        ("number=%2B14155550102", vec![]),
    ];
    for (query, expected) in cases {
        assert_eq!(sids(&p.list("acme", "alice", query).await), expected, "{query}");
    }

    // Pages of two, following `next`, give each text once, in order.
    let mut seen = Vec::new();
    let mut query = "limit=2".to_owned();
    for _ in 0..10 {
        let page = p.list("acme", "alice", &query).await;
        let items = sids(&page);
        assert!(items.len() <= 2);
        seen.extend(items);
        match page.json()["next"].as_str() {
            Some(next) => {
                let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
                query = format!("limit=2&cursor={next}");
            }
            None => break,
        }
    }
    assert_eq!(seen, [m5.as_str(), m4.as_str(), m3.as_str(), m2.as_str(), m1.as_str()]);
}

#[tokio::test]
async fn listing_checks_its_query() {
    let p = texting().await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "cursor=not-a-cursor",
        "number=4155550100",
        "number=%2B14155550177",
        "counterpart=%07bell",
    ] {
        let reply = p.list("acme", "alice", query).await;
        assert_eq!(reply.status(), 400, "{query}: {}", reply.text());
        assert_eq!(reply.error_code(), "bad_request");
    }
    let anonymous = p.t.call(request(Method::GET, "/messages")).await;
    assert_eq!(anonymous.status(), 401);
}

// ---------------------------------------------------------------------------
// Sending

#[tokio::test]
async fn sending_asks_twilio_and_keeps_the_outbound_text() {
    let p = texting().await;
    let reply = p
        .send(
            "alice",
            &text("+1 (415) 555-0199", OUR_NUMBER, "Your order is ready & waiting"),
            None,
        )
        .await;
    assert_eq!(reply.status(), 201, "{}", reply.text());
    let answer = reply.json();
    let sid = answer["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SM"), "{answer}");
    assert_eq!(answer["status"], "queued");
    assert_eq!(answer["direction"], "outbound");
    assert_eq!(answer["agent"], "alice");
    assert_eq!(answer["to"], CUSTOMER, "the number is sent and kept in E.164");

    let sent = p.twilio.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].sid, sid);
    assert_eq!((sent[0].to.as_str(), sent[0].from.as_str()), (CUSTOMER, OUR_NUMBER));
    assert_eq!(sent[0].body, "Your order is ready & waiting");
    assert_eq!(
        sent[0].status_callback.as_deref(),
        Some(format!("{PUBLIC_URL}/twilio/sms/status").as_str())
    );
    let names: Vec<&str> = sent[0].form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["To", "From", "Body", "StatusCallback"]);
    let requests = p.twilio.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].username.as_deref(), Some(p.account.as_str()));

    let stored = p.stored_message(&sid).await.expect("the text is kept");
    assert_eq!(stored.direction, switchboard::model::calls::Direction::Outbound);
    assert_eq!(stored.status.as_str(), "queued");
    assert_eq!(stored.agent.as_ref().map(|a| a.as_str()), Some("alice"));
    assert_eq!(switchboard::views::message(&stored), answer);

    // Without a key, each request is its own text.
    let again = p
        .send(
            "alice",
            &text(CUSTOMER, OUR_NUMBER, "Your order is ready & waiting"),
            None,
        )
        .await;
    assert_eq!(again.status(), 201);
    assert_eq!(p.twilio.messages().len(), 2);
}

#[tokio::test]
async fn sending_checks_numbers_body_and_permission_before_anything_is_sent() {
    let p = texting().await;
    let long = "x".repeat(1601);
    let cases: Vec<(&str, Value, u16)> = vec![
        ("national to", text("4155550199", OUR_NUMBER, "hi"), 400),
        ("invalid to", text("+1 000", OUR_NUMBER, "hi"), 400),
        ("letters to", text("+1415555CALL", OUR_NUMBER, "hi"), 400),
        ("invalid from", text(CUSTOMER, "nope", "hi"), 400),
        ("empty body", text(CUSTOMER, OUR_NUMBER, ""), 400),
        ("blank body", text(CUSTOMER, OUR_NUMBER, " \n "), 400),
        ("1601 characters", text(CUSTOMER, OUR_NUMBER, &long), 400),
        (
            "unknown field",
            json!({"to": CUSTOMER, "from": OUR_NUMBER, "body": "hi", "media": []}),
            400,
        ),
        ("missing from", json!({"to": CUSTOMER, "body": "hi"}), 400),
        ("not our number", text(CUSTOMER, "+14155550177", "hi"), 403),
        ("bob's number", text(CUSTOMER, BOBS, "hi"), 403),
    ];
    for (what, body, status) in cases {
        let reply = p.send("alice", &body, None).await;
        assert_eq!(reply.status(), status, "{what}: {}", reply.text());
    }
    let long_key = "k".repeat(256);
    let bad_key = p
        .send("alice", &text(CUSTOMER, OUR_NUMBER, "hi"), Some(&long_key))
        .await;
    assert_eq!(bad_key.status(), 400);
    let mut not_json = with_bearer(request(Method::POST, "/messages"), &agent_jwt("acme", "alice", "agent"));
    not_json.headers.insert("content-type", "text/plain".parse().unwrap());
    not_json.body = "to=+14155550199".into();
    assert_eq!(p.t.call(not_json).await.status(), 415);

    assert!(p.twilio.requests().is_empty(), "nothing reached Twilio");
    assert!(p.stored().await.is_empty(), "nothing was kept");

    // A shared line, bob's own number, and exactly 1600 characters (not bytes) are fine.
    let accents = "é".repeat(1600);
    for (agent, from, body) in [
        ("alice", SHARED, "hi"),
        ("bob", BOBS, "hi"),
        ("alice", OUR_NUMBER, &accents),
    ] {
        let reply = p.send(agent, &text(CUSTOMER, from, body), None).await;
        assert_eq!(reply.status(), 201, "{agent} from {from}: {}", reply.text());
    }
    assert_eq!(p.twilio.messages().len(), 3);

    // A workspace without a Twilio account cannot send.
    let lonely = p
        .send_as("initech", "ann", &text(CUSTOMER, OUR_NUMBER, "hi"), None)
        .await;
    assert_eq!(lonely.status(), 409);
    assert_eq!(lonely.error_code(), "twilio_not_configured");
}

#[tokio::test]
async fn twilio_refusing_the_number_is_400_with_its_reason_and_failures_are_502() {
    let p = texting().await;
    // Valid to libphonenumber, not to Twilio.
    p.twilio.reject_number("+14155550123");
    let refused = p.send("alice", &text("+14155550123", OUR_NUMBER, "hi"), None).await;
    assert_eq!(refused.status(), 400, "{}", refused.text());
    assert_eq!(refused.error_code(), "invalid_number");
    assert_eq!(
        refused.json()["error"]["message"],
        "The 'To' number +14155550123 is not a valid phone number."
    );

    p.twilio
        .fail_next(Fault::new("POST", "/Messages.json", FaultKind::Status(503)));
    let down = p.send("alice", &text(CUSTOMER, OUR_NUMBER, "hi"), None).await;
    assert_eq!(down.status(), 502, "{}", down.text());
    assert_eq!(down.error_code(), "upstream_error");
    assert!(down.text().contains("send message"), "{}", down.text());

    assert!(p.twilio.messages().is_empty());
    assert!(p.stored().await.is_empty(), "nothing kept when Twilio took nothing");
}

// ---------------------------------------------------------------------------
// Idempotency-Key

#[tokio::test]
async fn one_idempotency_key_sends_one_text() {
    let p = texting().await;
    let body = text(CUSTOMER, OUR_NUMBER, "once only");
    let first = p.send("alice", &body, Some("order-42")).await;
    assert_eq!(first.status(), 201, "{}", first.text());
    let again = p.send("alice", &body, Some("order-42")).await;
    assert_eq!(again.status(), 201, "{}", again.text());
    assert_eq!(again.json(), first.json(), "the same message");
    assert_eq!(p.twilio.messages().len(), 1, "sent once");
    assert_eq!(p.stored().await.len(), 1);

    // The key for another text is refused; nothing is sent.
    let reused = p
        .send("alice", &text(CUSTOMER, OUR_NUMBER, "something else"), Some("order-42"))
        .await;
    assert_eq!(reused.status(), 409);
    assert_eq!(reused.error_code(), "idempotency_key_reused");

    // Keys are per agent.
    let bobs = p
        .send("bob", &text(CUSTOMER, SHARED, "once only"), Some("order-42"))
        .await;
    assert_eq!(bobs.status(), 201);
    assert_ne!(bobs.json()["sid"], first.json()["sid"]);
    assert_eq!(p.twilio.messages().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_sends_with_one_key_send_one_text() {
    twenty_concurrent_sends(texting().await).await;
}

/// The claim, and the listing the other requests find the message in, on DynamoDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_sends_with_one_key_send_one_text_on_dynamodb() {
    let p = texting_on_dynamodb().await;
    // Some history in the conversation first: the claimed text is found among it.
    for n in 0..3 {
        let body = text(CUSTOMER, OUR_NUMBER, &format!("earlier {n}"));
        assert_eq!(
            p.send("alice", &body, Some(&format!("earlier-{n}"))).await.status(),
            201
        );
    }
    assert_eq!(
        p.text_in(&message_sid("reply"), CUSTOMER, OUR_NUMBER, "ok")
            .await
            .status(),
        200
    );
    p.twilio.clear_requests();
    twenty_concurrent_sends(p).await;
}

async fn twenty_concurrent_sends(p: Texting) {
    let before = (p.twilio.messages().len(), p.stored().await.len());
    let p = Arc::new(p);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                p.send("alice", &text(CUSTOMER, OUR_NUMBER, "racing"), Some("same-key"))
                    .await
            })
        })
        .collect();
    let mut answers = std::collections::HashSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status(), 201, "{}", reply.text());
        answers.insert(reply.json().to_string());
    }
    assert_eq!(answers.len(), 1, "every request answers with the one message");
    assert_eq!(p.twilio.messages().len(), before.0 + 1, "Twilio was asked once");
    assert_eq!(p.stored().await.len(), before.1 + 1);
    assert_eq!(p.twilio.requests().len(), 1);
}

#[tokio::test]
async fn a_claimed_key_whose_outcome_is_unknown_never_sends_again() {
    let p = texting().await;
    // Twilio takes the text, and the answer is lost: we cannot know it went out.
    p.twilio
        .fail_next(Fault::new("POST", "/Messages.json", FaultKind::DropAfterApplying));
    let body = text(CUSTOMER, OUR_NUMBER, "did it go?");
    let lost = p.send("alice", &body, Some("maybe")).await;
    assert_eq!(lost.status(), 502, "{}", lost.text());
    assert_eq!(p.twilio.messages().len(), 1);

    let retry = p.send("alice", &body, Some("maybe")).await;
    assert_eq!(retry.status(), 409, "{}", retry.text());
    assert_eq!(retry.error_code(), "idempotency_key_in_use");
    assert_eq!(p.twilio.messages().len(), 1, "never texted twice");

    // A new key is a deliberate second text.
    assert_eq!(p.send("alice", &body, Some("resend")).await.status(), 201);
    assert_eq!(p.twilio.messages().len(), 2);
}

// ---------------------------------------------------------------------------
// Delivery status

#[tokio::test]
async fn status_callbacks_move_the_text_forward_only() {
    let p = texting().await;
    let sent = p.send("alice", &text(CUSTOMER, OUR_NUMBER, "tracking"), None).await;
    let sid = sent.json()["sid"].as_str().unwrap().to_owned();
    let report = |status: &'static str| {
        let sid = sid.clone();
        let p = &p;
        async move {
            p.hook(
                "/twilio/sms/status",
                &[
                    ("MessageSid", &sid),
                    ("SmsSid", &sid),
                    ("MessageStatus", status),
                    ("SmsStatus", status),
                    ("From", OUR_NUMBER),
                    ("To", CUSTOMER),
                    ("ApiVersion", "2010-04-01"),
                ],
            )
            .await
        }
    };
    let status = || async { p.stored_message(&sid).await.unwrap().status };

    assert_empty_twiml(&report("sent").await, 200);
    assert_eq!(status().await.as_str(), "sent");
    assert_empty_twiml(&report("delivered").await, 200);
    assert_eq!(status().await.as_str(), "delivered");
    // Late and duplicate reports change nothing.
    for late in ["sent", "queued", "delivered", "undelivered"] {
        assert_empty_twiml(&report(late).await, 200);
        assert_eq!(status().await.as_str(), "delivered", "after a late {late}");
    }
    assert_eq!(
        p.list("acme", "alice", "").await.json()["messages"][0]["status"],
        "delivered"
    );

    // A status Twilio may add later: acknowledged, and the text stays as it is.
    assert_empty_twiml(&report("exploded").await, 200);
    assert_eq!(status().await.as_str(), "delivered");
    let unknown = p
        .hook(
            "/twilio/sms/status",
            &[
                ("MessageSid", &message_sid("never-sent")),
                ("MessageStatus", "delivered"),
            ],
        )
        .await;
    assert_empty_twiml(&unknown, 404);
    let forged =
        p.t.call(twilio_post(
            "/twilio/sms/status",
            &[
                ("MessageSid", &sid),
                ("MessageStatus", "read"),
                ("AccountSid", &p.account),
            ],
            "ffffffffffffffffffffffffffffffff",
        ))
        .await;
    assert_empty_twiml(&forged, 403);
    assert_eq!(status().await.as_str(), "delivered");
}

// ---------------------------------------------------------------------------
// Tenants

#[tokio::test]
async fn another_workspace_sees_and_touches_none_of_it() {
    const GLOBEX_TOKEN: &str = "fedcba9876543210fedcba9876543210";
    const GLOBEX_NUMBER: &str = "+14155550155";
    let p = texting().await;
    let globex = account("globex").to_string();
    p.twilio.set_account(&globex, GLOBEX_TOKEN);
    p.twilio.add_number_for(&globex, GLOBEX_NUMBER);
    connect(&p.t, "globex", &globex, GLOBEX_TOKEN).await;

    let ours = message_sid("acme-text");
    assert_eq!(p.text_in(&ours, CUSTOMER, OUR_NUMBER, "for acme").await.status(), 200);
    tick().await;
    let sent = p.send("alice", &text(CUSTOMER, OUR_NUMBER, "from acme"), None).await;
    let sent = sent.json()["sid"].as_str().unwrap().to_owned();
    let theirs = message_sid("globex-text");
    let reply = hook_as(
        &p.t,
        &globex,
        GLOBEX_TOKEN,
        "/twilio/sms",
        &[
            ("MessageSid", &theirs),
            ("From", CUSTOMER),
            ("To", GLOBEX_NUMBER),
            ("Body", "for globex"),
        ],
    )
    .await;
    assert_empty_twiml(&reply, 200);

    // Each sees its own.
    assert_eq!(sids(&p.list("acme", "alice", "").await), [sent.as_str(), ours.as_str()]);
    assert_eq!(sids(&p.list("globex", "gina", "").await), [theirs.as_str()]);
    assert_eq!(
        sids(&p.list("globex", "gina", "counterpart=%2B14155550199").await),
        [theirs.as_str()]
    );
    let foreign_number = p.list("globex", "gina", "number=%2B14155550100").await;
    assert_eq!(foreign_number.status(), 400, "acme's number is not globex's");

    // Acme's cursor opens nothing of acme's to globex.
    let page = p.list("acme", "alice", "limit=1").await;
    let cursor: String = form_urlencoded::byte_serialize(page.json()["next"].as_str().unwrap().as_bytes()).collect();
    let borrowed_cursor = p.list("globex", "gina", &format!("cursor={cursor}")).await;
    if borrowed_cursor.status() == 200 {
        assert!(
            sids(&borrowed_cursor).iter().all(|sid| *sid == theirs),
            "{}",
            borrowed_cursor.text()
        );
    } else {
        assert_eq!(borrowed_cursor.status(), 400);
    }

    // Globex cannot text from acme's number.
    let borrowed = p
        .send_as("globex", "gina", &text(CUSTOMER, SHARED, "pretending"), None)
        .await;
    assert_eq!(borrowed.status(), 403);

    // Globex's account reporting on acme's text, or texting acme's number: nothing changes.
    let status = hook_as(
        &p.t,
        &globex,
        GLOBEX_TOKEN,
        "/twilio/sms/status",
        &[("MessageSid", &sent), ("MessageStatus", "failed")],
    )
    .await;
    assert_empty_twiml(&status, 404);
    assert_eq!(p.stored_message(&sent).await.unwrap().status.as_str(), "queued");
    let misrouted = hook_as(
        &p.t,
        &globex,
        GLOBEX_TOKEN,
        "/twilio/sms",
        &[
            ("MessageSid", &message_sid("misrouted")),
            ("From", CUSTOMER),
            ("To", OUR_NUMBER),
            ("Body", "hm"),
        ],
    )
    .await;
    assert_empty_twiml(&misrouted, 200);
    assert_eq!(p.stored().await.len(), 2);
    assert_eq!(sids(&p.list("globex", "gina", "").await), [theirs.as_str()]);
}
