//! How Twilio signs the webhooks it sends (`X-Twilio-Signature`): HMAC-SHA1,
//! keyed with the account's Auth Token, over the URL requested followed by
//! each form parameter's name and value, sorted by name (a repeated name
//! contributes each of its values, sorted), base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// The signature Twilio would send for a form POST of `params` to `url`
/// (for a GET, `url` carries the parameters and `params` is empty).
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    sorted.sort_unstable();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    BASE64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// The public vectors of Twilio's helper libraries.
    #[test]
    fn signs_as_twilio_helper_libraries_do() {
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            sign("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", &params),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        let mut shuffled = params.clone();
        shuffled.reverse();
        assert_eq!(
            sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &shuffled),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            "the order sent does not matter"
        );
    }
}
