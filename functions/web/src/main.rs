//! `web`: the reference dialer (`GET /`, `GET /assets/{file}`), its built
//! files embedded in the binary (an HTTP API has no S3 integration), so the
//! page comes from the API's own origin. The page is told which claim names
//! an agent's role (`SWITCHBOARD_AUTH_ROLE_CLAIM`, set on every function).

mod dist {
    use switchboard::routes::PageFile;
    include!("../../../web/dist.rs");
}

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    let role_claim = std::env::var("SWITCHBOARD_AUTH_ROLE_CLAIM")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "role".to_owned());
    switchboard::routes::serve_pages(dist::configured(false, role_claim.trim()));
    switchboard_lambda::run("web").await
}
