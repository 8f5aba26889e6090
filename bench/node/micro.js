// The side-by-side of scripts/bench.sh: the three library operations of
// benches/micro.rs with Twilio's official Node.js helper library, on the same
// inputs. Prints one JSON object: nanoseconds per operation (median of the
// samples) for each.
'use strict';

const twilio = require('twilio');
const { AccessToken } = twilio.jwt;
const { VoiceGrant } = AccessToken;
const { VoiceResponse } = twilio.twiml;
const crypto = require('crypto');

// The sample workspace of events/README.md.
const sid = (prefix, seed) => prefix + crypto.createHash('sha256').update(seed).digest('hex').slice(0, 32);
const PUBLIC_URL = 'https://voice.example.test';
const AUTH_TOKEN = '0123456789abcdef0123456789abcdef';
const CALL_ID = '01JDQ4ZK8M3V6X2T9B7C5N1P0R';
const ACCOUNT = sid('AC', 'acme');
const API_KEY = sid('SK', 'acme');
const APP = sid('AP', 'acme');

// A typical status callback (benches/common/mod.rs, status_callback_params).
const url = `${PUBLIC_URL}/twilio/status?callId=${CALL_ID}&leg=customer`;
const params = {
  AccountSid: ACCOUNT,
  ApiVersion: '2010-04-01',
  CallSid: 'CA0a1b2c3d4e5f60718293a4b5c6d7e8f9',
  CallStatus: 'ringing',
  CallbackSource: 'call-progress-events',
  Called: '+14155550123',
  Caller: '+14155550100',
  Direction: 'outbound-api',
  From: '+14155550100',
  SequenceNumber: '1',
  Timestamp: 'Tue, 26 Nov 2024 10:31:02 +0000',
  To: '+14155550123',
};
const signature = twilio.getExpectedTwilioSignature(AUTH_TOKEN, url, params);
if (!twilio.validateRequest(AUTH_TOKEN, signature, url, params)) throw new Error('validateRequest failed');

const conference = `sb-${CALL_ID}`;
const statusUrl = `${PUBLIC_URL}/twilio/status?callId=${CALL_ID}`;
const recordingUrl = `${PUBLIC_URL}/twilio/recording?callId=${CALL_ID}`;

const operations = {
  signature_validation: () => twilio.validateRequest(AUTH_TOKEN, signature, url, params),
  access_token: () => {
    const token = new AccessToken(ACCOUNT, API_KEY, 'api-key-secret-of-acme', { identity: 'agent_alice', ttl: 3600 });
    token.addGrant(new VoiceGrant({ outgoingApplicationSid: APP, incomingAllow: true }));
    return token.toJwt();
  },
  twiml_agent_leg: () => {
    const response = new VoiceResponse();
    response.dial().conference(
      {
        startConferenceOnEnter: true,
        endConferenceOnExit: true,
        beep: false,
        statusCallback: statusUrl,
        statusCallbackMethod: 'POST',
        statusCallbackEvent: 'start end join leave',
        record: 'record-from-start',
        recordingStatusCallback: recordingUrl,
        recordingStatusCallbackMethod: 'POST',
        recordingStatusCallbackEvent: 'completed absent failed',
      },
      conference,
    );
    return response.toString();
  },
  twiml_customer_leg: () => {
    const response = new VoiceResponse();
    response.dial().conference({ startConferenceOnEnter: true, endConferenceOnExit: true, beep: false }, conference);
    return response.toString();
  },
};

const seconds = Number(process.env.SWITCHBOARD_BENCH_NODE_SECONDS || 3);
let sink = 0;
// Keeps results alive so no work is optimised away.
const use = (r) => (typeof r === 'string' ? r.length : r ? 1 : 0);

function measure(op) {
  // Warm up (JIT) and size a batch to about 50 ms.
  let batch = 1;
  for (;;) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink ^= use(op());
    const ns = Number(process.hrtime.bigint() - t);
    if (ns > 50e6) break;
    batch *= 2;
  }
  const samples = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end || samples.length < 10) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink ^= use(op());
    samples.push(Number(process.hrtime.bigint() - t) / batch);
  }
  samples.sort((a, b) => a - b);
  return { median_ns: samples[Math.floor(samples.length / 2)], samples: samples.length, batch };
}

const results = { node: process.version, twilio: require('twilio/package.json').version };
for (const [name, op] of Object.entries(operations)) results[name] = measure(op);
results.sink = sink;
process.stdout.write(JSON.stringify(results) + '\n');
