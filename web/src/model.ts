// What the API answers, as the page reads it (GET /calls, GET /messages,
// the live events' `data`, POST /token, GET /workspace/numbers).

export type CallState =
  | 'created'
  | 'dialing'
  | 'ringing'
  | 'in-progress'
  | 'completed'
  | 'busy'
  | 'no-answer'
  | 'failed'
  | 'canceled'
  | 'abandoned';

export const CALL_STATES: CallState[] = [
  'created',
  'dialing',
  'ringing',
  'in-progress',
  'completed',
  'busy',
  'no-answer',
  'failed',
  'canceled',
  'abandoned',
];

export const TERMINAL = new Set<CallState>(['completed', 'busy', 'no-answer', 'failed', 'canceled', 'abandoned']);

export interface Participant {
  label: string;
  role: 'customer' | 'agent' | 'supervisor' | 'transfer';
  agent?: string | null;
  number?: string | null;
  callSid?: string | null;
  state: string;
  held?: boolean;
  muted?: boolean;
  monitor?: 'listen' | 'whisper' | 'barge' | null;
  /** When each leg state was first reached (`joined`, `left`, …). */
  reached?: Record<string, string>;
}

export interface Recording {
  sid: string;
  status: string;
  source?: string | null;
  durationSeconds?: number | null;
  objectKey?: string | null;
  contentType?: string | null;
  receivedAt?: string;
}

export interface Transfer {
  label: string;
  mode: 'warm' | 'cold';
  to: { agent?: string; number?: string };
  state: 'ringing' | 'talking' | 'completed' | 'failed' | 'canceled';
  by: string;
}

export interface Call {
  callId: string;
  direction: 'outbound' | 'inbound';
  agent?: string | null;
  from: string;
  to: string;
  state: CallState;
  createdAt: string;
  updatedAt: string;
  endReason?: string | null;
  durationSeconds?: number | null;
  notes?: string | null;
  disposition?: string | null;
  recordings?: Record<string, Recording>;
  participants?: Record<string, Participant>;
  answeredBy?: string | null;
  agentLabel?: string | null;
  transfer?: Transfer | null;
  recorded?: boolean;
  recordingPaused?: boolean;
  /** When each state was first reached (`ringing`, `in-progress`, …). */
  reached?: Partial<Record<CallState, string>>;
  timeline?: TimelineEntry[];
}

export interface TimelineEntry {
  key?: string;
  at?: string;
  kind?: string;
  detail?: Record<string, string>;
  [key: string]: unknown;
}

export interface Message {
  sid: string;
  direction: 'outbound' | 'inbound';
  from: string;
  to: string;
  body: string;
  mediaUrls?: string[];
  status: string;
  agent?: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface PhoneNumber {
  number: string;
  sid?: string | null;
  agents: string[];
  label?: string | null;
}

export interface VoiceToken {
  token: string;
  identity: string;
  expiresIn: number;
  eventsUrl: string;
}

/** Whether `agent` may call or text from `number` (no agents: a shared line). */
export function mayUse(number: PhoneNumber, agent: string): boolean {
  return number.agents.length === 0 || number.agents.includes(agent);
}

/** The number at the other end of a call or text. */
export function counterpart(item: { direction: 'outbound' | 'inbound'; from: string; to: string }): string {
  return item.direction === 'inbound' ? item.from : item.to;
}

/** The workspace's number of a call or text. */
export function ourNumber(item: { direction: 'outbound' | 'inbound'; from: string; to: string }): string {
  return item.direction === 'inbound' ? item.to : item.from;
}

/** Replaces `current` with `next` only when `next` is newer (live events, catch-up). */
export function isNewer(next: { updatedAt: string }, current: { updatedAt: string } | undefined): boolean {
  return !current || next.updatedAt > current.updatedAt;
}
