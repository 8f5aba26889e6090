//! The fake Twilio REST API (`tests/support/fake_twilio.rs`) behaves like
//! Twilio: over plain HTTP, and through our own `TwilioClient`.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use switchboard::ids::{AccountSid, ApiKeySid, ApplicationSid, PhoneNumberSid};
use switchboard::twilio::rest::{NumberWebhooks, TwilioClient, TwilioError, VoiceWebhooks};
use switchboard_testkit::fake_twilio::{FakeTwilio, Fault, FaultKind};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const OTHER_ACCOUNT: &str = "ACfedcba9876543210fedcba9876543210";
const TOKEN: &str = "auth-token";

/// Plain HTTP against the fake, as one set of credentials.
struct Http {
    base: String,
    user: String,
    password: String,
    client: reqwest::Client,
}

impl Http {
    fn new(fake: &FakeTwilio, user: &str, password: &str) -> Self {
        Self {
            base: fake.uri(),
            user: user.to_owned(),
            password: password.to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    fn as_account(fake: &FakeTwilio) -> Self {
        Self::new(fake, ACCOUNT, TOKEN)
    }

    /// `rest` under `/2010-04-01/Accounts/{ACCOUNT}`, or from the host if it starts with `/2010`.
    fn url(&self, rest: &str) -> String {
        if rest.starts_with("/2010-04-01") {
            format!("{}{rest}", self.base)
        } else {
            format!("{}/2010-04-01/Accounts/{ACCOUNT}{rest}", self.base)
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap();
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        (status, json)
    }

    async fn get(&self, rest: &str) -> (StatusCode, Value) {
        self.send(self.client.get(self.url(rest))).await
    }

    async fn post(&self, rest: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        self.send(self.client.post(self.url(rest)).form(form)).await
    }

    async fn delete(&self, rest: &str) -> (StatusCode, Value) {
        self.send(self.client.delete(self.url(rest))).await
    }
}

fn assert_twilio_error(body: &Value, status: u16, code: u64) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert_eq!(
        body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}"),
        "{body}"
    );
}

fn is_sid(value: &Value, prefix: &str) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit()))
}

// ---------------------------------------------------------------------------
// Over plain HTTP
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_account_authenticates_with_its_auth_token_and_nothing_else() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;

    let (status, body) = Http::as_account(&fake).get(".json").await;
    assert_eq!(status, 200);
    assert_eq!(body["sid"], ACCOUNT);
    assert_eq!(body["status"], "active");
    assert!(body["friendly_name"].is_string());

    let (status, body) = Http::new(&fake, ACCOUNT, "wrong").get(".json").await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Authenticate");
    assert_twilio_error(&body, 401, 20003);

    // No credentials, and credentials that are not Basic.
    let response = reqwest::get(format!("{}/2010-04-01/Accounts/{ACCOUNT}.json", fake.uri()))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = reqwest::Client::new()
        .get(format!("{}/2010-04-01/Accounts/{ACCOUNT}.json", fake.uri()))
        .header("authorization", "Basic %%%not-base64")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn another_accounts_path_is_not_found() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    fake.set_account(OTHER_ACCOUNT, "other-token");
    let http = Http::as_account(&fake);

    let path = format!("/2010-04-01/Accounts/{OTHER_ACCOUNT}/Applications.json");
    let (status, body) = http.get(&path).await;
    assert_eq!(status, 404);
    assert_twilio_error(&body, 404, 20404);
    assert_eq!(body["message"], format!("The requested resource {path} was not found"));

    // The other account sees its own path, and not the first account's things.
    let other = Http::new(&fake, OTHER_ACCOUNT, "other-token");
    let (status, _) = other.get(&path).await;
    assert_eq!(status, 200);
    let (_, app) = http.post("/Applications.json", &[("FriendlyName", "mine")]).await;
    let (status, _) = other
        .get(&format!(
            "/2010-04-01/Accounts/{OTHER_ACCOUNT}/Applications/{}.json",
            app["sid"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_api_key_works_everywhere_but_on_keys_until_deleted() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let account = Http::as_account(&fake);
    let (status, key) = account.post("/Keys.json", &[("FriendlyName", "switchboard")]).await;
    assert_eq!(status, 201);
    let sid = key["sid"].as_str().unwrap();
    let with_key = Http::new(&fake, sid, key["secret"].as_str().unwrap());

    assert_eq!(with_key.get(".json").await.0, 200);
    assert_eq!(with_key.get("/Applications.json").await.0, 200);
    assert_eq!(with_key.get("/IncomingPhoneNumbers.json").await.0, 200);

    for (status, body) in [
        with_key.post("/Keys.json", &[("FriendlyName", "another")]).await,
        with_key.get(&format!("/Keys/{sid}.json")).await,
        with_key.delete(&format!("/Keys/{sid}.json")).await,
    ] {
        assert_eq!(status, 401);
        assert_twilio_error(&body, 401, 20003);
    }
    assert_eq!(fake.keys().len(), 1, "a key cannot create keys");

    let (status, _) = Http::new(&fake, sid, "wrong secret").get(".json").await;
    assert_eq!(status, 401);

    assert_eq!(account.delete(&format!("/Keys/{sid}.json")).await.0, 204);
    assert_eq!(
        with_key.get(".json").await.0,
        401,
        "a deleted key no longer authenticates"
    );
}

#[tokio::test]
async fn keys_are_created_fetched_renamed_and_deleted() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let http = Http::as_account(&fake);

    let (status, created) = http.post("/Keys.json", &[("FriendlyName", "switchboard")]).await;
    assert_eq!(status, 201);
    assert!(is_sid(&created["sid"], "SK"), "{created}");
    assert_eq!(created["friendly_name"], "switchboard");
    assert_eq!(created["secret"].as_str().unwrap().len(), 32);
    assert!(created["date_created"].as_str().unwrap().ends_with("+0000"));
    let sid = created["sid"].as_str().unwrap();

    let (status, fetched) = http.get(&format!("/Keys/{sid}.json")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["sid"], sid);
    assert!(fetched.get("secret").is_none(), "the secret is returned once");

    let (status, renamed) = http
        .post(&format!("/Keys/{sid}.json"), &[("FriendlyName", "renamed")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(renamed["friendly_name"], "renamed");
    assert_eq!(fake.keys()[0].friendly_name, "renamed");

    let (_, second) = http.post("/Keys.json", &[("FriendlyName", "two")]).await;
    assert_ne!(second["sid"], created["sid"]);
    assert_ne!(second["secret"], created["secret"]);

    assert_eq!(http.delete(&format!("/Keys/{sid}.json")).await.0, 204);
    let (status, body) = http.get(&format!("/Keys/{sid}.json")).await;
    assert_eq!(status, 404);
    assert_twilio_error(&body, 404, 20404);
    assert_eq!(http.delete(&format!("/Keys/{sid}.json")).await.0, 404);
    assert_eq!(fake.keys().len(), 1);
}

#[tokio::test]
async fn applications_default_their_methods_and_update_only_what_is_sent() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let http = Http::as_account(&fake);

    let (status, app) = http
        .post(
            "/Applications.json",
            &[
                ("FriendlyName", "switchboard"),
                ("VoiceUrl", "https://v.example/voice"),
                ("StatusCallback", "https://v.example/status"),
                ("VoiceCallerIdLookup", "true"),
            ],
        )
        .await;
    assert_eq!(status, 201);
    assert!(is_sid(&app["sid"], "AP"), "{app}");
    assert_eq!(app["voice_url"], "https://v.example/voice");
    assert_eq!(app["voice_method"], "POST", "Twilio's default");
    assert_eq!(app["status_callback"], "https://v.example/status");
    assert_eq!(app["status_callback_method"], "POST");
    assert_eq!(app["voice_caller_id_lookup"], true, "other parameters are kept");
    let sid = app["sid"].as_str().unwrap();
    let path = format!("/Applications/{sid}.json");

    let (status, updated) = http.post(&path, &[("VoiceMethod", "GET")]).await;
    assert_eq!(status, 200);
    assert_eq!(updated["voice_method"], "GET");
    assert_eq!(updated["voice_url"], "https://v.example/voice", "unchanged");
    assert_eq!(updated["friendly_name"], "switchboard", "unchanged");

    let (status, fetched) = http.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, updated);
    let snapshot = &fake.applications()[0];
    assert_eq!(snapshot.voice_method, "GET");
    assert_eq!(
        snapshot.other.get("voice_caller_id_lookup").map(String::as_str),
        Some("true")
    );

    // Only an exact name matches the filter.
    http.post("/Applications.json", &[("FriendlyName", "switchboard-2")])
        .await;
    let (_, list) = http.get("/Applications.json?FriendlyName=switchboard").await;
    assert_eq!(list["applications"].as_array().unwrap().len(), 1);
    assert_eq!(list["applications"][0]["sid"], sid);
    let (_, all) = http.get("/Applications.json").await;
    assert_eq!(all["applications"].as_array().unwrap().len(), 2);

    assert_eq!(http.delete(&path).await.0, 204);
    assert_eq!(http.get(&path).await.0, 404);
    assert_eq!(http.post(&path, &[("VoiceMethod", "GET")]).await.0, 404);
    assert_eq!(fake.applications().len(), 1);
}

#[tokio::test]
async fn lists_page_like_twilio() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let http = Http::as_account(&fake);
    for _ in 0..5 {
        http.post("/Applications.json", &[("FriendlyName", "switchboard")])
            .await;
    }
    http.post("/Applications.json", &[("FriendlyName", "someone else")])
        .await;
    fake.set_page_size_cap(2);

    let mut sids = Vec::new();
    let mut uri = "/Applications.json?FriendlyName=switchboard&PageSize=50".to_owned();
    let mut pages = Vec::new();
    loop {
        let (status, page) = http.get(&uri).await;
        assert_eq!(status, 200, "{page}");
        for app in page["applications"].as_array().unwrap() {
            sids.push(app["sid"].as_str().unwrap().to_owned());
        }
        pages.push(page.clone());
        match page["next_page_uri"].as_str() {
            Some(next) => uri = next.to_owned(),
            None => break,
        }
    }
    let expected: Vec<String> = fake
        .applications()
        .iter()
        .filter(|a| a.friendly_name == "switchboard")
        .map(|a| a.sid.clone())
        .collect();
    assert_eq!(sids, expected, "every match once, in creation order");
    assert_eq!(pages.len(), 3);

    let base = format!("/2010-04-01/Accounts/{ACCOUNT}/Applications.json");
    let first = &pages[0];
    assert_eq!(first["page"], 0);
    assert_eq!(first["page_size"], 2);
    assert_eq!(first["uri"], format!("{base}?FriendlyName=switchboard&PageSize=50"));
    assert_eq!(
        first["first_page_uri"],
        format!("{base}?FriendlyName=switchboard&PageSize=2&Page=0")
    );
    assert_eq!(
        first["next_page_uri"],
        format!(
            "{base}?FriendlyName=switchboard&PageSize=2&Page=1&PageToken=PA{}",
            sids[1]
        )
    );
    assert!(first["previous_page_uri"].is_null());
    assert_eq!(pages[1]["page"], 1);
    assert_eq!(pages[2]["page"], 2);
    assert_eq!(pages[2]["applications"].as_array().unwrap().len(), 1);
    assert!(pages[2]["next_page_uri"].is_null());

    // `Page` alone works too; past the end is an empty page.
    let (_, page) = http.get("/Applications.json?FriendlyName=switchboard&Page=1").await;
    assert_eq!(page["applications"][0]["sid"], sids[2].as_str());
    let (_, page) = http.get("/Applications.json?Page=9").await;
    assert_eq!(page["applications"], serde_json::json!([]));
    assert!(page["next_page_uri"].is_null());
}

#[tokio::test]
async fn numbers_start_empty_update_and_clear_their_application() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let http = Http::as_account(&fake);
    let sid = fake.add_number("+14155550001");
    let path = format!("/IncomingPhoneNumbers/{sid}.json");

    let (status, number) = http.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(number["phone_number"], "+14155550001");
    assert_eq!(number["voice_url"], "");
    assert_eq!(number["sms_url"], "");
    assert!(number["voice_application_sid"].is_null());

    let (_, app) = http.post("/Applications.json", &[("FriendlyName", "a")]).await;
    let app_sid = app["sid"].as_str().unwrap();
    let (status, number) = http.post(&path, &[("VoiceApplicationSid", app_sid)]).await;
    assert_eq!(status, 200);
    assert_eq!(number["voice_application_sid"], app_sid);

    let (status, number) = http
        .post(
            &path,
            &[
                ("VoiceApplicationSid", ""),
                ("VoiceUrl", "https://v.example/inbound"),
                ("StatusCallback", "https://v.example/status"),
                ("SmsUrl", "https://v.example/sms"),
                ("SmsMethod", "post"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(number["voice_application_sid"].is_null(), "cleared is null");
    assert_eq!(number["voice_url"], "https://v.example/inbound");
    assert_eq!(number["sms_method"], "POST");
    assert_eq!(fake.numbers()[0].status_callback, "https://v.example/status");

    // Cleared URLs read back as "".
    let (_, number) = http.post(&path, &[("VoiceUrl", "")]).await;
    assert_eq!(number["voice_url"], "");
    assert_eq!(number["sms_url"], "https://v.example/sms", "unchanged");

    // Someone else repoints it.
    fake.set_number_hooks(&sid, "https://elsewhere.example/v", "", "");
    let (_, number) = http.get(&path).await;
    assert_eq!(number["voice_url"], "https://elsewhere.example/v");
    assert_eq!(number["sms_url"], "");

    let (status, body) = http
        .post(&path, &[("VoiceApplicationSid", &format!("AP{:032x}", 7))])
        .await;
    assert_eq!(status, 400);
    assert_twilio_error(&body, 400, 21218);
    let (status, _) = http
        .post(&format!("/IncomingPhoneNumbers/PN{:032x}.json", 7), &[("VoiceUrl", "")])
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn calls_record_every_parameter_and_hang_up() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let http = Http::as_account(&fake);
    let form = [
        ("To", "+14155550100"),
        ("From", "+14155550001"),
        ("Url", "https://v.example/customer"),
        ("StatusCallback", "https://v.example/status"),
        ("StatusCallbackEvent", "initiated"),
        ("StatusCallbackEvent", "ringing"),
        ("StatusCallbackEvent", "answered"),
        ("StatusCallbackEvent", "completed"),
        ("Timeout", "30"),
    ];
    let (status, call) = http.post("/Calls.json", &form).await;
    assert_eq!(status, 201);
    assert!(is_sid(&call["sid"], "CA"), "{call}");
    assert_eq!(call["status"], "queued");
    assert_eq!(call["to"], "+14155550100");
    assert_eq!(call["from"], "+14155550001");
    let expected: Vec<(String, String)> = form.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(fake.calls_created(), vec![expected]);
    assert_eq!(
        fake.requests().last().unwrap().form_values("StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );

    let sid = call["sid"].as_str().unwrap();
    let (status, ended) = http
        .post(&format!("/Calls/{sid}.json"), &[("Status", "completed")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(ended["status"], "completed");
    assert_eq!(
        fake.calls()[0].updates,
        vec![vec![("Status".into(), "completed".into())]]
    );

    // Twilio's checks.
    let without = |name: &str| form.iter().copied().filter(|(k, _)| *k != name).collect::<Vec<_>>();
    assert_twilio_error(&http.post("/Calls.json", &without("To")).await.1, 400, 21201);
    assert_twilio_error(&http.post("/Calls.json", &without("From")).await.1, 400, 21603);
    assert_twilio_error(&http.post("/Calls.json", &without("Url")).await.1, 400, 21205);
    let mut joined = without("StatusCallbackEvent");
    joined.push(("StatusCallbackEvent", "initiated ringing"));
    assert_eq!(
        http.post("/Calls.json", &joined).await.0,
        400,
        "one event per parameter"
    );
    assert_eq!(
        http.post(&format!("/Calls/{sid}.json"), &[("Status", "paused")])
            .await
            .0,
        400
    );
    assert_eq!(fake.calls_created().len(), 1);
}

#[tokio::test]
async fn conferences_end_and_participants_hold_and_mute() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let http = Http::as_account(&fake);
    let conference = fake.add_conference("call-1");
    let agent = format!("CA{:032x}", 1);
    let customer = format!("CA{:032x}", 2);
    fake.add_participant(&conference, &agent);
    fake.add_participant(&conference, &customer);

    let participant = format!("/Conferences/{conference}/Participants/{customer}.json");
    let (status, body) = http
        .post(
            &participant,
            &[
                ("Hold", "true"),
                ("HoldUrl", "https://v.example/hold"),
                ("Muted", "false"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["hold"], true);
    assert_eq!(body["call_sid"], customer.as_str());
    let snapshot = &fake.conferences()[0].participants[1];
    assert!(snapshot.hold && !snapshot.muted);
    assert_eq!(snapshot.hold_url.as_deref(), Some("https://v.example/hold"));

    assert_eq!(http.post(&participant, &[("Hold", "maybe")]).await.0, 400);
    let unknown = format!("/Conferences/{conference}/Participants/CA{:032x}.json", 9);
    assert_eq!(http.post(&unknown, &[("Muted", "true")]).await.0, 404);

    let (status, body) = http
        .post(&format!("/Conferences/{conference}.json"), &[("Status", "completed")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "completed");
    assert!(fake.conferences()[0].participants.is_empty());
    let unknown = format!("/Conferences/CF{:032x}.json", 9);
    assert_eq!(http.post(&unknown, &[("Status", "completed")]).await.0, 404);
}

#[tokio::test]
async fn odd_input_is_a_twilio_error_never_a_crash() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let http = Http::as_account(&fake);

    for rest in ["/Nope.json", "/Applications", "/Applications/x/y/z.json", "/.json"] {
        let (status, body) = http.get(rest).await;
        assert_eq!(status, 404, "{rest}");
        assert_twilio_error(&body, 404, 20404);
    }
    let (status, body) = http.get("/2010-04-01/Elsewhere.json").await;
    assert_eq!(status, 404);
    assert_twilio_error(&body, 404, 20404);
    let (status, body) = http.delete("/Calls.json").await;
    assert_eq!(status, 405);
    assert_twilio_error(&body, 405, 20004);

    for query in ["PageSize=0", "PageSize=abc", "PageSize=1001", "Page=-1"] {
        let (status, body) = http.get(&format!("/Applications.json?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_twilio_error(&body, 400, 20001);
    }
    let (status, body) = http.post("/Applications.json", &[("VoiceUrl", "/relative")]).await;
    assert_eq!(status, 400);
    assert_twilio_error(&body, 400, 21502);
    assert_eq!(http.post("/Applications.json", &[("VoiceMethod", "PUT")]).await.0, 400);
    assert!(fake.applications().is_empty());

    // A body that is not a form is no parameters at all, as on Twilio.
    let (status, _) = http
        .send(
            http.client
                .post(http.url("/Calls.json"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(vec![0xff, 0xfe, b'=', 0x00]),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = http
        .send(
            http.client
                .post(http.url("/Applications.json"))
                .json(&serde_json::json!({"VoiceUrl": 1})),
        )
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn every_request_is_recorded_in_order() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let http = Http::as_account(&fake);
    http.get("/Applications.json?FriendlyName=a%20b").await;
    http.post("/Keys.json", &[("FriendlyName", "k")]).await;
    Http::new(&fake, "nobody", "x").get(".json").await;

    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Applications.json")
    );
    assert_eq!(requests[0].query, [("FriendlyName".to_owned(), "a b".to_owned())]);
    assert_eq!(requests[1].form_value("FriendlyName"), Some("k"));
    assert_eq!(requests[1].username.as_deref(), Some(ACCOUNT));
    assert_eq!(requests[2].username.as_deref(), Some("nobody"));
    fake.clear_requests();
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn status_faults_fail_the_next_matching_requests_only() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let http = Http::as_account(&fake);
    fake.fail_next(Fault::new("POST", "/Applications", FaultKind::Status(503)).times(2));

    assert_eq!(http.get("/Applications.json").await.0, 200, "another method");
    assert_eq!(http.post("/Keys.json", &[]).await.0, 201, "another path");
    let (status, body) = http.post("/Applications.json", &[("FriendlyName", "a")]).await;
    assert_eq!(status, 503);
    assert_twilio_error(&body, 503, 20503);
    assert_eq!(http.post("/Applications.json", &[("FriendlyName", "a")]).await.0, 503);
    assert!(fake.applications().is_empty(), "a failed request changes nothing");
    assert_eq!(http.post("/Applications.json", &[("FriendlyName", "a")]).await.0, 201);
    assert_eq!(fake.applications().len(), 1);
    assert_eq!(fake.requests().len(), 5, "faulted requests are recorded too");
}

#[tokio::test]
async fn a_dropped_response_still_applies_the_change() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let http = Http::as_account(&fake);
    fake.fail_next(Fault::new("POST", "/Calls.json", FaultKind::DropAfterApplying));
    let form = [
        ("To", "+14155550100"),
        ("From", "+14155550001"),
        ("Url", "https://v.example/customer"),
    ];

    let (status, body) = http.post("/Calls.json", &form).await;
    assert_eq!(status, 500);
    assert_twilio_error(&body, 500, 20500);
    assert_eq!(fake.calls_created().len(), 1, "the call was placed all the same");
    assert_eq!(http.post("/Calls.json", &form).await.0, 201);
    assert_eq!(fake.calls_created().len(), 2);
}

#[tokio::test]
async fn a_delayed_response_times_the_client_out() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    fake.fail_next(Fault::new("*", "/Keys.json", FaultKind::Delay(Duration::from_secs(2))));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();

    let error = impatient
        .post(format!("{}/2010-04-01/Accounts/{ACCOUNT}/Keys.json", fake.uri()))
        .basic_auth(ACCOUNT, Some(TOKEN))
        .form(&[("FriendlyName", "slow")])
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(fake.keys().len(), 1, "the server did its part");
    let (status, _) = Http::as_account(&fake).get(".json").await;
    assert_eq!(status, 200, "only one request was delayed");
}

// ---------------------------------------------------------------------------
// Through our TwilioClient
// ---------------------------------------------------------------------------

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn with_token(fake: &FakeTwilio) -> TwilioClient {
    TwilioClient::with_auth_token(
        http_client(),
        Url::parse(&fake.uri()).unwrap(),
        AccountSid::parse(ACCOUNT).unwrap(),
        SecretString::from(TOKEN.to_owned()),
    )
}

fn with_key(fake: &FakeTwilio, sid: &ApiKeySid, secret: &SecretString) -> TwilioClient {
    TwilioClient::with_api_key(
        http_client(),
        Url::parse(&fake.uri()).unwrap(),
        AccountSid::parse(ACCOUNT).unwrap(),
        sid,
        secret.clone(),
    )
}

fn hooks(host: &str) -> VoiceWebhooks {
    VoiceWebhooks {
        voice_url: format!("https://{host}/twilio/voice/agent"),
        status_callback: format!("https://{host}/twilio/status"),
    }
}

#[tokio::test]
async fn client_fetches_the_account_and_manages_keys() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let client = with_token(&fake);

    let account = client.fetch_account().await.unwrap();
    assert_eq!(account.sid, ACCOUNT);
    assert_eq!(account.status.as_deref(), Some("active"));

    let key = client.create_key("switchboard").await.unwrap();
    assert_eq!(key.friendly_name.as_deref(), Some("switchboard"));
    assert_eq!(key.secret.expose_secret(), fake.keys()[0].secret);
    let fetched = client.fetch_key(&key.sid).await.unwrap();
    assert_eq!(fetched.sid, key.sid);

    // The key can do everything but manage keys.
    let keyed = with_key(&fake, &key.sid, &key.secret);
    keyed.fetch_account().await.unwrap();
    let error = keyed.create_key("another").await.err().unwrap();
    assert!(matches!(error, TwilioError::Unauthorized { .. }), "{error:?}");

    client.delete_key(&key.sid).await.unwrap();
    assert!(fake.keys().is_empty());
    let error = client.fetch_key(&key.sid).await.unwrap_err();
    assert!(matches!(error, TwilioError::NotFound { .. }), "{error:?}");
    let error = keyed.fetch_account().await.unwrap_err();
    assert!(matches!(error, TwilioError::Unauthorized { .. }), "{error:?}");
}

#[tokio::test]
async fn client_finds_applications_across_three_pages() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let client = with_token(&fake);
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(
            client
                .create_application("switchboard", &hooks(&format!("h{n}.example")))
                .await
                .unwrap(),
        );
        client
            .create_application("not ours", &hooks("x.example"))
            .await
            .unwrap();
    }
    fake.set_page_size_cap(2);

    let found = client.find_applications("switchboard").await.unwrap();
    assert_eq!(found, created);
    let pages: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/Applications.json"))
        .collect();
    assert_eq!(pages.len(), 3);
    assert!(
        pages
            .iter()
            .all(|p| p.query.contains(&("FriendlyName".into(), "switchboard".into())))
    );
    assert!(client.find_applications("nobody").await.unwrap().is_empty());
}

#[tokio::test]
async fn client_creates_updates_fetches_and_deletes_an_application() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let client = with_token(&fake);

    let app = client
        .create_application("switchboard", &hooks("one.example"))
        .await
        .unwrap();
    assert!(hooks("one.example").matches(&app));
    let updated = client
        .update_application(&app.sid, &hooks("two.example"))
        .await
        .unwrap();
    assert!(hooks("two.example").matches(&updated));
    assert_eq!(updated.friendly_name.as_deref(), Some("switchboard"));
    assert_eq!(client.fetch_application(&app.sid).await.unwrap(), updated);
    assert_eq!(
        fake.applications()[0].voice_url.as_deref(),
        Some("https://two.example/twilio/voice/agent")
    );

    client.delete_application(&app.sid).await.unwrap();
    assert!(fake.applications().is_empty());
    let error = client.fetch_application(&app.sid).await.unwrap_err();
    assert!(matches!(error, TwilioError::NotFound { .. }), "{error:?}");
    let unknown = ApplicationSid::parse(&format!("AP{:032x}", 1)).unwrap();
    let error = client
        .update_application(&unknown, &hooks("x.example"))
        .await
        .unwrap_err();
    assert!(matches!(error, TwilioError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn client_lists_numbers_across_pages_and_repoints_one() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let client = with_token(&fake);
    let sids: Vec<String> = (1..=5).map(|n| fake.add_number(&format!("+1415555000{n}"))).collect();
    fake.set_page_size_cap(2);

    let numbers = client.list_incoming_numbers().await.unwrap();
    let phones: Vec<&str> = numbers.iter().map(|n| n.phone_number.as_str()).collect();
    assert_eq!(
        phones,
        [
            "+14155550001",
            "+14155550002",
            "+14155550003",
            "+14155550004",
            "+14155550005"
        ]
    );

    let app = client
        .create_application("switchboard", &hooks("v.example"))
        .await
        .unwrap();
    fake.set_number_application(&sids[0], Some(app.sid.as_str()));
    let wanted = NumberWebhooks {
        voice_url: "https://v.example/twilio/voice/inbound".into(),
        status_callback: "https://v.example/twilio/status".into(),
        sms_url: "https://v.example/twilio/sms".into(),
    };
    let sid = PhoneNumberSid::parse(&sids[0]).unwrap();
    assert!(!wanted.matches(&client.fetch_incoming_number(&sid).await.unwrap()));

    let number = client.update_incoming_number(&sid, &wanted, true).await.unwrap();
    assert!(wanted.matches(&number), "{number:?}");
    assert_eq!(number.voice_application_sid, None);
    assert_eq!(fake.numbers()[0].voice_application_sid, None);
    assert_eq!(fake.numbers()[0].sms_url, "https://v.example/twilio/sms");

    // Drift is visible to the client.
    fake.set_number_hooks(&sids[0], "https://elsewhere.example/v", "", "");
    assert!(!wanted.matches(&client.fetch_incoming_number(&sid).await.unwrap()));
    let cleared = client
        .update_incoming_number(&sid, &NumberWebhooks::cleared(), false)
        .await
        .unwrap();
    assert!(NumberWebhooks::cleared().matches(&cleared));
}

#[tokio::test]
async fn client_retries_reads_but_never_creates() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN).await;
    let client = with_token(&fake);

    fake.fail_next(Fault::new("GET", ".json", FaultKind::Status(503)).times(2));
    client.fetch_account().await.unwrap();
    assert_eq!(fake.requests().len(), 3);

    fake.clear_requests();
    fake.fail_next(Fault::new("POST", "/Applications.json", FaultKind::DropAfterApplying));
    let error = client
        .create_application("switchboard", &hooks("v.example"))
        .await
        .unwrap_err();
    assert!(matches!(error, TwilioError::Unavailable(_)), "{error:?}");
    assert_eq!(fake.requests().len(), 1, "a create is sent once");
    assert_eq!(fake.applications().len(), 1, "and it happened");
}
