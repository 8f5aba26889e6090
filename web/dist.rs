// The dialer's built files (web/dist, committed), embedded by the two
// programs that serve them: the local server (src/web.rs) and the `web`
// function (functions/web), with `include!("…/web/dist.rs")`. Every file of
// dist/ is listed here (src/web.rs has the test).

pub static FILES: &[PageFile] = &[
    PageFile {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("dist/index.html"),
    },
    PageFile {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("dist/assets/app.js"),
    },
    PageFile {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("dist/assets/app.css"),
    },
];

/// What the built page says in its meta tags until a server fills them in.
pub const DEVICE_META: &str = r#"<meta name="switchboard-device" content="twilio">"#;
pub const ROLE_CLAIM_META: &str = r#"<meta name="switchboard-role-claim" content="role">"#;

/// The files with the page's settings filled in, made once at start and kept
/// for the life of the process: `sandbox`, the page drives the sandbox's
/// simulated device instead of Twilio's SDK; `role_claim`, the sign-in
/// token's claim that names the agent's role (which controls it shows).
pub fn configured(sandbox: bool, role_claim: &str) -> &'static [PageFile] {
    // An attribute value: the claim name is configuration, never markup.
    let escaped = role_claim
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let files: Vec<PageFile> = FILES
        .iter()
        .map(|file| PageFile {
            name: file.name,
            content_type: file.content_type,
            bytes: if file.name == "index.html" {
                let device = if sandbox { "sandbox" } else { "twilio" };
                let page = String::from_utf8_lossy(file.bytes)
                    .replace(DEVICE_META, &DEVICE_META.replace("twilio", device))
                    .replace(
                        ROLE_CLAIM_META,
                        &format!(r#"<meta name="switchboard-role-claim" content="{escaped}">"#),
                    );
                Box::leak(page.into_bytes().into_boxed_slice())
            } else {
                file.bytes
            },
        })
        .collect();
    Box::leak(files.into_boxed_slice())
}
