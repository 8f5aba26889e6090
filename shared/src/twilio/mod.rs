//! What Switchboard knows about Twilio: webhook signatures, access tokens,
//! TwiML, and the REST endpoints it calls.

pub mod access_token;
pub mod rest;
pub mod signature;
pub mod twiml;
pub mod webhooks;
