//! `customer-twiml`: the answering customer joins the conference.

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("customer-twiml").await
}
