//! `sms`: the numbers' SMS URL (`/twilio/sms`) and the delivery status of sent texts (`/twilio/sms/status`).

#[tokio::main]
async fn main() -> Result<(), switchboard_lambda::Error> {
    switchboard_lambda::run("sms").await
}
