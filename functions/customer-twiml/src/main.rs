//! `customer-twiml`: the answering customer joins the conference.

#[tokio::main]
async fn main() -> Result<(), switchboard::lambda::Error> {
    switchboard::lambda::run("customer-twiml").await
}
