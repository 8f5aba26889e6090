// Stands in for '@twilio/voice-sdk' in the unit tests (build.mjs aliases
// it): the tests build the SDK-shaped objects themselves and hand them to
// `TwilioDevice`, so nothing here is ever called.

export class Device {
  constructor() {
    throw new Error('the unit tests never construct the real SDK Device');
  }
}
