/**
 * The Triton circuit breaker's three states (Flink's CLOSED, OPEN, HALF_OPEN), driven by a
 * fake clock: no test waits for real time.
 */
import { CircuitBreaker, CircuitOpenError, MINIMUM_REQUESTS, WINDOW } from '../../core/runtime/providers/circuit-breaker.js';

function breaker(settings = { failureThreshold: 0.5, openMs: 60_000, halfOpenRequests: 3 }) {
  const clock = { now: 1_000_000 };
  return { b: new CircuitBreaker('triton', settings, () => clock.now), clock };
}

/** Lets a request through and records its outcome. */
function call(b: CircuitBreaker, ok: boolean): void {
  b.allow();
  b.record(ok);
}

describe('circuit breaker', () => {
  it('starts CLOSED and stays CLOSED below the minimum number of requests, whatever their outcome', () => {
    const { b } = breaker();
    expect(b.state).toBe('CLOSED');
    for (let i = 0; i < MINIMUM_REQUESTS - 1; i++) call(b, false);
    expect(b.state).toBe('CLOSED');
    expect(b.failureRate).toBe(1);
  });

  it('stays CLOSED under the failure threshold and opens at it', () => {
    const { b } = breaker();
    for (let i = 0; i < 10; i++) call(b, i >= 4); // 4 failures in 10: 40%
    expect(b.state).toBe('CLOSED');
    call(b, false); // 5 of 11
    call(b, false); // 6 of 12: 50%
    expect(b.state).toBe('OPEN');
  });

  it('judges only the last outcomes: old failures age out of the window', () => {
    const { b } = breaker();
    for (let i = 0; i < 4; i++) call(b, false);
    for (let i = 0; i < WINDOW; i++) call(b, true);
    expect(b.failureRate).toBe(0);
    // 9 failures now are 9 of the last 20: under the threshold; the 4 early ones would have made it 13 of 24.
    for (let i = 0; i < 9; i++) call(b, false);
    expect(b.state).toBe('CLOSED');
    call(b, false);
    expect(b.state).toBe('OPEN');
  });

  it('fails fast while OPEN, until the open time is up, then lets probes through HALF_OPEN', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < MINIMUM_REQUESTS; i++) call(b, false);
    expect(b.state).toBe('OPEN');
    expect(() => b.allow()).toThrow(CircuitOpenError);
    expect(() => b.allow()).toThrow(/OPEN after a failure rate of 100%: requests fail fast for another 60 s/);
    clock.now += 59_999;
    expect(() => b.allow()).toThrow(/for another 1 s/);
    clock.now += 1;
    b.allow();
    expect(b.state).toBe('HALF_OPEN');
    b.allow();
    b.allow();
    expect(() => b.allow()).toThrow(/HALF_OPEN and its 3 probe requests are taken/);
  });

  it('closes after the half-open successes, and judges afresh', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < MINIMUM_REQUESTS; i++) call(b, false);
    clock.now += 60_000;
    call(b, true);
    call(b, true);
    expect(b.state).toBe('HALF_OPEN');
    call(b, true);
    expect(b.state).toBe('CLOSED');
    expect(b.failureRate).toBe(0);
    for (let i = 0; i < MINIMUM_REQUESTS - 1; i++) call(b, false);
    expect(b.state).toBe('CLOSED');
  });

  it('reopens on any half-open failure, for a whole open time again', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < MINIMUM_REQUESTS; i++) call(b, false);
    clock.now += 60_000;
    call(b, true);
    call(b, false);
    expect(b.state).toBe('OPEN');
    clock.now += 30_000;
    expect(() => b.allow()).toThrow(CircuitOpenError);
    clock.now += 30_000;
    b.allow();
    expect(b.state).toBe('HALF_OPEN');
  });

  it('refuses with a non-retryable error', () => {
    const { b } = breaker({ failureThreshold: 0.1, openMs: 1000, halfOpenRequests: 1 });
    for (let i = 0; i < MINIMUM_REQUESTS; i++) call(b, i !== 0);
    expect(b.state).toBe('OPEN');
    try {
      b.allow();
      throw new Error('not refused');
    } catch (error) {
      expect(error).toBeInstanceOf(CircuitOpenError);
      expect((error as CircuitOpenError).retryable).toBe(false);
      expect((error as CircuitOpenError).sqlstate).toBe('38000');
    }
  });
});
