//! What Switchboard's tests and benchmarks share: the sample workspace's
//! constants, Twilio-shaped SIDs, webhooks signed as Twilio signs them, an
//! application on the embedded store, the harness that drives the route
//! table, emulators (moto, a Lambda runtime, a recording media server) and
//! the stateful fake of Twilio's REST API.

pub mod aws_faults;
pub mod bench;
pub mod emulator;
pub mod fake_twilio;
pub mod harness;
pub mod media;
pub mod moto;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, header};
use switchboard::api::Request;
use switchboard::app::App;
use switchboard::config::Config;
use switchboard::twilio::signature;
use switchboard_embedded::EmbeddedStore;

/// `SWITCHBOARD_PUBLIC_URL` the tests and the sample events sign for.
pub const PUBLIC_URL: &str = "https://voice.example.test";
/// Agent sign-in secret of the tests and the sample events.
pub const HS256_SECRET: &str = "switchboard-test-secret-0123456789abcdef";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A Twilio-shaped SID: the prefix and the first 32 hex digits of SHA-256 of
/// `seed` (as events/README.md makes them).
pub fn sid<T: std::str::FromStr>(prefix: &str, seed: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(seed.as_bytes()));
    format!("{prefix}{}", &digest[..32]).parse().unwrap()
}

/// The configuration the tests use, on the embedded store in `data_dir`;
/// `vars` adds or overrides variables (an empty value removes one).
pub fn config(data_dir: &Path, vars: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = HashMap::from([
        ("SWITCHBOARD_PUBLIC_URL".into(), PUBLIC_URL.into()),
        ("SWITCHBOARD_AUTH_HS256_SECRET".into(), HS256_SECRET.into()),
        ("SWITCHBOARD_DATA_DIR".into(), data_dir.display().to_string()),
    ]);
    for (k, v) in vars {
        if v.is_empty() {
            env.remove(*k);
        } else {
            env.insert((*k).into(), (*v).into());
        }
    }
    Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration")
}

/// An application on the embedded adapters under `config`'s data directory,
/// and the store (also its durable job queue).
pub fn embedded_app(config: Config) -> (App, Arc<EmbeddedStore>) {
    let switchboard::config::Backend::Embedded { data_dir, .. } = &config.backend else {
        panic!("embedded_app needs the embedded backend");
    };
    let (adapters, store) = switchboard_embedded::open(data_dir).expect("embedded adapters");
    (App::new(config, adapters).expect("app"), store)
}

/// The URL-encoded form body.
pub fn form<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        form.append_pair(k.as_ref(), v.as_ref());
    }
    form.finish()
}

/// A form POST to `PUBLIC_URL` + `path_and_query`, signed with `auth_token`
/// as Twilio signs it, as the route table receives it.
pub fn signed_post<K: AsRef<str>, V: AsRef<str>>(path_and_query: &str, params: &[(K, V)], auth_token: &str) -> Request {
    let url = format!("{PUBLIC_URL}{path_and_query}");
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    let signature = signature::sign(auth_token.as_bytes(), &url, &pairs);
    let mut request = Request::new(Method::POST, path_and_query);
    request.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    request
        .headers
        .insert("x-twilio-signature", HeaderValue::from_str(&signature).unwrap());
    request.body = Bytes::from(form(params));
    request
}
