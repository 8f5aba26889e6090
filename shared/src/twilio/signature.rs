//! Twilio's webhook signature (`X-Twilio-Signature`).
//!
//! The string to sign is the URL Twilio requested followed, for form POSTs, by
//! every parameter name and value with names sorted (a repeated name adds each
//! of its values, sorted). HMAC-SHA1 keyed with the account's Auth Token,
//! base64. JSON bodies instead carry `bodySHA256` in the query and the signature
//! covers only the URL.
//!
//! Twilio is inconsistent about ports, so a URL is accepted as given, with any
//! port removed, and with the scheme's default port added.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

type HmacSha1 = Hmac<Sha1>;

/// Computes the signature Twilio would send for `url` and form `params`.
pub fn sign(auth_token: &[u8], url: &str, params: &[(&str, &str)]) -> String {
    let mut mac = keyed(auth_token);
    feed(&mut mac, url, params);
    BASE64.encode(mac.finalize().into_bytes())
}

/// Checks a form-encoded webhook. `params` need not be sorted.
///
/// On the hot path of every webhook: the key is set up once, and the other
/// spelling of the URL (with or without the port) is only built when the URL
/// as given does not match.
pub fn verify_form(auth_token: &[u8], url: &str, params: &[(&str, &str)], signature: &str) -> bool {
    let Some(expected) = decode(signature) else {
        return false;
    };
    let mut sorted: Vec<(&str, &str)> = params.to_vec();
    sorted.sort_unstable();
    let key = keyed(auth_token);
    let matches = |candidate: &str| {
        let mut mac = key.clone();
        feed_sorted(&mut mac, candidate, &sorted);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&expected).is_ok()
    };
    matches(url) || other_port_spelling(url).is_some_and(|other| matches(&other))
}

/// Checks a JSON (or other non-form) webhook: the URL's `bodySHA256` must be the
/// hex SHA-256 of the raw body, and the signature covers the URL alone.
pub fn verify_body(auth_token: &[u8], url: &str, body: &[u8], signature: &str) -> bool {
    let Some(claimed) = query_param(url, "bodySHA256") else {
        return false;
    };
    let Ok(claimed) = hex::decode(claimed) else {
        return false;
    };
    let actual = Sha256::digest(body);
    // Not secret, but there is no reason to leak timing either.
    let body_matches =
        claimed.len() == actual.len() && claimed.iter().zip(actual.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    body_matches && verify_form(auth_token, url, &[], signature)
}

fn keyed(auth_token: &[u8]) -> HmacSha1 {
    HmacSha1::new_from_slice(auth_token).expect("HMAC accepts keys of any length")
}

fn feed(mac: &mut HmacSha1, url: &str, params: &[(&str, &str)]) {
    let mut sorted = params.to_vec();
    sorted.sort_unstable();
    feed_sorted(mac, url, &sorted);
}

fn feed_sorted(mac: &mut HmacSha1, url: &str, sorted: &[(&str, &str)]) {
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
}

/// The 20 bytes of an HMAC-SHA1 signature, without allocating.
fn decode(signature: &str) -> Option<[u8; 20]> {
    let signature = signature.trim();
    // 20 bytes are 28 base64 characters; anything longer cannot be one.
    if signature.len() > 28 {
        return None;
    }
    let mut buffer = [0u8; 21];
    let len = BASE64.decode_slice(signature, &mut buffer).ok()?;
    let mut bytes = [0u8; 20];
    bytes.copy_from_slice(buffer.get(..len).filter(|b| b.len() == 20)?);
    Some(bytes)
}

fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The URL as given, without its port, and with the default port: Twilio signs
/// with whichever form it was configured with.
#[cfg(test)]
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    variants.extend(other_port_spelling(url));
    variants
}

/// The other spelling of `url`: without its port if it has one, else with the
/// scheme's default port. `None` for a URL that is neither http nor https.
fn other_port_spelling(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else if scheme.eq_ignore_ascii_case("http") {
        "80"
    } else {
        return None;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    // An IPv6 literal keeps its colons inside brackets.
    let port_sep = match host_port.rfind(']') {
        Some(close) => host_port[close..].find(':').map(|i| close + i),
        None => host_port.rfind(':'),
    };
    let host = port_sep.map_or(host_port, |i| &host_port[..i]);
    let build = |host_port: &str| match userinfo {
        Some(user) => format!("{scheme}://{user}@{host_port}{tail}"),
        None => format!("{scheme}://{host_port}{tail}"),
    };
    Some(if port_sep.is_some() {
        build(host)
    } else {
        build(&format!("{host}:{default_port}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Public test vectors from Twilio's official helper libraries.
    const TOKEN: &[u8] = b"12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const PARAMS: [(&str, &str); 5] = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ];
    const SIGNATURE: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    const SIGNATURE_WITH_PORT: &str = "kvajT1Ptam85bY51eRf/AJRuM3w=";

    #[test]
    fn matches_the_helper_library_vector() {
        assert_eq!(sign(TOKEN, URL, &PARAMS), SIGNATURE);
        assert!(verify_form(TOKEN, URL, &PARAMS, SIGNATURE));
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let mut shuffled = PARAMS;
        shuffled.reverse();
        assert!(verify_form(TOKEN, URL, &shuffled, SIGNATURE));
    }

    #[test]
    fn accepts_a_signature_made_with_the_default_port() {
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(sign(TOKEN, with_port, &PARAMS), SIGNATURE_WITH_PORT);
        // Signed with :443, requested without it.
        assert!(verify_form(TOKEN, URL, &PARAMS, SIGNATURE_WITH_PORT));
        // Signed without a port, requested with :443.
        assert!(verify_form(TOKEN, with_port, &PARAMS, SIGNATURE));
    }

    #[test]
    fn accepts_a_non_default_port_as_given_or_removed() {
        let url = "http://localhost:3000/twilio/status";
        let sig = sign(TOKEN, url, &PARAMS);
        assert!(verify_form(TOKEN, url, &PARAMS, &sig));
        let stripped = sign(TOKEN, "http://localhost/twilio/status", &PARAMS);
        assert!(verify_form(TOKEN, url, &PARAMS, &stripped));
    }

    #[test]
    fn rejects_any_change() {
        let mut changed = PARAMS;
        changed[2] = ("Digits", "1235");
        assert!(!verify_form(TOKEN, URL, &changed, SIGNATURE));
        assert!(!verify_form(b"12346", URL, &PARAMS, SIGNATURE));
        assert!(!verify_form(
            TOKEN,
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &PARAMS,
            SIGNATURE
        ));
        assert!(!verify_form(TOKEN, URL, &PARAMS[..4], SIGNATURE));
        assert!(!verify_form(TOKEN, URL, &PARAMS, ""));
        assert!(!verify_form(TOKEN, URL, &PARAMS, "not base64!"));
        assert!(!verify_form(TOKEN, URL, &PARAMS, "RSOYDt4T1cUTdK1PDd93"));
    }

    #[test]
    fn repeated_parameters_contribute_every_value_sorted() {
        let params = [
            ("StatusCallbackEvent", "ringing"),
            ("To", "+18005551212"),
            ("StatusCallbackEvent", "answered"),
        ];
        let manual = {
            let mut mac = keyed(TOKEN);
            mac.update(b"https://example.com/cb");
            mac.update(b"StatusCallbackEventansweredStatusCallbackEventringingTo+18005551212");
            BASE64.encode(mac.finalize().into_bytes())
        };
        assert!(verify_form(TOKEN, "https://example.com/cb", &params, &manual));
        // Dropping one of the repeated values breaks it.
        assert!(!verify_form(TOKEN, "https://example.com/cb", &params[..2], &manual));
    }

    #[test]
    fn json_bodies_are_checked_through_body_sha256() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = hex::encode(Sha256::digest(body));
        let url = format!("https://mycompany.com/myapp.php?bodySHA256={hash}");
        let sig = sign(TOKEN, &url, &[]);
        assert!(verify_body(TOKEN, &url, body, &sig));
        assert!(!verify_body(TOKEN, &url, br#"{"property": "other"}"#, &sig));
        let no_hash = "https://mycompany.com/myapp.php";
        assert!(!verify_body(TOKEN, no_hash, body, &sign(TOKEN, no_hash, &[])));
    }

    #[test]
    fn helper_library_json_vector() {
        // From the helper libraries: body and URL with its bodySHA256.
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        assert_eq!(hex::encode(Sha256::digest(body)), hash);
        let url = format!("https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={hash}");
        assert!(verify_body(TOKEN, &url, body, "a9nBmqA0ju/hNViExpshrM61xv4="));
    }

    #[test]
    fn port_variants() {
        assert_eq!(
            url_variants("https://a.b/x?y=1"),
            ["https://a.b/x?y=1", "https://a.b:443/x?y=1"]
        );
        assert_eq!(
            url_variants("https://a.b:8443/x"),
            ["https://a.b:8443/x", "https://a.b/x"]
        );
        assert_eq!(
            url_variants("http://[::1]:3000/x"),
            ["http://[::1]:3000/x", "http://[::1]/x"]
        );
        assert_eq!(url_variants("http://[::1]/x"), ["http://[::1]/x", "http://[::1]:80/x"]);
    }
}
