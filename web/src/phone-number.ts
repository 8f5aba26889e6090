// Phone numbers as a person types them, checked for E.164 before they reach
// the API (which checks them again with libphonenumber's rules).

const SEPARATORS = /[\s().\-\u00a0]/g;

/** `+1 (415) 555-0100` → `+14155550100`; `0044…` → `+44…`; anything else unchanged. */
export function normalise(input: string): string {
  const compact = input.trim().replace(SEPARATORS, '');
  return compact.startsWith('00') ? `+${compact.slice(2)}` : compact;
}

/** Whether a normalised number has E.164's form: `+`, a country code, at most 15 digits. */
export function isE164(number: string): boolean {
  return /^\+[1-9]\d{6,14}$/.test(number);
}

/** Why a typed number is not usable, or undefined when it is. */
export function problem(input: string): string | undefined {
  const number = normalise(input);
  if (!number) {
    return 'Enter a number to call.';
  }
  if (!number.startsWith('+')) {
    return 'Start with + and the country code, e.g. +14155550100.';
  }
  if (!isE164(number)) {
    return 'That is not a full international number: + then 7 to 15 digits, e.g. +14155550100.';
  }
  return undefined;
}
