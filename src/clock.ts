/** The time source; tests swap in a clock they move by hand instead of waiting real minutes. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
