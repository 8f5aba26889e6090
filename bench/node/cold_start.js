// A Node.js Lambda function on the Runtime API, without any runtime library:
// loads Twilio's helper library, takes one event from AWS_LAMBDA_RUNTIME_API
// and answers it with a Voice access token (what the `token` function does,
// minus the sign-in and the store). benches/cold_start.rs times it from
// process start to the response, as it times the Rust functions.
'use strict';

const http = require('http');
const { AccessToken } = require('twilio').jwt;
const { VoiceGrant } = AccessToken;

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const base = `http://${api}/2018-06-01/runtime`;
const agent = new http.Agent({ keepAlive: true });

function handle(event) {
  JSON.parse(event);
  const token = new AccessToken(
    'AC822b33ad87c148a0a20a5ba7cd5ebcaa',
    'SK0000000000000000000000000000000a',
    'api-key-secret-of-acme',
    { identity: 'agent_alice', ttl: 3600 },
  );
  token.addGrant(new VoiceGrant({ outgoingApplicationSid: 'AP0000000000000000000000000000000a', incomingAllow: true }));
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: JSON.stringify({ token: token.toJwt(), identity: 'agent_alice', expiresIn: 3600 }),
  };
}

function next() {
  http.get(`${base}/invocation/next`, { agent }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      const id = res.headers['lambda-runtime-aws-request-id'];
      const body = JSON.stringify(handle(Buffer.concat(chunks).toString()));
      const req = http.request(
        `${base}/invocation/${id}/response`,
        { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (r) => {
          r.resume();
          r.on('end', next);
        },
      );
      req.end(body);
    });
  });
}

next();
