//! The reference dialer (`web/`) on the local server: its built files
//! (`web/dist`, committed) are embedded, so `cargo run` needs no Node.js, and
//! served on the route table's page routes (`GET /`, `GET /assets/{file}`).
//! The page is told which claim names an agent's role
//! (`SWITCHBOARD_AUTH_ROLE_CLAIM`) and, on a sandbox server, to drive the
//! sandbox's simulated device instead of Twilio's Voice SDK (its meta tags).

use switchboard::routes;

mod dist {
    use switchboard::routes::PageFile;
    include!("../web/dist.rs");
}

/// Serves the dialer from this process; `sandbox`: the page uses the
/// sandbox's device (`switchboard --sandbox`); `role_claim`: the configured
/// one (`AuthConfig::role_claim`).
pub fn serve(sandbox: bool, role_claim: &str) {
    routes::serve_pages(dist::configured(sandbox, role_claim));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use switchboard::routes::PageFile;

    use super::*;

    fn dist_files(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("web/dist") {
            let entry = entry.expect("web/dist entry");
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.path().is_dir() {
                dist_files(&entry.path(), &format!("{name}/"), out);
            } else {
                out.insert(name);
            }
        }
    }

    fn page(files: &[PageFile]) -> String {
        let index = files.iter().find(|f| f.name == "index.html").expect("index.html");
        String::from_utf8_lossy(index.bytes).into_owned()
    }

    #[test]
    fn every_built_file_is_embedded_and_reachable() {
        let mut on_disk = BTreeSet::new();
        dist_files(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("web/dist"),
            "",
            &mut on_disk,
        );
        // index.html is the page; the rest are under /assets/ by their name.
        let embedded: BTreeSet<String> = dist::FILES
            .iter()
            .map(|f| match f.name {
                "index.html" => f.name.to_owned(),
                other => format!("assets/{other}"),
            })
            .collect();
        assert_eq!(
            embedded, on_disk,
            "web/dist.rs lists every file of web/dist, and only those"
        );
        let page = page(dist::FILES);
        for file in &dist::FILES[1..] {
            assert!(
                page.contains(&format!("\"assets/{}\"", file.name)),
                "index.html loads assets/{}",
                file.name
            );
        }
    }

    #[test]
    fn the_page_is_told_its_device_and_role_claim() {
        let built = page(dist::FILES);
        assert!(built.contains(dist::DEVICE_META) && built.contains(dist::ROLE_CLAIM_META));

        let normal = page(dist::configured(false, "role"));
        assert_eq!(normal, built, "the defaults change nothing");
        let sandbox = page(dist::configured(true, "role"));
        assert!(sandbox.contains(r#"<meta name="switchboard-device" content="sandbox">"#));
        assert!(!sandbox.contains(dist::DEVICE_META));
        assert_eq!(sandbox.len(), built.len() + "sandbox".len() - "twilio".len());

        let claimed = page(dist::configured(false, "https://acme.example/roles"));
        assert!(claimed.contains(r#"<meta name="switchboard-role-claim" content="https://acme.example/roles">"#));
        // A claim name is never markup.
        let hostile = page(dist::configured(false, r#"x"><script>alert(1)</script>"#));
        assert!(hostile.contains(
            r#"<meta name="switchboard-role-claim" content="x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">"#
        ));
        assert!(!hostile.contains("<script>alert"));
        // The other files are the built ones.
        for (configured, built) in dist::configured(true, "r").iter().zip(dist::FILES).skip(1) {
            assert_eq!(configured.bytes, built.bytes);
        }
    }
}
