//! The webhook paths Twilio is pointed at: onboarding writes them into the
//! TwiML App and onto every number, the handlers build their callback URLs
//! from them, and the route table serves them.

/// The TwiML App's Voice URL: legs that start in a browser.
pub const AGENT_TWIML: &str = "/twilio/voice/agent";
/// The numbers' Voice URL: calls from the outside world.
pub const INBOUND_TWIML: &str = "/twilio/voice/inbound";
/// Where an inbound caller nobody answered is sent: voicemail.
pub const VOICEMAIL_TWIML: &str = "/twilio/voice/voicemail";
/// An agent's browser accepted the inbound call it was rung for.
pub const AGENT_ANSWER_TWIML: &str = "/twilio/voice/answer";
/// A transfer target or a supervisor answered the call they were rung for.
pub const JOIN_TWIML: &str = "/twilio/voice/join";
/// The customer leg of an outbound call.
pub const CUSTOMER_TWIML: &str = "/twilio/voice/customer";
/// Call progress and conference events.
pub const STATUS_CALLBACK: &str = "/twilio/status";
pub const RECORDING_CALLBACK: &str = "/twilio/recording";
/// The numbers' SMS URL.
pub const SMS: &str = "/twilio/sms";
/// Delivery status of the texts Switchboard sends.
pub const SMS_STATUS: &str = "/twilio/sms/status";

/// The live-event socket on the local server (`GET`, upgraded to a WebSocket).
pub const EVENTS: &str = "/events";
